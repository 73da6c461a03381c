// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Vcpu.EnableCapability (KVM_ENABLE_CAP on the vCPU fd, x86 kvm_vcpu_ioctl_enable_cap) and what
/// KVM_CAP_ENFORCE_PV_FEATURE_CPUID changes for host-initiated MSR accesses. Every rule here was observed on kvm_pvm
/// 6.18 first; the emulated kernels answer the same.
/// </summary>
public class VcpuCapabilityTests : KernelTest
{
    private const uint MsrKvmSystemTimeNew = 0x4b56_4d01;

    /// <summary>A table whose KVM leaves announce no paravirtual feature (as the micro-VM sandbox policy does).</summary>
    private static CpuidEntry[] NoPvFeatures(Kvm kvm) =>
        [.. kvm.GetSupportedCpuid().Select(e => e.Function == 0x4000_0001 ? e with { Eax = 0, Ebx = 0, Ecx = 0, Edx = 0 } : e)];

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Enforce_pv_feature_cpuid_is_offered_and_takes_any_argument(string kernel)
    {
        using var kvm = Open(kernel);
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID));
        using var vm = kvm.CreateVm();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID));
        using var vcpu = vm.CreateVcpu();
        // "vcpu->arch.pv_cpuid.enforce = cap->args[0]": a bool, so 2 turns it on and 0 off; args[1..3] unused.
        vcpu.EnableCapability(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 2);
        vcpu.EnableCapability(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 0, 5, 6, 7);
        vcpu.EnableCapability(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Enable_errors_are_typed_and_name_the_vcpu_and_request(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();

        // "if (cap->flags) return -EINVAL;" — a cap the kernel offers: a plain KvmException.
        var flags = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, flags = 1 };
        flags.args[0] = 1;
        var withFlags = Assert.Throws<KvmException>(() => vcpu.EnableCapability(flags));
        Assert.Equal(Errno.EINVAL, withFlags.Errno);
        Assert.Equal("KVM_ENABLE_CAP", withFlags.Operation);
        Assert.Contains("vcpu=0", withFlags.Request, StringComparison.Ordinal);
        Assert.Contains("cap=KVM_CAP_ENFORCE_PV_FEATURE_CPUID flags=0x1", withFlags.Request, StringComparison.Ordinal);

        // An unknown cap: EINVAL, and the VM reports it as 0 → KvmCapabilityException.
        var unknown = Assert.Throws<KvmCapabilityException>(() => vcpu.EnableCapability(123_456, 1));
        Assert.Equal(Errno.EINVAL, unknown.Errno);
        Assert.Equal(0, unknown.Reported);

        // VM-level caps are not vCPU caps: EINVAL although the VM offers them.
        var vmLevel = Assert.Throws<KvmException>(() => vcpu.EnableCapability(KvmCaps.KVM_CAP_EXIT_HYPERCALL, 0));
        Assert.Equal(Errno.EINVAL, vmLevel.Errno);
        Assert.IsNotType<KvmCapabilityException>(vmLevel);
        var dirtyLog = Assert.Throws<KvmException>(() => vcpu.EnableCapability(KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1));
        Assert.Equal(Errno.EINVAL, dirtyLog.Errno);

        Assert.Throws<ArgumentException>(() => vcpu.EnableCapability(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1, 2, 3, 4, 5));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void With_enforcement_and_no_pv_features_kvmclock_msrs_refuse_host_writes(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetCpuid(NoPvFeatures(kvm));
        vcpu.EnableCapability(KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1);
        // guest_pv_has() is false: kvm_set_msr_common returns KVM_MSR_RET_UNSUPPORTED. Only the advertised-MSR fallback
        // of kvm_do_msr_access could take it, and it takes only a write of 0.
        Assert.Equal(0, vcpu.SetMsrs([new MsrEntry(MsrKvmSystemTimeNew, 0x1F_0001)]));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Without_enforcement_the_kernel_takes_a_kvmclock_address(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetCpuid(NoPvFeatures(kvm));
        int processed = vcpu.SetMsrs([new MsrEntry(MsrKvmSystemTimeNew, 0x1F_0001)]);
        // guest_pv_has() is true without enforcement, whatever leaf 0x40000001 says: the MSR is written (and
        // MSR_KVM_SYSTEM_TIME, 0x12, reads the same vcpu->arch.time). The emulator models it since session 31
        // (X86/KvmClockMsrs.cs).
        Assert.Equal(1, processed);
        Assert.Equal(0x1F_0001UL, vcpu.GetMsr(MsrKvmSystemTimeNew));
        Assert.Equal(0x1F_0001UL, vcpu.GetMsr(0x12));
    }
}
