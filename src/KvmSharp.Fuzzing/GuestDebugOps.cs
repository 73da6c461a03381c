// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.GuestDebugSet"/> and <see cref="OpKind.GuestDebugRun"/> draw for KVM_SET_GUEST_DEBUG
/// (arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_set_guest_debug; rules probed in src/KvmSharp.Conformance/Cases/GuestDebug.cs):
/// control bits valid and not (x86 checks none), INJECT_DB/INJECT_BP alone, together and with ENABLE (EBUSY while an
/// exception is pending), and debugreg[0..7]: execute breakpoints on an instruction of the guest, inside one, on
/// the exception handlers and outside the code, data and I/O breakpoints (never reported here), L/G enables,
/// RW/LEN values that make an execute breakpoint no breakpoint, DR7's high half. Kept away from this host's
/// deviations: the guests contain no INT3, so USE_SW_BP never meets one (HostDeviations.KvmPvmSoftwareBreakpointNotIntercepted).
/// </summary>
internal static class GuestDebugOps
{
    public const uint Enable = KvmConstants.KVM_GUESTDBG_ENABLE, SingleStep = KvmConstants.KVM_GUESTDBG_SINGLESTEP;
    public const uint SwBp = KvmConstants.KVM_GUESTDBG_USE_SW_BP, HwBp = KvmConstants.KVM_GUESTDBG_USE_HW_BP;
    public const uint InjectDb = KvmConstants.KVM_GUESTDBG_INJECT_DB, InjectBp = KvmConstants.KVM_GUESTDBG_INJECT_BP;
    public const uint BlockIrq = KvmConstants.KVM_GUESTDBG_BLOCKIRQ;

    /// <summary>DR7.GD: left out of what a guest runs with (its MOV DR would meet the host's DR7).</summary>
    public const ulong Dr7Gd = 1UL << 13;

    public static uint Control(Random rng) => rng.Next(12) switch
    {
        < 6 => Enable | (rng.Next(3) != 0 ? SingleStep : 0) | (rng.Next(2) == 0 ? HwBp : 0) | (rng.Next(6) == 0 ? BlockIrq : 0) | (rng.Next(8) == 0 ? SwBp : 0),
        6 => 0,
        7 => (rng.Next(3) switch { 0 => InjectDb, 1 => InjectBp, _ => InjectDb | InjectBp }) | (rng.Next(2) == 0 ? Enable | SingleStep : 0),
        8 => SingleStep | HwBp | (rng.Next(2) == 0 ? BlockIrq : 0),             // no ENABLE: debugging off
        9 => Enable | (rng.Next(2) == 0 ? SingleStep : 0) | (1u << rng.Next(2, 32)),  // an unknown (or known) bit
        10 => 1u << rng.Next(32),
        _ => (uint)rng.Next() | (rng.Next(2) == 0 ? 0x8000_0000u : 0),
    };

    /// <summary>debugreg[0..7] for <paramref name="rng"/>: addresses from <paramref name="addresses"/> mostly, a DR7 around its rules.</summary>
    public static void DebugRegs(Random rng, Span<ulong> regs, IReadOnlyList<ulong> addresses, bool withGd)
    {
        for (int i = 0; i < 4; i++)
        {
            regs[i] = rng.Next(8) switch
            {
                0 => 0,
                1 => (ulong)rng.NextInt64(),
                2 => addresses[rng.Next(addresses.Count)] + (ulong)rng.Next(1, 4),   // inside an instruction
                _ => addresses[rng.Next(addresses.Count)],
            };
        }
        ulong dr7 = rng.Next(4) == 0 ? 0UL : 0x400UL;
        for (int i = 0; i < 4; i++)
        {
            if (rng.Next(3) == 0) continue;
            dr7 |= (ulong)rng.Next(1, 4) << (2 * i);              // L, G or both
            ulong rwlen = rng.Next(6) switch
            {
                < 3 => 0UL,                                       // execute
                3 => 1 | ((ulong)rng.Next(4) << 2),               // data write
                4 => 3 | ((ulong)rng.Next(4) << 2),               // data read/write
                _ => (ulong)rng.Next(16),                         // anything: I/O, execute with a length
            };
            dr7 |= rwlen << (16 + 4 * i);
        }
        if (rng.Next(8) == 0) dr7 |= 0x300;                       // LE, GE
        if (rng.Next(8) == 0) dr7 |= (ulong)(uint)rng.Next() << 32;
        if (rng.Next(12) == 0) dr7 = (ulong)rng.NextInt64();
        if (!withGd) dr7 &= ~Dr7Gd;
        regs[7] = dr7;
        for (int i = 4; i < 7; i++) regs[i] = rng.Next(6) == 0 ? (ulong)rng.NextInt64() : 0;
    }

    /// <summary>The kvm_guest_debug of <paramref name="control"/> and <paramref name="regs"/> (pad now and then non-zero).</summary>
    public static kvm_guest_debug Struct(uint control, ReadOnlySpan<ulong> regs, uint pad = 0)
    {
        var dbg = new kvm_guest_debug { control = control, pad = pad };
        for (int i = 0; i < 8; i++) dbg.arch.debugreg[i] = regs[i];
        return dbg;
    }
}
