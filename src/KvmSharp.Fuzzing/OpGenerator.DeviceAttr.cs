// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// KVM_HAS/GET/SET_DEVICE_ATTR (<see cref="OpKind.DeviceAttr"/>) on the session's vCPUs (the TSC offset), /dev/kvm
/// handles (the supported XCR0), VMs and closed handles, with groups, attributes, flags and value pointers valid and
/// not. Like the vCPU state calls (OpGenerator.VcpuState.cs): drawn only on a kernel without guest_memfd and from a
/// stream of their own (<c>_attr</c>), so a seed's other calls keep their order and arguments.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _attr;

    private FuzzOp? NextDeviceAttr()
    {
        if (_attr.Next(24) != 0) return null;
        int pool = _attr.Next(10);
        bool system = pool is 5 or 6 or 7;
        var targets = pool switch
        {
            < 5 => _vcpus,
            < 8 => _systems,
            8 => _vms,
            _ => _closed,
        };
        if (targets.Count == 0) return null;
        ulong group = _attr.Next(6) switch { 0 => 1, 1 => (ulong)_attr.Next(), _ => 0 };
        ulong attribute = _attr.Next(6) switch { 0 => 1, 1 => (ulong)_attr.NextInt64(), _ => 0 };
        ulong flags = _attr.Next(8) == 0 ? (ulong)(uint)_attr.Next() : 0;
        // Mostly the scratch page; now and then NULL, the kernel half, the read-only or PROT_NONE page, or straddling.
        var at = _attr.Next(3) == 0 ? (DirtyBitmapAt)_attr.Next(1, 7) : DirtyBitmapAt.Scratch;
        int request = _attr.Next(3) | (system ? DeviceAttrOps.ShowValue : 0);
        return new FuzzOp(OpKind.DeviceAttr, Target: targets[_attr.Next(targets.Count)], A: group, B: attribute, C: flags, D: (ulong)at,
            E: request, U: (ulong)_attr.NextInt64());
    }
}
