// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The host's debugging of an arm64 vCPU beyond single-step (<see cref="Arm64SingleStep"/>), as Linux 6.18 arms it:
/// <list type="bullet">
/// <item>guest.c kvm_arch_vcpu_ioctl_set_guest_debug: with KVM_GUESTDBG_ENABLE "vcpu->guest_debug = dbg->control" and,
/// with KVM_GUESTDBG_USE_HW, "vcpu->arch.external_debug_state = dbg->arch"; without ENABLE "vcpu->guest_debug = 0".</item>
/// <item>debug.c kvm_arm_setup_mdcr_el2: "if (vcpu->guest_debug) vcpu->arch.mdcr_el2 |= MDCR_EL2_TDE" — every debug
/// exception from EL1/EL0 (BRK included: a Breakpoint Instruction exception is a debug exception, Arm ARM D2.1) goes to
/// EL2, whatever control bits beside ENABLE were given: KVM itself never tests KVM_GUESTDBG_USE_SW_BP (it is only in
/// KVM_GUESTDBG_VALID_MASK). Without ENABLE the guest's BRK is its own (A64Interpreter.CompiledCode.cs).</item>
/// <item>debug.c kvm_arm_setup_debug: with USE_HW, MDSCR_EL1.MDE set and kvm_vcpu_load_debug's VCPU_DEBUG_HOST_OWNED:
/// the world switch (hyp/include/hyp/debug-sr.h __debug_restore_state) loads external_debug_state into the hardware's
/// breakpoints and watchpoints — only as many as the CPU has (ID_AA64DFR0_EL1.BRPs + 1 = 6 and WRPs + 1 = 4 on the
/// emulated host, <see cref="Arm64HostCpu.Aa64Dfr0"/>); dbg_bcr/dbg_wcr beyond them are ignored.</item>
/// <item>handle_exit.c kvm_handle_guest_debug for ESR_ELx_EC_BREAKPT_LOW (0x30), ESR_ELx_EC_WATCHPT_LOW (0x34, "run->
/// debug.arch.far = vcpu->arch.fault.far_el2") and ESR_ELx_EC_BRK64 (0x3C): KVM_EXIT_DEBUG with hsr/hsr_high and
/// KVM_DEBUG_ARCH_HSR_HIGH_VALID; the PC stays at the instruction (the preferred return address of all three), which
/// has not executed.</item>
/// </list>
/// Matching (Arm ARM D2.9 "Breakpoint exceptions", D2.10 "Watchpoint exceptions"; with the debug target EL2 and the
/// exception from EL1/EL0, PSTATE.D and MDSCR_EL1.KDE do not mask them, D2.4): an address-match breakpoint (DBGBCR.BT =
/// 0b0000, E = 1, BAS = 0b1111, PMC selecting the current EL, SSC not Secure-only) matches an instruction whose VA[48:2]
/// equals DBGBVR[48:2] (no FEAT_LVA: ID_AA64MMFR2_EL1.VARange = 0); a watchpoint (DBGWCR.WT = 0, E = 1, PAC, LSC for
/// loads/stores, BAS bytes of the doubleword at DBGWVR[48:3] — BAS[3:0] of the word at DBGWVR when DBGWVR[2] is set —
/// or, with MASK = 3..31, the 2^MASK-byte block) matches an access that touches a watched byte; FAR = the lowest
/// watched byte the access touches (Arm ARM D2.10.5 allows any address between the access's lowest and the highest
/// watched one in the block). ESR: IL, ISS IFSC/DFSC 0x22 (debug), WnR for a store.
/// Not modelled: linked and context breakpoints (BT ≠ 0, WT = 1: never match), HMC (EL2 matching), BAS ≠ 0b1111 for
/// an A64 breakpoint (CONSTRAINED UNPREDICTABLE: treated as not matching), the reserved MASK values 1 and 2 (not
/// matching), the priority of an Instruction Abort over a breakpoint on the same fetch (the breakpoint is checked
/// first), watchpoints on cache maintenance (CM), the access length of SVE and some SIMD forms (the first byte of each
/// access they make is checked), and the guest's own breakpoints/watchpoints (DBGBCRn_EL1 … written by the guest are
/// stored, Arm64DebugRegs.cs, never armed: with host debugging on, 6.18 routes them to userspace too; with it off, the
/// guest-owned ones would be taken at EL1).
/// </summary>
internal sealed class Arm64HostDebug
{
    /// <summary>asm/esr.h ESR_ELx_EC_BREAKPT_LOW: a hardware breakpoint from a lower EL.</summary>
    public const uint EcBreakpointLow = 0x30;

    /// <summary>asm/esr.h ESR_ELx_EC_WATCHPT_LOW: a watchpoint from a lower EL.</summary>
    public const uint EcWatchpointLow = 0x34;

    /// <summary>asm/esr.h ESR_ELx_EC_BRK64: a BRK instruction.</summary>
    public const uint EcBrk64 = 0x3C;

    /// <summary>ESR_ELx.IL.</summary>
    private const uint EsrIl = 1u << 25;

    /// <summary>ISS IFSC/DFSC 0b100010: a debug exception.</summary>
    private const uint FscDebug = 0x22;

    /// <summary>Watchpoint ISS WnR (bit 6): the access was a write.</summary>
    private const uint IssWnR = 1u << 6;

    /// <summary>Implemented breakpoints: ID_AA64DFR0_EL1.BRPs (bits 15:12) + 1 of the emulated host.</summary>
    public static readonly int Breakpoints = (int)((Arm64HostCpu.Aa64Dfr0 >> 12) & 0xf) + 1;

    /// <summary>Implemented watchpoints: ID_AA64DFR0_EL1.WRPs (bits 23:20) + 1 of the emulated host.</summary>
    public static readonly int Watchpoints = (int)((Arm64HostCpu.Aa64Dfr0 >> 20) & 0xf) + 1;

    /// <summary>VA bits [48:2] a breakpoint compares (no FEAT_LVA).</summary>
    private const ulong BvrMask = 0x0001_FFFF_FFFF_FFFCUL;

    /// <summary>The bits of a 49-bit VA (bits 48:0).</summary>
    private const ulong VaMask = 0x0001_FFFF_FFFF_FFFFUL;

    private readonly (ulong Bvr, ulong Bcr)[] _breakpoints;
    private readonly (ulong Wvr, ulong Wcr)[] _watchpoints;

    private Arm64HostDebug((ulong, ulong)[] breakpoints, (ulong, ulong)[] watchpoints)
    {
        _breakpoints = breakpoints;
        _watchpoints = watchpoints;
    }

    /// <summary>Armed watchpoints exist (the interpreter checks data accesses only then).</summary>
    public bool HasWatchpoints => _watchpoints.Length != 0;

    /// <summary>
    /// KVM_SET_GUEST_DEBUG accepted with <paramref name="control"/> (already checked against KVM_GUESTDBG_VALID_MASK):
    /// arms what the next guest entry uses. <paramref name="dbg"/> is the whole arm64 struct kvm_guest_debug
    /// (control, pad, then dbg_bcr[16], dbg_bvr[16], dbg_wcr[16], dbg_wvr[16]).
    /// </summary>
    public static void Set(Arm64VcpuState state, uint control, ReadOnlySpan<byte> dbg)
    {
        if ((control & KvmConstants.KVM_GUESTDBG_ENABLE) == 0)
        {
            state.Interpreter.HostDebug = null;
            return;
        }
        var bps = new List<(ulong, ulong)>();
        var wps = new List<(ulong, ulong)>();
        if ((control & Abi.Arm64.KvmArm64GuestDebug.KVM_GUESTDBG_USE_HW) != 0)
        {
            const int Arr = 16 * 8;
            for (int i = 0; i < Breakpoints; i++)
            {
                ulong bcr = BinaryPrimitives.ReadUInt64LittleEndian(dbg[(8 + i * 8)..]);
                ulong bvr = BinaryPrimitives.ReadUInt64LittleEndian(dbg[(8 + Arr + i * 8)..]);
                if ((bcr & 1) != 0) bps.Add((bvr, bcr));
            }
            for (int i = 0; i < Watchpoints; i++)
            {
                ulong wcr = BinaryPrimitives.ReadUInt64LittleEndian(dbg[(8 + 2 * Arr + i * 8)..]);
                ulong wvr = BinaryPrimitives.ReadUInt64LittleEndian(dbg[(8 + 3 * Arr + i * 8)..]);
                if ((wcr & 1) != 0) wps.Add((wvr, wcr));
            }
        }
        state.Interpreter.HostDebug = new Arm64HostDebug([.. bps], [.. wps]);
    }

    /// <summary>
    /// DBGBCR.PMC / DBGWCR.PAC (bits 2:1) with SSC (bits 15:14): bit 1 of the field enables EL1, bit 2 EL0; SSC 0b10
    /// (Secure state only) never matches the Non-secure guest.
    /// </summary>
    private static bool ElMatches(ulong control, bool el0) =>
        ((control >> 14) & 3) != 2 && (control & (el0 ? 4UL : 2UL)) != 0;

    /// <summary>An armed breakpoint matches the instruction at <paramref name="pc"/> (Arm ARM D2.9.3).</summary>
    public bool BreakpointAt(ulong pc, bool el0)
    {
        foreach (var (bvr, bcr) in _breakpoints)
        {
            // BT (bits 23:20) = 0b0000: unlinked address match; BAS (bits 8:5) = 0b1111 for an A64 instruction.
            if (((bcr >> 20) & 0xf) != 0 || ((bcr >> 5) & 0xf) != 0xf || !ElMatches(bcr, el0)) continue;
            if (((pc ^ bvr) & BvrMask) == 0) return true;
        }
        return false;
    }

    /// <summary>
    /// The lowest watched byte a data access of <paramref name="length"/> bytes at <paramref name="va"/> touches, or
    /// null (Arm ARM D2.10.3/D2.10.4: LSC 0b01 loads, 0b10 stores, 0b11 both).
    /// </summary>
    public ulong? WatchpointHit(ulong va, int length, bool write, bool el0)
    {
        ulong? hit = null;
        ulong start = va & VaMask;
        foreach (var (wvr, wcr) in _watchpoints)
        {
            ulong lsc = (wcr >> 3) & 3;
            if ((wcr & (1UL << 20)) != 0 || (lsc & (write ? 2UL : 1UL)) == 0 || !ElMatches(wcr, el0)) continue;
            int mask = (int)((wcr >> 24) & 0x1f);
            ulong lo, hi; // the watched bytes [lo, hi], as VA[48:0]
            if (mask != 0)
            {
                if (mask < 3) continue; // reserved
                lo = wvr & VaMask & ~((1UL << mask) - 1);
                hi = lo + (1UL << mask) - 1;
                ulong first = Math.Max(lo, start), last = Math.Min(hi, start + (ulong)length - 1);
                if (first <= last && (hit is null || first < hit)) hit = first;
                continue;
            }
            uint bas = (uint)((wcr >> 5) & 0xff);
            if ((wvr & 4) != 0) bas = (bas & 0xf) << 4;
            ulong dword = wvr & VaMask & ~7UL;
            for (int b = 0; b < 8; b++)
            {
                if ((bas & (1u << b)) == 0) continue;
                ulong a = dword + (ulong)b;
                if (a >= start && a - start < (ulong)length && (hit is null || a < hit)) hit = a;
            }
        }
        // FAR keeps the VA's top bits (the access's own address space).
        return hit is ulong h ? (va & ~VaMask) | h : null;
    }

    /// <summary>The ESR of a hardware breakpoint: EC 0x30, IL, IFSC 0x22.</summary>
    public static uint BreakpointEsr => (EcBreakpointLow << 26) | EsrIl | FscDebug;

    /// <summary>The ESR of a watchpoint: EC 0x34, IL, WnR for a write, DFSC 0x22.</summary>
    public static uint WatchpointEsr(bool write) => (EcWatchpointLow << 26) | EsrIl | (write ? IssWnR : 0) | FscDebug;

    /// <summary>The ESR of BRK #imm16: EC 0x3C, IL, ISS = the immediate (Arm ARM, "ISS encoding for an exception from a BRK instruction").</summary>
    public static uint BrkEsr(uint imm16) => (EcBrk64 << 26) | EsrIl | (imm16 & 0xffff);
}

/// <summary>A debug exception routed to EL2 (MDCR_EL2.TDE) in the middle of an instruction: KVM_EXIT_DEBUG, the instruction not executed.</summary>
internal sealed class HostDebugStop(uint esr, ulong? far) : A64Stop($"debug exception esr=0x{esr:X}")
{
    /// <summary>ESR_EL2 (hsr).</summary>
    public uint Esr { get; } = esr;

    /// <summary>FAR_EL2 for a watchpoint.</summary>
    public ulong? Far { get; } = far;
}
