// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
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
        if (!kvm.Kernel.Config.Kconfig.HAVE_KVM_ARCH_GMEM_POPULATE) return Err.ENOTTY;
        if (IsSevType(kvm)) return SevSnpLaunchUpdate.VmIoctl(kvm, arg);
        // vt_mem_enc_ioctl: if (!is_td(kvm)) return -ENOTTY;
        if (kvm.Type != KvmConstants.KVM_X86_TDX_VM) return Err.ENOTTY;
        return TdxInitMemRegion.VmIoctl(arg);
    }

    public static long VcpuIoctl(KvmVcpu vcpu, IoctlArg arg)
    {
        // kvm_arch_vcpu_ioctl: r = -ENOTTY; if (!kvm_x86_ops.vcpu_mem_enc_ioctl) goto out; (svm has none)
        if (!vcpu.Kvm.Kernel.Config.Kconfig.HAVE_KVM_ARCH_GMEM_POPULATE || IsSevType(vcpu.Kvm)) return Err.ENOTTY;
        return TdxInitMemRegion.VcpuIoctl(vcpu, arg);
    }

    private static bool IsSevType(Kvm kvm) =>
        kvm.Type is KvmConstants.KVM_X86_SEV_VM or KvmConstants.KVM_X86_SEV_ES_VM or KvmConstants.KVM_X86_SNP_VM;
}
