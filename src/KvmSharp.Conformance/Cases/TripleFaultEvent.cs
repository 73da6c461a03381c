// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.X86;
using Xunit;
using static KvmSharp.Abi.KvmVcpuEvents;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_CAP_X86_TRIPLE_FAULT_EVENT (arch/x86/kvm/x86.c kvm_vm_ioctl_enable_cap, kvm_vcpu_ioctl_x86_get_vcpu_events /
/// set_vcpu_events, vcpu_enter_guest's KVM_REQ_TRIPLE_FAULT → KVM_EXIT_SHUTDOWN; Documentation/virt/kvm/api.rst
/// KVM_CAP_X86_TRIPLE_FAULT_EVENT). Probed on Linux 6.18 kvm_pvm in C first: every rule here is upstream's.
/// </summary>
public static class TripleFaultEvent
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const ulong Start = LongModeGuest.CodeGpa;
    private const ulong Val = 1UL << 63, Uc = 1UL << 61, En = 1UL << 60, S = 1UL << 56, Ar = 1UL << 55;
    private const ulong Cr4Mce = 1UL << 6;

    private static void Halts(Assembler a)
    {
        a.hlt();
        a.hlt();
        a.hlt();
    }

    private static IdtGuest Guest(Kvm kvm) => IdtGuest.Create(kvm, Halts, Enumerable.Range(0, 32).Select(v => new IdtVector(v)));

    private static long SetEventsRaw(CaseContext ctx, Vcpu vcpu, kvm_vcpu_events events) =>
        ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_VCPU_EVENTS, Bytes(ref events));

    private static Span<byte> Bytes(ref kvm_vcpu_events events) =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<kvm_vcpu_events>(ref events));

    [ConformanceCase(X86 + " kvm_vm_ioctl_enable_cap KVM_CAP_X86_TRIPLE_FAULT_EVENT: 1 on the VM; off at creation (GET_VCPU_EVENTS without VALID_TRIPLE_FAULT, SET with it EINVAL after the other parts were applied, the pending field ignored without the flag); triple_fault_event = args[0] as a bool, allowed after KVM_CREATE_VCPU, 0 turns it off; flags != 0 and the vCPU fd are EINVAL")]
    public static void triple_fault_event_is_a_vm_cap_off_until_enabled(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_X86_TRIPLE_FAULT_EVENT));
        using var vcpu = vm.CreateVcpu();
        var e = vcpu.GetEvents();
        Assert.Equal(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM, e.flags);
        Assert.Null(vcpu.GetTripleFaultPending());

        // Refused without the cap, after the NMI part was applied (the kernel's order).
        e.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
        e.nmi_pending = 1;
        e.triple_fault_pending = 1;
        Assert.Equal(-(long)Errno.EINVAL, SetEventsRaw(ctx, vcpu, e));
        Assert.Equal(1, vcpu.GetEvents().nmi_pending);
        var ex = Assert.Throws<KvmException>(() => vcpu.SetTripleFaultPending(false));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        // Without the flag the field is not looked at.
        e.flags = 0;
        Assert.Equal(0, SetEventsRaw(ctx, vcpu, e));

        vm.EnableTripleFaultEvent();
        e = vcpu.GetEvents();
        Assert.Equal(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_TRIPLE_FAULT, e.flags);
        Assert.False(vcpu.GetTripleFaultPending());

        vm.EnableTripleFaultEvent(enable: false);
        Assert.Null(vcpu.GetTripleFaultPending());
        vm.EnableCapability(KvmCaps.KVM_CAP_X86_TRIPLE_FAULT_EVENT, 0x100, 5);
        Assert.False(vcpu.GetTripleFaultPending());

        var flagged = Assert.Throws<KvmException>(() => vm.EnableCapability(new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X86_TRIPLE_FAULT_EVENT, flags = 1 }));
        Assert.Equal(Errno.EINVAL, flagged.Errno);
        var onVcpu = Assert.Throws<KvmException>(() => vcpu.EnableCapability(KvmCaps.KVM_CAP_X86_TRIPLE_FAULT_EVENT, 1));
        Assert.Equal(Errno.EINVAL, onVcpu.Errno);
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_set_vcpu_events VALID_TRIPLE_FAULT: a non-zero pending makes KVM_REQ_TRIPLE_FAULT (reads back 1), 0 clears it; a SET without the flag keeps it; KVM_RUN with immediate_exit is EINTR and leaves it; the next KVM_RUN ends in KVM_EXIT_SHUTDOWN without running the guest and clears it; the one after runs on")]
    public static void pending_triple_fault_ends_the_next_run_in_shutdown(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm);
        g.Guest.Vm.EnableTripleFaultEvent();
        var v = g.Vcpu;

        var e = v.GetEvents();
        e.triple_fault_pending = 7;
        Assert.Equal(0, SetEventsRaw(ctx, v, e));
        Assert.Equal(1, v.GetEvents().triple_fault_pending);
        v.SetTripleFaultPending(false);
        Assert.False(v.GetTripleFaultPending());
        v.SetTripleFaultPending(true);
        Assert.True(v.GetTripleFaultPending());
        e = v.GetEvents();
        e.flags = 0;
        e.triple_fault_pending = 0;
        Assert.Equal(0, SetEventsRaw(ctx, v, e));
        Assert.True(v.GetTripleFaultPending());

        v.ImmediateExit = true;
        Assert.True(v.Run().Interrupted);
        v.ImmediateExit = false;
        Assert.True(v.GetTripleFaultPending());
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, v.Run().Reason);
        Assert.Equal(Start, v.GetRegs().rip);
        Assert.False(v.GetTripleFaultPending());
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
        Assert.Equal(Start + 1, v.GetRegs().rip);
        Assert.Empty(g.Deliveries);
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_set_mce + get_vcpu_events: the KVM_REQ_TRIPLE_FAULT of an uncorrected error with CR4.MCE clear reads as triple_fault.pending, and SET_VCPU_EVENTS with pending 0 cancels it: the next KVM_RUN runs the guest")]
    public static void machine_check_triple_fault_is_pending_and_can_be_cancelled(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm);
        g.Guest.Vm.EnableTripleFaultEvent();
        var v = g.Vcpu;
        v.SetupMce(McgCap.CtlP | 2);
        var s = v.GetSregs();
        s.cr4 &= ~Cr4Mce;
        v.SetSregs(s);
        v.InjectMachineCheck(0, Val | Uc | En | S | Ar, 0x1000, 0x86, 0x5);
        Assert.True(v.GetTripleFaultPending());
        Assert.Equal(0, v.GetEvents().exception_injected);
        v.SetTripleFaultPending(false);
        Assert.False(v.GetTripleFaultPending());
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, v.Run().Reason);
        Assert.Equal(Start + 1, v.GetRegs().rip);
    }

    [ConformanceCase(X86 + " vcpu_enter_guest: a triple fault the guest causes while running (an injected #GP whose gate and #DF's are missing) ends that KVM_RUN in KVM_EXIT_SHUTDOWN, so with KVM_CAP_X86_TRIPLE_FAULT_EVENT it is not pending afterwards")]
    public static void guest_triple_fault_is_not_left_pending(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, Halts, Enumerable.Range(0, 32).Where(n => n is not (13 or 8)).Select(n => new IdtVector(n)));
        g.Guest.Vm.EnableTripleFaultEvent();
        var e = g.Vcpu.GetEvents();
        e.flags = 0;
        e.exception_injected = 1;
        e.exception_nr = 13;
        e.exception_has_error_code = 1;
        g.Vcpu.SetEvents(e);
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, g.Vcpu.Run().Reason);
        Assert.False(g.Vcpu.GetTripleFaultPending());
        Assert.Empty(g.Deliveries);
    }
}
