// SPDX-License-Identifier: MIT
using System.Diagnostics.CodeAnalysis;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

public sealed partial class Vcpu
{
    // The u64 that kvm_device_attr.addr points at: pinned, so its address stays valid during the ioctl. One per vCPU
    // (a pool resets a vCPU on every use: no allocation there), taken under its own lock.
    private PinnedArray<ulong>? _attributeValue;

    /// <summary>
    /// KVM_HAS_DEVICE_ATTR on this vCPU (KVM_CAP_VCPU_ATTRIBUTES): whether the kernel has the vCPU attribute
    /// <paramref name="attribute"/> of <paramref name="group"/> (x86: <see cref="KvmConstants.KVM_VCPU_TSC_CTRL"/> /
    /// <see cref="KvmConstants.KVM_VCPU_TSC_OFFSET"/>; arm64: the PMU, timer and PV time groups).
    /// </summary>
    /// <returns>true when the kernel answers 0, false when it answers ENXIO (no such group or attribute).</returns>
    /// <exception cref="KvmException">Any other error (EINVAL: a kernel without vCPU attributes).</exception>
    public bool HasDeviceAttribute(uint group, ulong attribute) =>
        DeviceAttribute.Has(Kernel, Handle, group, attribute, $"vcpu={Id}");

    /// <summary>
    /// Whether this vCPU's TSC offset can be read and written (<see cref="GetTscOffset"/>): x86 (KVM_CAP_GET_TSC_KHZ,
    /// which only x86 answers — on arm64 vCPU attribute group 0 is the PMU's) with KVM_CAP_VCPU_ATTRIBUTES (Linux
    /// 5.16+) and the KVM_VCPU_TSC_OFFSET attribute.
    /// </summary>
    /// <exception cref="KvmException">KVM_HAS_DEVICE_ATTR failed with an error other than ENXIO.</exception>
    public bool SupportsTscOffset =>
        Vm.CheckExtension(KvmCaps.KVM_CAP_GET_TSC_KHZ) > 0 &&
        Vm.CheckExtension(KvmCaps.KVM_CAP_VCPU_ATTRIBUTES) > 0 &&
        HasDeviceAttribute(KvmConstants.KVM_VCPU_TSC_CTRL, KvmConstants.KVM_VCPU_TSC_OFFSET);

    /// <summary>
    /// The vCPU's TSC offset (x86 only; KVM_GET_DEVICE_ATTR of KVM_VCPU_TSC_CTRL / KVM_VCPU_TSC_OFFSET, the kernel's
    /// l1_tsc_offset): the guest reads TSC = host TSC (scaled) + this value. A guest's WRMSR to IA32_TSC moves it, so
    /// a VMM that hands a vCPU to a new guest writes back the value it read at creation (<see cref="SetTscOffset"/>).
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel has no vCPU attributes or no such attribute.</exception>
    /// <exception cref="KvmException">Another error.</exception>
    public ulong GetTscOffset()
    {
        var value = AttributeValue();
        lock (value)
        {
            // The buffer is shared with SetTscOffset: a kernel that answers 0 without writing (kvm_pvm) must not read
            // back the last value set.
            value.Span[0] = 0;
            long rc = TscOffsetAttribute(set: false, value);
            if (KvmCall.IsError(rc)) ThrowTscOffset(rc, set: false, $"vcpu={Id} KVM_VCPU_TSC_OFFSET");
            return value.Span[0];
        }
    }

    /// <summary>
    /// Sets the vCPU's TSC offset (x86 only; KVM_SET_DEVICE_ATTR of KVM_VCPU_TSC_CTRL / KVM_VCPU_TSC_OFFSET): the
    /// guest TSC continues from host TSC + <paramref name="offset"/>, and the VM's vCPUs created later match it (the
    /// kernel's __kvm_synchronize_tsc). Any 64-bit value is taken.
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel has no vCPU attributes or no such attribute.</exception>
    /// <exception cref="KvmException">Another error.</exception>
    public void SetTscOffset(ulong offset)
    {
        var value = AttributeValue();
        long rc;
        lock (value)
        {
            value.Span[0] = offset;
            rc = TscOffsetAttribute(set: true, value);
        }
        if (KvmCall.IsError(rc)) ThrowTscOffset(rc, set: true, $"vcpu={Id} KVM_VCPU_TSC_OFFSET=0x{offset:X}");
    }

    private long TscOffsetAttribute(bool set, PinnedArray<ulong> value) =>
        DeviceAttribute.Transfer(Kernel, Handle, set, KvmConstants.KVM_VCPU_TSC_CTRL, KvmConstants.KVM_VCPU_TSC_OFFSET, value);

    [DoesNotReturn]
    private void ThrowTscOffset(long rc, bool set, string request) =>
        DeviceAttribute.Throw(rc, set, request, nameof(KvmCaps.KVM_CAP_VCPU_ATTRIBUTES), Vm.CheckExtension(KvmCaps.KVM_CAP_VCPU_ATTRIBUTES));

    private PinnedArray<ulong> AttributeValue() =>
        Volatile.Read(ref _attributeValue)
        ?? Interlocked.CompareExchange(ref _attributeValue, new PinnedArray<ulong>(1), null)
        ?? _attributeValue!;
}
