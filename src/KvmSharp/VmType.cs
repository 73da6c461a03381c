// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>x86 VM types for KVM_CREATE_VM (arch/x86/include/uapi/asm/kvm.h). arm64 knows only Default.</summary>
public enum VmType : uint
{
    Default = KvmConstants.KVM_X86_DEFAULT_VM,
    SwProtected = KvmConstants.KVM_X86_SW_PROTECTED_VM,
    Sev = KvmConstants.KVM_X86_SEV_VM,
    SevEs = KvmConstants.KVM_X86_SEV_ES_VM,
    Snp = KvmConstants.KVM_X86_SNP_VM,
    Tdx = KvmConstants.KVM_X86_TDX_VM,
}
