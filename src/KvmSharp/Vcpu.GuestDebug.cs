// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>The number of debug registers in <c>struct kvm_guest_debug_arch</c> (x86: DR0–DR7).</summary>
    public const int GuestDebugRegisterCount = 8;

    private const int GuestDebugLayoutUnknown = 0, GuestDebugLayoutX86 = 1, GuestDebugLayoutArm64 = 2;

    /// <summary>
    /// Which struct kvm_guest_debug this vCPU's kernel takes: known arm64 after a KVM_ARM_VCPU_INIT through the SDK or
    /// an arm64 KVM_SET_GUEST_DEBUG that succeeded, x86 after an x86 one that succeeded.
    /// </summary>
    private int _guestDebugLayout;

    /// <summary>The vCPU is an arm64 one (<see cref="Arm64Vcpu.Init(Vcpu, kvm_vcpu_init)"/> succeeded).</summary>
    internal void MarkArm64() => _guestDebugLayout = GuestDebugLayoutArm64;

    /// <summary>
    /// KVM_SET_GUEST_DEBUG (KVM_CAP_SET_GUEST_DEBUG): debug this vCPU from the host, the way a gdb stub does. With
    /// <see cref="GuestDebugFlags.Enable"/> the chosen events end <see cref="Run"/> with KVM_EXIT_DEBUG
    /// (<see cref="VcpuExit.DebugException"/>, <see cref="VcpuExit.DebugPc"/>, …); without it debugging is off
    /// (<see cref="DisableGuestDebug"/>). <paramref name="debugRegs"/> fills kvm_guest_debug_arch.debugreg (at most
    /// <see cref="GuestDebugRegisterCount"/> values: DR0–DR3 breakpoint addresses, DR7 at index 7), used with
    /// <see cref="GuestDebugFlags.UseHardwareBreakpoints"/>; missing values are 0.
    /// On arm64 the call sends arm64's struct (<see cref="Arm64VcpuDebug.SetGuestDebug"/> with the same flags and no
    /// hardware registers; exits read with <see cref="VcpuExit.Arm64Debug"/>): the vCPU is known to be arm64 once
    /// initialized with <see cref="Arm64Vcpu.Init(Vcpu, kvm_vcpu_init)"/>, else an x86 request refused with EINVAL is
    /// retried in the arm64 layout. arm64 has no DR0–DR7: use <see cref="Arm64GuestDebugOptions.Breakpoints"/>.
    /// </summary>
    /// <param name="flags">The KVM_GUESTDBG_* bits; x86 takes unknown bits without complaint (probed: Linux 6.18).</param>
    /// <param name="debugRegs">Up to eight values for debugreg[0..7] (x86 only).</param>
    /// <exception cref="ArgumentException">More than eight debug register values, or any on an arm64 vCPU.</exception>
    /// <exception cref="KvmException">
    /// EBUSY: an INJECT_DB/INJECT_BP while an exception is pending or a triple fault is requested (e.g. by
    /// <see cref="InjectMachineCheck"/> with CR4.MCE clear; one KVM_SET_VCPU_EVENTS marked injected is
    /// replaced instead); EINVAL: a confidential vCPU whose state is protected, or (arm64) bits outside the supported set.
    /// </exception>
    public void SetGuestDebug(GuestDebugFlags flags, ReadOnlySpan<ulong> debugRegs = default)
    {
        if (debugRegs.Length > GuestDebugRegisterCount)
            throw new ArgumentException($"at most {GuestDebugRegisterCount} debug registers, got {debugRegs.Length}", nameof(debugRegs));
        if (_guestDebugLayout == GuestDebugLayoutArm64)
        {
            SetGuestDebugArm64(flags, debugRegs);
            return;
        }
        var dbg = new kvm_guest_debug { control = (uint)flags };
        for (int i = 0; i < debugRegs.Length; i++) dbg.arch.debugreg[i] = debugRegs[i];
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_GUEST_DEBUG, KvmCall.Bytes(ref dbg));
        if (rc == -(long)Errno.EINVAL && _guestDebugLayout == GuestDebugLayoutUnknown && debugRegs.IsEmpty)
        {
            // An arm64 kernel does not know x86's request number (kvm_arch_vcpu_ioctl: "default: r = -EINVAL"), nor an
            // x86 kernel arm64's: the same control in arm64's layout tells them apart and, on arm64, does the work.
            var arm64 = new kvm_guest_debug_arm64 { control = (uint)flags };
            if (!KvmCall.IsError(Kernel.Ioctl(Handle, KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64, KvmCall.Bytes(ref arm64))))
            {
                _guestDebugLayout = GuestDebugLayoutArm64;
                return;
            }
        }
        KvmCall.Check(rc, "KVM_SET_GUEST_DEBUG",
            $"vcpu={Id} control=0x{dbg.control:X} dr0=0x{dbg.arch.debugreg[0]:X} dr7=0x{dbg.arch.debugreg[7]:X}");
        _guestDebugLayout = GuestDebugLayoutX86;
    }

    private void SetGuestDebugArm64(GuestDebugFlags flags, ReadOnlySpan<ulong> debugRegs)
    {
        if (!debugRegs.IsEmpty)
            throw new ArgumentException("arm64 has no DR0-DR7: pass hardware breakpoints and watchpoints as " +
                "Arm64GuestDebugOptions to KvmSharp.Arm64.Arm64VcpuDebug.SetGuestDebug", nameof(debugRegs));
        var dbg = new kvm_guest_debug_arm64 { control = (uint)flags };
        SetGuestDebugArm64(ref dbg);
    }

    /// <summary>KVM_SET_GUEST_DEBUG with arm64's struct kvm_guest_debug (<see cref="Arm64VcpuDebug.SetGuestDebug"/>).</summary>
    internal void SetGuestDebugArm64(ref kvm_guest_debug_arm64 dbg)
    {
        long rc = Kernel.Ioctl(Handle, KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64, KvmCall.Bytes(ref dbg));
        if (KvmCall.IsError(rc))
        {
            KvmCall.ThrowKvm(rc, "KVM_SET_GUEST_DEBUG",
                $"vcpu={Id} arm64 control=0x{dbg.control:X} breakpoints={Enabled(dbg.arch.dbg_bcr)} watchpoints={Enabled(dbg.arch.dbg_wcr)}");
        }
        _guestDebugLayout = GuestDebugLayoutArm64;
    }

    /// <summary>How many control registers have E (bit 0) set.</summary>
    private static int Enabled(ReadOnlySpan<ulong> controls)
    {
        int n = 0;
        foreach (ulong c in controls) n += (int)(c & 1);
        return n;
    }

    /// <summary>
    /// Single-step: from the next <see cref="Run"/> on, each instruction the vCPU completes ends the run with
    /// KVM_EXIT_DEBUG, exception 1, <see cref="VcpuExit.DebugPc"/> = the next instruction's linear address
    /// (arm64: <see cref="VcpuExit.Arm64Debug"/> with EC 0x32, the PC read with <see cref="Arm64Vcpu.GetPc"/>).
    /// </summary>
    /// <param name="alsoSoftwareBreakpoints">Also stop at INT3 (arm64: BRK) (KVM_GUESTDBG_USE_SW_BP).</param>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void EnableSingleStep(bool alsoSoftwareBreakpoints = false) =>
        SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep |
                      (alsoSoftwareBreakpoints ? GuestDebugFlags.UseSoftwareBreakpoints : GuestDebugFlags.None));

    /// <summary>
    /// An execute breakpoint of the host at the linear address <paramref name="address"/> (DR0 = address, DR7 = L0,
    /// execute, length 1): <see cref="Run"/> ends with KVM_EXIT_DEBUG, exception 1, before that instruction runs —
    /// and again on every later run until the breakpoint is removed (the host's breakpoints ignore RFLAGS.RF).
    /// On a vCPU known to be arm64: dbg_bvr[0] = address, dbg_bcr[0] =
    /// <see cref="Arm64DebugRegisterPair.ExecuteBreakpointControl"/> with KVM_GUESTDBG_USE_HW.
    /// </summary>
    /// <param name="address">The instruction's linear address (CS base + RIP; arm64: the virtual address).</param>
    /// <param name="singleStep">Also single-step.</param>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void SetHardwareBreakpoint(ulong address, bool singleStep = false)
    {
        var flags = GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints |
                    (singleStep ? GuestDebugFlags.SingleStep : GuestDebugFlags.None);
        if (_guestDebugLayout == GuestDebugLayoutArm64)
        {
            this.SetGuestDebug(new Arm64GuestDebugOptions { Flags = flags, Breakpoints = [Arm64DebugRegisterPair.ExecuteBreakpoint(address)] });
            return;
        }
        Span<ulong> regs = stackalloc ulong[GuestDebugRegisterCount];
        regs[0] = address;
        regs[7] = 0x401; // DR7: L0, RW0 = LEN0 = 0 (instruction), bit 10 reads as 1
        SetGuestDebug(flags, regs);
    }

    /// <summary>KVM_SET_GUEST_DEBUG with control 0: host debugging off (single-step and breakpoints removed).</summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void DisableGuestDebug() => SetGuestDebug(GuestDebugFlags.None);
}
