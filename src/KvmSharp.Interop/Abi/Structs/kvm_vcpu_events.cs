// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer
/// <summary><c>__u8 reserved[26]</c> of <see cref="kvm_vcpu_events"/>.</summary>
[InlineArray(26)] public struct U8x26 { private byte _e0; }
#pragma warning restore CA1815, IDE0044, IDE0051, CS0169

/// <summary>
/// <c>struct kvm_vcpu_events</c>, 64 bytes (KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS, KVM_CAP_VCPU_EVENTS). The C
/// struct's anonymous sub-structs (exception, interrupt, nmi, smi, triple_fault) are flattened here as
/// <c>exception_injected</c> = <c>exception.injected</c> and so on, at the same offsets.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_vcpu_events
{
    public byte exception_injected;
    public byte exception_nr;
    public byte exception_has_error_code;
    public byte exception_pending;
    public uint exception_error_code;
    public byte interrupt_injected;
    public byte interrupt_nr;
    public byte interrupt_soft;
    public byte interrupt_shadow;
    public byte nmi_injected;
    public byte nmi_pending;
    public byte nmi_masked;
    public byte nmi_pad;
    public uint sipi_vector;
    /// <summary>KVM_VCPUEVENT_VALID_* (<see cref="KvmVcpuEvents"/>): which optional fields SET applies / GET filled.</summary>
    public uint flags;
    public byte smi_smm;
    public byte smi_pending;
    public byte smi_smm_inside_nmi;
    public byte smi_latched_init;
    public byte triple_fault_pending;
    public U8x26 reserved;
    public byte exception_has_payload;
    public ulong exception_payload;
}

/// <summary>arch/x86/include/uapi/asm/kvm.h KVM_VCPUEVENT_VALID_*, the bits of <see cref="kvm_vcpu_events.flags"/>.</summary>
public static class KvmVcpuEvents
{
    public const uint KVM_VCPUEVENT_VALID_NMI_PENDING = 0x01;
    public const uint KVM_VCPUEVENT_VALID_SIPI_VECTOR = 0x02;
    public const uint KVM_VCPUEVENT_VALID_SHADOW = 0x04;
    public const uint KVM_VCPUEVENT_VALID_SMM = 0x08;
    public const uint KVM_VCPUEVENT_VALID_PAYLOAD = 0x10;
    public const uint KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 0x20;
    public const byte KVM_X86_SHADOW_INT_MOV_SS = 0x01;
    public const byte KVM_X86_SHADOW_INT_STI = 0x02;
}
