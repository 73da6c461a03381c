// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// KVM_MEMORY_ENCRYPT_OP dispatch (arch/x86/kvm/x86.c kvm_arch_vm_ioctl / kvm_arch_vcpu_ioctl): -ENOTTY when the
/// vendor module has no hook (kvm_x86_ops.mem_enc_ioctl / vcpu_mem_enc_ioctl NULL: neither KVM_AMD_SEV nor
/// KVM_INTEL_TDX, i.e. no HAVE_KVM_ARCH_GMEM_POPULATE), else the vendor's handler.
/// <para>
/// The emulated full-featured host offers SNP and TDX VM types side by side, which no real machine does (kvm_amd and
/// kvm_intel exclusive): SEV / SEV-ES / SNP VMs answer as kvm_amd (sev_mem_enc_ioctl; no vCPU hook), every other VM
/// type as kvm_intel (vt_mem_enc_ioctl / vt_vcpu_mem_enc_ioctl).
/// </para>
/// </summary>
internal static class MemoryEncryptOp
{
    public static long VmIoctl(Kvm kvm, IoctlArg arg)
    {
        // kvm_arch_vm_ioctl: r = -ENOTTY; if (!kvm_x86_ops.mem_enc_ioctl) goto out;
        if (!HasVendorHook(kvm.Kernel.Config)) return Err.ENOTTY;
        if (CocoState.IsSevType(kvm)) return SevLaunch.VmIoctl(kvm, arg);
        // vt_mem_enc_ioctl: if (!is_td(kvm)) return -ENOTTY;
        if (!CocoState.IsTd(kvm)) return Err.ENOTTY;
        return TdxLaunch.VmIoctl(kvm, arg);
    }

    public static long VcpuIoctl(KvmVcpu vcpu, IoctlArg arg)
    {
        // kvm_arch_vcpu_ioctl: r = -ENOTTY; if (!kvm_x86_ops.vcpu_mem_enc_ioctl) goto out; (svm has none)
        if (!HasVendorHook(vcpu.Kvm.Kernel.Config) || CocoState.IsSevType(vcpu.Kvm)) return Err.ENOTTY;
        // vt_vcpu_mem_enc_ioctl: if (!is_td_vcpu(vcpu)) return -EINVAL;
        if (!CocoState.IsTd(vcpu.Kvm)) return Err.EINVAL;
        return TdxLaunch.VcpuIoctl(vcpu, arg);
    }

    /// <summary>
    /// A vendor module with the hooks is loaded: KVM_AMD_SEV or KVM_INTEL_TDX (which select HAVE_KVM_ARCH_GMEM_POPULATE
    /// from 6.11), or a release before that whose kvm_amd offers the SEV VM types (6.10: KVM_SEV_INIT2 without populate).
    /// </summary>
    private static bool HasVendorHook(EmulatorConfig config) =>
        config.Kconfig.HAVE_KVM_ARCH_GMEM_POPULATE ||
        config.VmTypes.Any(t => t is KvmSharp.Abi.KvmConstants.KVM_X86_SEV_VM or KvmSharp.Abi.KvmConstants.KVM_X86_SEV_ES_VM
            or KvmSharp.Abi.KvmConstants.KVM_X86_SNP_VM or KvmSharp.Abi.KvmConstants.KVM_X86_TDX_VM);
}
