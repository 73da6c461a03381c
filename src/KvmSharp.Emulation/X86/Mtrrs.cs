// SPDX-License-Identifier: MIT
using KvmSharp.X86;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// A vCPU's MTRRs as arch/x86/kvm/mtrr.c keeps them (vcpu->arch.mtrr_state: 8 variable pairs, 11 fixed ranges, the
/// default type): storage and validation only — KVM honours no guest memory type, and neither does the emulator.
/// kvm_get/set_msr_common route MTRRcap (read), MTRRphysBase_MSR(0) … MSR_MTRRfix4K_F8000 and MSR_MTRRdefType here.
/// None of them is in KVM_GET_MSR_INDEX_LIST; all are zero at creation and kept across KVM_RUN.
/// </summary>
internal sealed class Mtrrs
{
    /// <summary>kvm_host.h KVM_NR_VAR_MTRR.</summary>
    public const int NrVarMtrr = 8;

    /// <summary>kvm_mtrr_get_msr MSR_MTRRcap: "SMRR = 0, WC = 1, FIX = 1, VCNT = KVM_NR_VAR_MTRR" (0x508).</summary>
    public const ulong Cap = 0x500 | NrVarMtrr;

    /// <summary>var[16] (base/mask pairs), fixed_64k, fixed_16k[2], fixed_4k[8] (MSR order), deftype.</summary>
    private readonly ulong[] _state = new ulong[2 * NrVarMtrr + 11 + 1];

    /// <summary>The MSRs kvm_get_msr_common sends to kvm_mtrr_get_msr (kvm_set_msr_common: the same without MTRRcap).</summary>
    public static bool IsMtrrMsr(uint index) =>
        index is MsrIndex.MTRRcap or MsrIndex.MTRRdefType
        || index is >= MsrIndex.MTRRphysBase0 and <= MsrIndex.MTRRfix4K_F8000;

    /// <summary>mtrr.c kvm_mtrr_get_msr: MTRRcap is a constant; an MSR find_mtrr does not know is refused (1).</summary>
    public int Get(uint index, out ulong data)
    {
        data = 0;
        if (index == MsrIndex.MTRRcap)
        {
            data = Cap;
            return 0;
        }
        int i = Slot(index);
        if (i < 0) return 1;
        data = _state[i];
        return 0;
    }

    /// <summary>
    /// mtrr.c kvm_mtrr_set_msr: find_mtrr (MTRRcap, 0x210–0x24f and the gaps between the fixed ranges are refused),
    /// then kvm_mtrr_valid; a refused write (1) changes nothing. <paramref name="maxPhyAddr"/> is the guest's
    /// (cpuid_maxphyaddr): a variable MTRR may not set GPA bits at or above it.
    /// </summary>
    public int Set(uint index, ulong data, int maxPhyAddr)
    {
        int i = index == MsrIndex.MTRRcap ? -1 : Slot(index);
        if (i < 0 || !IsValid(index, data, maxPhyAddr)) return 1;
        _state[i] = data;
        return 0;
    }

    /// <summary>mtrr.c valid_mtrr_type: UC (0), WC (1), WT (4), WP (5), WB (6).</summary>
    private static bool ValidType(ulong type) => type < 8 && ((1u << (int)type) & 0x73) != 0;

    /// <summary>
    /// mtrr.c kvm_mtrr_valid: MTRRdefType only bits 0-7, 10, 11 (~0xcff reserved) with a valid type; each byte of a
    /// fixed range a valid type; a variable base a valid type, bits 8-11 clear; a mask bits 0-10 clear; both clear
    /// from MAXPHYADDR up (kvm_vcpu_reserved_gpa_bits_raw).
    /// </summary>
    private static bool IsValid(uint index, ulong data, int maxPhyAddr)
    {
        if (index == MsrIndex.MTRRdefType)
            return (data & ~0xcffUL) == 0 && ValidType(data & 0xff);
        if (index >= MsrIndex.MTRRfix64K_00000)
        {
            for (int b = 0; b < 8; b++)
                if (!ValidType((data >> (b * 8)) & 0xff)) return false;
            return true;
        }
        // rsvd_bits(maxphyaddr, 63): empty when MAXPHYADDR is 64 or more.
        ulong mask = maxPhyAddr >= 64 ? 0 : ulong.MaxValue << maxPhyAddr;
        if ((index & 1) == 0)
        {
            if (!ValidType(data & 0xff)) return false;
            mask |= 0xf00;
        }
        else mask |= 0x7ff;
        return (data & mask) == 0;
    }

    /// <summary>mtrr.c find_mtrr: where <paramref name="index"/> is kept, -1 for an MSR it does not hold.</summary>
    private static int Slot(uint index) => index switch
    {
        >= MsrIndex.MTRRphysBase0 and < MsrIndex.MTRRphysBase0 + 2 * NrVarMtrr => (int)(index - MsrIndex.MTRRphysBase0),
        MsrIndex.MTRRfix64K_00000 => 2 * NrVarMtrr,
        MsrIndex.MTRRfix16K_80000 or MsrIndex.MTRRfix16K_A0000 => 2 * NrVarMtrr + 1 + (int)(index - MsrIndex.MTRRfix16K_80000),
        >= MsrIndex.MTRRfix4K_C0000 and <= MsrIndex.MTRRfix4K_F8000 => 2 * NrVarMtrr + 3 + (int)(index - MsrIndex.MTRRfix4K_C0000),
        MsrIndex.MTRRdefType => 2 * NrVarMtrr + 11,
        _ => -1,
    };
}
