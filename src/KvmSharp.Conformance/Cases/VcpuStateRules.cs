// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Abi.KvmVcpuEvents;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The x86 vCPU state a VMM saves and restores besides regs/sregs/MSRs/CPUID (arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl:
/// KVM_GET/SET_FPU, _XCRS, _VCPU_EVENTS, _MP_STATE, _DEBUGREGS), at the raw-ioctl level. The SDK-level rules are in
/// tests/KvmSharp.Tests/Sdk/VcpuStateTests.cs.
/// </summary>
public static class VcpuStateRules
{
    private static readonly uint[] Requests =
    [
        KvmIoctls.KVM_GET_FPU, KvmIoctls.KVM_SET_FPU, KvmIoctls.KVM_GET_XCRS, KvmIoctls.KVM_SET_XCRS,
        KvmIoctls.KVM_GET_VCPU_EVENTS, KvmIoctls.KVM_SET_VCPU_EVENTS, KvmIoctls.KVM_GET_MP_STATE,
        KvmIoctls.KVM_SET_MP_STATE, KvmIoctls.KVM_GET_DEBUGREGS, KvmIoctls.KVM_SET_DEBUGREGS,
    ];

    [ConformanceCase("kvm_arch_vm_ioctl / kvm_arch_dev_ioctl: the vCPU state requests on a VM fd are ENOTTY, on /dev/kvm EINVAL")]
    public static void vcpu_state_requests_on_the_wrong_fd(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (uint request in Requests)
        {
            var buffer = new byte[512];
            CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, request, buffer), $"{KvmIoctls.NameOf(request)} on a VM");
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, request, buffer), $"{KvmIoctls.NameOf(request)} on /dev/kvm");
        }
    }

    [ConformanceCase("kvm_arch_vcpu_ioctl: the GET requests fill the whole struct from a zeroed copy (kzalloc / memset): pads, padding and reserved read 0")]
    public static void vcpu_state_gets_zero_every_pad(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var fpu = Get<kvm_fpu>(ctx, vcpu, KvmIoctls.KVM_GET_FPU);
        Assert.Equal((0, 0u, 0u, (ushort)0x37f), (fpu.pad1, fpu.pad2, fpu.mxcsr, fpu.fcw));
        var xcrs = Get<kvm_xcrs>(ctx, vcpu, KvmIoctls.KVM_GET_XCRS);
        Assert.Equal((1u, 0u, 0u, 0u, 1UL), (xcrs.nr_xcrs, xcrs.flags, xcrs.xcrs[0].xcr, xcrs.xcrs[0].reserved, xcrs.xcrs[0].value));
        for (int i = 1; i < kvm_xcrs.KVM_MAX_XCRS; i++) Assert.Equal(0UL, xcrs.xcrs[i].value | xcrs.xcrs[i].xcr);
        for (int i = 0; i < 16; i++) Assert.Equal(0UL, xcrs.padding[i]);
        var d = Get<kvm_debugregs>(ctx, vcpu, KvmIoctls.KVM_GET_DEBUGREGS);
        for (int i = 0; i < 9; i++) Assert.Equal(0UL, d.reserved[i]);
        Assert.Equal((0xffff0ff0UL, 0x400UL), (d.dr6, d.dr7));
        var ev = Get<kvm_vcpu_events>(ctx, vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS);
        Assert.Equal(0u, ev.sipi_vector); // "never valid when reporting to user space"
        for (int i = 0; i < 26; i++) Assert.Equal(0, ev.reserved[i]);
    }

    [ConformanceCase("kvm_vcpu_ioctl_x86_set_vcpu_events: VALID_SIPI_VECTOR and smi.latched_init are ignored without an in-kernel LAPIC; reserved bytes are not checked")]
    public static void vcpu_events_ignore_lapic_only_fields(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var ev = new kvm_vcpu_events { flags = KVM_VCPUEVENT_VALID_SIPI_VECTOR | KVM_VCPUEVENT_VALID_SMM, sipi_vector = 0x12, smi_latched_init = 1 };
        ev.reserved[0] = 0xff;
        vcpu.SetEvents(ev);
        var back = vcpu.GetEvents();
        Assert.Equal((0u, 0), (back.sipi_vector, back.smi_latched_init));
    }

    [ConformanceCase("kvm_vcpu_ioctl_x86_set_vcpu_events VALID_SHADOW: the interrupt shadow as the vendor keeps it (kvm_pvm: the byte as given)")]
    public static void vcpu_events_interrupt_shadow(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetEvents(new kvm_vcpu_events { flags = KVM_VCPUEVENT_VALID_SHADOW, interrupt_shadow = 0xff });
        byte shadow = vcpu.GetEvents().interrupt_shadow;
        // The emulator, having no VMX/SVM vendor code, keeps the byte as this host does.
        if (ctx.Target.IsReal && !HostDeviations.KvmPvmInterruptShadowStoredVerbatim(ctx.Target.IsReal))
            Assert.Equal(KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS, shadow); // upstream VMX and SVM
        else
            Assert.Equal(0xff, shadow);
    }

    private static T Get<T>(CaseContext ctx, Vcpu vcpu, uint request) where T : unmanaged
    {
        var buffer = new byte[Marshal.SizeOf<T>()];
        buffer.AsSpan().Fill(0xcc);
        Assert.Equal(0, ctx.Kernel.Ioctl(vcpu.Handle, request, buffer));
        return MemoryMarshal.Read<T>(buffer);
    }
}
