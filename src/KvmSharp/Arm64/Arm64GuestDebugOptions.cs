// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Arm64;

/// <summary>
/// One hardware breakpoint or watchpoint of <see cref="Arm64GuestDebugOptions"/>: the value register (DBGBVRn_EL1 /
/// DBGWVRn_EL1, the address) and the control register (DBGBCRn_EL1 / DBGWCRn_EL1: E, PMC, BAS, …; Arm ARM D19.3)
/// that kvm_guest_debug_arch.dbg_bvr/dbg_bcr (or dbg_wvr/dbg_wcr) carry at the same index.
/// </summary>
/// <param name="Value">The address register (dbg_bvr[n] / dbg_wvr[n]).</param>
/// <param name="Control">The control register (dbg_bcr[n] / dbg_wcr[n]); bit 0 (E) enables it.</param>
public readonly record struct Arm64DebugRegisterPair(ulong Value, ulong Control)
{
    /// <summary>
    /// DBGBCR of an enabled execute breakpoint at EL1 and EL0 on an A64 instruction: E (bit 0), PMC = 0b11 (bits 2:1),
    /// BAS = 0b1111 (bits 8:5) — 0x1E7, the value qemu's gdbstub programs (target/arm/hyp_gdbstub.c insert_hw_breakpoint).
    /// </summary>
    public const ulong ExecuteBreakpointControl = 0x1E7;

    /// <summary>An execute breakpoint at <paramref name="address"/> (<see cref="ExecuteBreakpointControl"/>).</summary>
    /// <param name="address">The instruction's virtual address (bits 1:0 clear).</param>
    public static Arm64DebugRegisterPair ExecuteBreakpoint(ulong address) => new(address, ExecuteBreakpointControl);
}

/// <summary>
/// What arm64 KVM_SET_GUEST_DEBUG sends (<see cref="Arm64VcpuDebug.SetGuestDebug"/>): the KVM_GUESTDBG_* control bits
/// and up to <see cref="MaxRegisters"/> hardware breakpoints and watchpoints, which the kernel reads only with
/// <see cref="GuestDebugFlags.UseHardwareBreakpoints"/> (arm64's KVM_GUESTDBG_USE_HW, the same bit as x86's USE_HW_BP).
/// arm64 accepts <see cref="GuestDebugFlags.Enable"/>, <see cref="GuestDebugFlags.SingleStep"/>,
/// <see cref="GuestDebugFlags.UseSoftwareBreakpoints"/> (a guest BRK exits) and UseHardwareBreakpoints; any other bit
/// is EINVAL (arch/arm64/kvm/guest.c kvm_arch_vcpu_ioctl_set_guest_debug, KVM_GUESTDBG_VALID_MASK).
/// </summary>
public sealed class Arm64GuestDebugOptions
{
    /// <summary>KVM_ARM_MAX_DBG_REGS: at most this many breakpoints, and as many watchpoints.</summary>
    public const int MaxRegisters = KvmArm64GuestDebug.KVM_ARM_MAX_DBG_REGS;

    private readonly Arm64DebugRegisterPair[] _breakpoints = [];
    private readonly Arm64DebugRegisterPair[] _watchpoints = [];

    /// <summary>kvm_guest_debug.control: the KVM_GUESTDBG_* bits.</summary>
    public GuestDebugFlags Flags { get; init; }

    /// <summary>
    /// dbg_bvr[n]/dbg_bcr[n] for n = 0.. (at most <see cref="MaxRegisters"/>; copied when set); the rest are 0.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">More than <see cref="MaxRegisters"/> pairs.</exception>
    public IReadOnlyList<Arm64DebugRegisterPair> Breakpoints
    {
        get => _breakpoints;
        init => _breakpoints = Bounded(value, nameof(Breakpoints));
    }

    /// <summary>
    /// dbg_wvr[n]/dbg_wcr[n] for n = 0.. (at most <see cref="MaxRegisters"/>; copied when set); the rest are 0.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">More than <see cref="MaxRegisters"/> pairs.</exception>
    public IReadOnlyList<Arm64DebugRegisterPair> Watchpoints
    {
        get => _watchpoints;
        init => _watchpoints = Bounded(value, nameof(Watchpoints));
    }

    /// <summary>Single-step (ENABLE | SINGLESTEP), no hardware registers.</summary>
    public static Arm64GuestDebugOptions SingleStep { get; } = new() { Flags = GuestDebugFlags.Enable | GuestDebugFlags.SingleStep };

    /// <summary>Host debugging off (control 0).</summary>
    public static Arm64GuestDebugOptions Disabled { get; } = new();

    /// <summary>The arm64 <c>struct kvm_guest_debug</c> these options stand for.</summary>
    public kvm_guest_debug_arm64 ToAbi()
    {
        var dbg = new kvm_guest_debug_arm64 { control = (uint)Flags };
        for (int i = 0; i < _breakpoints.Length; i++)
        {
            dbg.arch.dbg_bvr[i] = _breakpoints[i].Value;
            dbg.arch.dbg_bcr[i] = _breakpoints[i].Control;
        }
        for (int i = 0; i < _watchpoints.Length; i++)
        {
            dbg.arch.dbg_wvr[i] = _watchpoints[i].Value;
            dbg.arch.dbg_wcr[i] = _watchpoints[i].Control;
        }
        return dbg;
    }

    /// <summary>
    /// The options of an arm64 <c>struct kvm_guest_debug</c>: its control bits, and its breakpoints and watchpoints up
    /// to the last pair that is not all zero (pad is ignored).
    /// </summary>
    /// <param name="dbg">The struct.</param>
    public static Arm64GuestDebugOptions FromAbi(in kvm_guest_debug_arm64 dbg)
    {
        var arch = dbg.arch;
        return new Arm64GuestDebugOptions
        {
            Flags = (GuestDebugFlags)dbg.control,
            Breakpoints = Pairs(arch.dbg_bvr, arch.dbg_bcr),
            Watchpoints = Pairs(arch.dbg_wvr, arch.dbg_wcr),
        };
    }

    private static Arm64DebugRegisterPair[] Pairs(ReadOnlySpan<ulong> values, ReadOnlySpan<ulong> controls)
    {
        int n = MaxRegisters;
        while (n > 0 && values[n - 1] == 0 && controls[n - 1] == 0) n--;
        var pairs = new Arm64DebugRegisterPair[n];
        for (int i = 0; i < n; i++) pairs[i] = new Arm64DebugRegisterPair(values[i], controls[i]);
        return pairs;
    }

    private static Arm64DebugRegisterPair[] Bounded(IReadOnlyList<Arm64DebugRegisterPair> value, string name)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        if (value.Count > MaxRegisters)
            throw new ArgumentOutOfRangeException(name, value.Count, $"at most {MaxRegisters} (KVM_ARM_MAX_DBG_REGS) pairs");
        return [.. value];
    }
}
