// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// Per-vCPU MSRs a guest can write and read back that KVM_GET_MSR_INDEX_LIST does not list, so a reset built on that
/// list alone leaves them as the last guest set them (observed on Linux 6.18 kvm_pvm: MTRRphysBase0 = 0x12345006,
/// MTRRdefType = 0xC06, the fixed-range MTRRs and MC0_CTL = all ones survived <see cref="MicroVm.Reset"/>). VMMs save
/// them by name for the same reason (QEMU target/i386/kvm/kvm.c kvm_put_msrs: the MTRRs, and the MCE banks from
/// MCG_CAP). Candidates only: <see cref="VcpuResetState"/> keeps those the kernel reads and takes back.
/// </summary>
internal static class UnlistedMsrs
{
    /// <summary>IA32_MCG_CAP: bits 7:0 the number of machine-check banks, bit 10 MCG_CMCI_P (the banks have CTL2).</summary>
    public const uint McgCap = 0x179;

    // arch/x86/kvm/mtrr.c msr_mtrr_valid: the variable pairs from 0x200 (KVM_NR_VAR_MTRR = 8), the fixed ranges, the
    // default type. (MTRRcap, 0xFE, is read-only.)
    private const uint MtrrPhysBase0 = 0x200, VariableMtrrPairs = 8;
    private static readonly uint[] FixedMtrrs = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F];
    private const uint MtrrDefType = 0x2FF;

    // arch/x86/kvm/x86.c set_msr_mce / get_msr_mce: MCi_CTL, _STATUS, _ADDR, _MISC at 0x400 + 4i for i < mcg_cap & 0xff
    // (KVM_MAX_MCE_BANKS = 32 at vCPU creation), MCi_CTL2 at 0x280 + i with MCG_CMCI_P.
    private const uint Mc0Ctl = 0x400, Mc0Ctl2 = 0x280, MaxBanks = 32, McgCmciP = 1u << 10;

    /// <summary>The candidates, given the vCPU's IA32_MCG_CAP (null when it cannot be read: no MCE banks then).</summary>
    public static IEnumerable<uint> Candidates(ulong? mcgCap)
    {
        for (uint i = 0; i < 2 * VariableMtrrPairs; i++) yield return MtrrPhysBase0 + i;
        foreach (uint msr in FixedMtrrs) yield return msr;
        yield return MtrrDefType;
        // TSC_AUX (RDTSCP's ECX, RDPID): listed only when KVM's CPU caps have RDTSCP or RDPID (x86.c
        // kvm_probe_msr_to_save); kvm_pvm lists neither yet reads and takes it (probed: KVM_GET/SET_MSRS 0xC0000103).
        yield return X86Msr.TscAux;
        if (mcgCap is not ulong cap) yield break;
        uint banks = Math.Min((uint)(cap & 0xFF), MaxBanks);
        for (uint i = 0; i < 4 * banks; i++) yield return Mc0Ctl + i;
        if ((cap & McgCmciP) != 0)
            for (uint i = 0; i < banks; i++) yield return Mc0Ctl2 + i;
    }
}
