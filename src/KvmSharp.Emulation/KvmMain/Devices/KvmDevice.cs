// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;

namespace KvmSharp.Emulation.KvmMain.Devices;

/// <summary><c>struct kvm_device</c>: one device made by KVM_CREATE_DEVICE, on its VM's device list.</summary>
internal sealed class KvmDevice(KvmDeviceOps ops, Kvm kvm, uint type)
{
    private static readonly ConditionalWeakTable<Kvm, List<KvmDevice>> Lists = [];

    public KvmDeviceOps Ops { get; } = ops;

    public Kvm Kvm { get; } = kvm;

    public uint Type { get; } = type;

    /// <summary>dev->private: the type's own state.</summary>
    public object? Private { get; set; }

    /// <summary>kvm->devices (kvm_destroy_devices empties it with the VM).</summary>
    public static List<KvmDevice> ListOf(Kvm kvm) => Lists.GetValue(kvm, _ => []);
}
