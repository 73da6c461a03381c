// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>The number of debug registers in <c>struct kvm_guest_debug_arch</c> (x86: DR0–DR7).</summary>
    public const int GuestDebugRegisterCount = 8;

    /// <summary>
    /// KVM_SET_GUEST_DEBUG (KVM_CAP_SET_GUEST_DEBUG): debug this vCPU from the host, the way a gdb stub does. With
    /// <see cref="GuestDebugFlags.Enable"/> the chosen events end <see cref="Run"/> with KVM_EXIT_DEBUG
    /// (<see cref="VcpuExit.DebugException"/>, <see cref="VcpuExit.DebugPc"/>, …); without it debugging is off
    /// (<see cref="DisableGuestDebug"/>). <paramref name="debugRegs"/> fills kvm_guest_debug_arch.debugreg (at most
    /// <see cref="GuestDebugRegisterCount"/> values: DR0–DR3 breakpoint addresses, DR7 at index 7), used with
    /// <see cref="GuestDebugFlags.UseHardwareBreakpoints"/>; missing values are 0.
    /// </summary>
    /// <param name="flags">The KVM_GUESTDBG_* bits; x86 takes unknown bits without complaint (probed: Linux 6.18).</param>
    /// <param name="debugRegs">Up to eight values for debugreg[0..7].</param>
    /// <exception cref="ArgumentException">More than eight debug register values.</exception>
    /// <exception cref="KvmException">
    /// EBUSY: an INJECT_DB/INJECT_BP while an exception is pending or a triple fault is requested (e.g. by
    /// <see cref="InjectMachineCheck"/> with CR4.MCE clear; one KVM_SET_VCPU_EVENTS marked injected is
    /// replaced instead); EINVAL: a confidential vCPU whose state is protected, or (arm64) bits outside the supported set.
    /// </exception>
    public void SetGuestDebug(GuestDebugFlags flags, ReadOnlySpan<ulong> debugRegs = default)
    {
        if (debugRegs.Length > GuestDebugRegisterCount)
            throw new ArgumentException($"at most {GuestDebugRegisterCount} debug registers, got {debugRegs.Length}", nameof(debugRegs));
        var dbg = new kvm_guest_debug { control = (uint)flags };
        for (int i = 0; i < debugRegs.Length; i++) dbg.arch.debugreg[i] = debugRegs[i];
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_GUEST_DEBUG, KvmCall.Bytes(ref dbg)), "KVM_SET_GUEST_DEBUG",
            $"vcpu={Id} control=0x{dbg.control:X} dr0=0x{dbg.arch.debugreg[0]:X} dr7=0x{dbg.arch.debugreg[7]:X}");
    }

    /// <summary>
    /// Single-step: from the next <see cref="Run"/> on, each instruction the vCPU completes ends the run with
    /// KVM_EXIT_DEBUG, exception 1, <see cref="VcpuExit.DebugPc"/> = the next instruction's linear address.
    /// </summary>
    /// <param name="alsoSoftwareBreakpoints">Also stop at INT3 (KVM_GUESTDBG_USE_SW_BP).</param>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void EnableSingleStep(bool alsoSoftwareBreakpoints = false) =>
        SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep |
                      (alsoSoftwareBreakpoints ? GuestDebugFlags.UseSoftwareBreakpoints : GuestDebugFlags.None));

    /// <summary>
    /// An execute breakpoint of the host at the linear address <paramref name="address"/> (DR0 = address, DR7 = L0,
    /// execute, length 1): <see cref="Run"/> ends with KVM_EXIT_DEBUG, exception 1, before that instruction runs —
    /// and again on every later run until the breakpoint is removed (the host's breakpoints ignore RFLAGS.RF).
    /// </summary>
    /// <param name="address">The instruction's linear address (CS base + RIP).</param>
    /// <param name="singleStep">Also single-step.</param>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void SetHardwareBreakpoint(ulong address, bool singleStep = false)
    {
        Span<ulong> regs = stackalloc ulong[GuestDebugRegisterCount];
        regs[0] = address;
        regs[7] = 0x401; // DR7: L0, RW0 = LEN0 = 0 (instruction), bit 10 reads as 1
        SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints |
                      (singleStep ? GuestDebugFlags.SingleStep : GuestDebugFlags.None), regs);
    }

    /// <summary>KVM_SET_GUEST_DEBUG with control 0: host debugging off (single-step and breakpoints removed).</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void DisableGuestDebug() => SetGuestDebug(GuestDebugFlags.None);
}
