// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>The architecture the emulated kernel was built for (arch/x86/kvm or arch/arm64/kvm).</summary>
public enum Architecture
{
    /// <summary>x86_64 (arch/x86/kvm).</summary>
    X86_64,
    /// <summary>arm64 (arch/arm64/kvm): the default VM type only; vCPUs need KVM_ARM_VCPU_INIT.</summary>
    Arm64,
}
