// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.DeviceCtl"/> does (E) with the session's device slots (U: which; <see cref="Slots"/> stands
/// for a number that is no descriptor): KVM_CREATE_DEVICE on handle Target, the attribute ioctls on a device, or a
/// device's close.
/// </summary>
public static class DeviceCtlOps
{
    /// <summary>E: KVM_CREATE_DEVICE(type (uint)A, flags (uint)B) on Target; a success replaces the slot's device after the call.</summary>
    public const int Create = 0;

    /// <summary>E: KVM_HAS_DEVICE_ATTR(group (uint)A, attr B) on the slot's device.</summary>
    public const int Has = 1;

    /// <summary>
    /// E: KVM_SET_DEVICE_ATTR(group (uint)A, attr B) whose value is an int32 descriptor (C: which one; D the /dev/kvm
    /// handle) or NULL.
    /// </summary>
    public const int Set = 2;

    /// <summary>E: KVM_GET_DEVICE_ATTR(group (uint)A, attr B) into the scratch page.</summary>
    public const int Get = 3;

    /// <summary>E: the slot's device closed.</summary>
    public const int Close = 4;

    /// <summary>Device slots per session.</summary>
    public const int Slots = 2;

    /// <summary>What the int32 at kvm_device_attr.addr is for <see cref="Set"/> (C): /dev/kvm's fd, the VM's, -1, 9999, or addr NULL.</summary>
    public const int ValueKvm = 0, ValueVm = 1, ValueMinusOne = 2, ValueUnused = 3, ValueNull = 4;

    public static int Slot(ulong u) => (u & 7) switch { < 5 => 0, 5 or 6 => 1, _ => Slots };

    internal static string Describe(FuzzOp op, string target)
    {
        var ci = CultureInfo.InvariantCulture;
        string dev = Slot(op.U) == Slots ? "no device" : $"device {Slot(op.U)}";
        string value = op.C switch { ValueKvm => "&/dev/kvm fd", ValueVm => "&VM fd", ValueMinusOne => "&-1", ValueUnused => "&9999", _ => "NULL" };
        return op.E switch
        {
            Create => string.Create(ci, $"KVM_CREATE_DEVICE({target}, type={(uint)op.A}, flags=0x{(uint)op.B:X}) → {dev}"),
            Has => string.Create(ci, $"KVM_HAS_DEVICE_ATTR({dev}, group={(uint)op.A}, attr={op.B})"),
            Set => string.Create(ci, $"KVM_SET_DEVICE_ATTR({dev}, group={(uint)op.A}, attr={op.B}, addr={value})"),
            Get => string.Create(ci, $"KVM_GET_DEVICE_ATTR({dev}, group={(uint)op.A}, attr={op.B})"),
            _ => $"close({dev})",
        };
    }
}
