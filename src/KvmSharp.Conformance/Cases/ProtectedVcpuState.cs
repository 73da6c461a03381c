// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The register-state ioctls of a VM with protected state ("[PATCH v5 07/17] KVM: x86: add fields to struct kvm_arch
/// for CoCo features", merged for 6.10; arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_get_regs … kvm_vcpu_ioctl_x86_set_xcrs:
/// <c>has_protected_state &amp;&amp; guest_state_protected</c> → EINVAL, and get/set_fpu, get_xsave2, set_xsave:
/// <c>fpstate_is_confidential</c> → EINVAL). A TD's vCPU is protected from tdx_vcpu_create (vmx/tdx.c; not a debug
/// TD); a SEV-ES or SNP vCPU only after KVM_SEV_LAUNCH_UPDATE_VMSA / KVM_SEV_SNP_LAUNCH_FINISH (svm/sev.c), before
/// which the VMM sets the registers the VMSA is built from. This host creates only VM type 0, so these cases run on
/// the emulator and are skipped here.
/// </summary>
public static class ProtectedVcpuState
{
    private const string X86 = "arch/x86/kvm/x86.c";

    /// <summary>A GET of the register state and its SET; the SET copies its struct in before the check (EFAULT first).</summary>
    private static readonly (string Name, uint Request, int Size, bool CopiesIn)[] s_requests =
    [
        (nameof(KvmIoctls.KVM_GET_REGS), KvmIoctls.KVM_GET_REGS, 144, false),
        (nameof(KvmIoctls.KVM_SET_REGS), KvmIoctls.KVM_SET_REGS, 144, true),
        (nameof(KvmIoctls.KVM_GET_SREGS), KvmIoctls.KVM_GET_SREGS, 312, false),
        (nameof(KvmIoctls.KVM_SET_SREGS), KvmIoctls.KVM_SET_SREGS, 312, true),
        (nameof(KvmIoctls.KVM_GET_FPU), KvmIoctls.KVM_GET_FPU, 416, false),
        (nameof(KvmIoctls.KVM_SET_FPU), KvmIoctls.KVM_SET_FPU, 416, true),
        (nameof(KvmIoctls.KVM_GET_XSAVE), KvmIoctls.KVM_GET_XSAVE, 4096, false),
        (nameof(KvmIoctls.KVM_GET_XSAVE2), KvmIoctls.KVM_GET_XSAVE2, 4096, false),
        (nameof(KvmIoctls.KVM_SET_XSAVE), KvmIoctls.KVM_SET_XSAVE, 4096, true),
        (nameof(KvmIoctls.KVM_GET_XCRS), KvmIoctls.KVM_GET_XCRS, 392, false),
        (nameof(KvmIoctls.KVM_SET_XCRS), KvmIoctls.KVM_SET_XCRS, 392, true),
        (nameof(KvmIoctls.KVM_GET_DEBUGREGS), KvmIoctls.KVM_GET_DEBUGREGS, 128, false),
        (nameof(KvmIoctls.KVM_SET_DEBUGREGS), KvmIoctls.KVM_SET_DEBUGREGS, 128, true),
    ];

    [ConformanceCase(X86 + " kvm_arch_vcpu_ioctl_get/set_regs, get/set_sregs, get/set_fpu, kvm_vcpu_ioctl_x86_get_xsave2/set_xsave, get/set_xcrs, get/set_debugregs + vmx/tdx.c tdx_vcpu_create: a TD's vCPU refuses its register state with EINVAL (a SET whose struct cannot be read is EFAULT first; a GET fails before copying out); the event and MP state stay readable",
        Profile = EmulatedProfile.X86InPlaceConversion, Requires = KernelRequirement.TdxVmType)]
    public static void td_vcpu_refuses_its_register_state(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Tdx);
        vm.EnableSplitIrqchip(24); // vmx/tdx.c tdx_vcpu_create: a TD's vCPU needs a split irqchip
        // … and KVM_TDX_INIT_VM before it (tdx_vcpu_create: EIO while TD_STATE_UNINITIALIZED).
        var tdx = new TdxLaunch(vm);
        tdx.InitVm(tdx.GetCapabilities().CpuidWithGpaw(48));
        using var vcpu = vm.CreateVcpu();
        foreach (var (name, request, size, copiesIn) in s_requests)
        {
            Assert.True(size == (int)((request >> 16) & 0x3fff), $"{name}: _IOC_SIZE");
            Assert.True(-(long)Errno.EINVAL == ctx.Kernel.Ioctl(vcpu.Handle, request, new byte[size]), $"{name} with a readable struct");
            long unreadable = copiesIn ? -(long)Errno.EFAULT : -(long)Errno.EINVAL;
            Assert.True(unreadable == ctx.Kernel.Ioctl(vcpu.Handle, request, Span<byte>.Empty), $"{name} with a NULL pointer");
        }
        var e = Assert.Throws<KvmException>(() => vcpu.GetRegs());
        Assert.Equal(Errno.EINVAL, e.Errno);
        e = Assert.Throws<KvmException>(() => vcpu.SetSregs(default));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(KvmVcpuEvents.KVM_VCPUEVENT_VALID_NMI_PENDING | KvmVcpuEvents.KVM_VCPUEVENT_VALID_SHADOW | KvmVcpuEvents.KVM_VCPUEVENT_VALID_SMM,
            vcpu.GetEvents().flags);
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, vcpu.GetMpState());
    }

    [ConformanceCase(X86 + " get/set_regs … get/set_debugregs + svm/sev.c __sev_launch_update_vmsa / snp_launch_update_vmsa: a SEV-ES (and SNP) vCPU's state is protected only from KVM_SEV_LAUNCH_UPDATE_VMSA (SNP: LAUNCH_FINISH) on; before it the VMM sets and reads the registers the VMSA is built from",
        Profile = EmulatedProfile.X86InPlaceConversion, Requires = KernelRequirement.SevEsVmType)]
    public static void sev_es_vcpu_state_is_open_before_the_vmsa_is_encrypted(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var types = new List<VmType> { VmType.SevEs };
        if (kvm.SupportedVmTypes.Contains(VmType.Snp)) types.Add(VmType.Snp);
        foreach (var type in types)
        {
            using var vm = kvm.CreateVm(type);
            using var vcpu = vm.CreateVcpu();
            var r = vcpu.GetRegs();
            r.rip = 0xfff0;
            r.rbx = 0x1234;
            vcpu.SetRegs(r);
            Assert.Equal((0xfff0UL, 0x1234UL), (vcpu.GetRegs().rip, vcpu.GetRegs().rbx));
            var s = vcpu.GetSregs();
            vcpu.SetSregs(s);
            vcpu.SetFpu(vcpu.GetFpu());
            vcpu.SetXsave(vcpu.GetXsave());
            vcpu.SetXcrs(vcpu.GetXcrs());
            vcpu.SetDebugRegs(vcpu.GetDebugRegs());
            Assert.Equal(1UL, vcpu.GetXcr0());
        }
    }
}
