// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>x86 VM types for KVM_CREATE_VM (arch/x86/include/uapi/asm/kvm.h). arm64 knows only Default.</summary>
public enum VmType : uint
{
    /// <summary>KVM_X86_DEFAULT_VM: an ordinary VM (the only type on arm64).</summary>
    Default = KvmConstants.KVM_X86_DEFAULT_VM,
    /// <summary>
    /// KVM_X86_SW_PROTECTED_VM: private memory without hardware protection, for development and testing.
    /// </summary>
    SwProtected = KvmConstants.KVM_X86_SW_PROTECTED_VM,
    /// <summary>KVM_X86_SEV_VM: AMD SEV (encrypted memory).</summary>
    Sev = KvmConstants.KVM_X86_SEV_VM,
    /// <summary>KVM_X86_SEV_ES_VM: AMD SEV-ES (encrypted memory and register state).</summary>
    SevEs = KvmConstants.KVM_X86_SEV_ES_VM,
    /// <summary>KVM_X86_SNP_VM: AMD SEV-SNP (adds memory integrity; private memory from guest_memfd).</summary>
    Snp = KvmConstants.KVM_X86_SNP_VM,
    /// <summary>KVM_X86_TDX_VM: Intel TDX (private memory from guest_memfd).</summary>
    Tdx = KvmConstants.KVM_X86_TDX_VM,
}
