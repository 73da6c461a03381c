// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>The architecture the emulated kernel was built for (arch/x86/kvm or arch/arm64/kvm).</summary>
public enum Architecture
{
    X86_64,
    Arm64,
}
