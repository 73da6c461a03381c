// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// vgic-mmio.c kvm_io_gic_ops: the distributor frame (<paramref name="redistVcpu"/> null: IODEV_DIST, accessed as
/// the accessing vCPU) or one vCPU's redistributor (IODEV_REDIST, iodev->redist_vcpu) on KVM_MMIO_BUS. Every access
/// inside the frame completes in the kernel: dispatch_mmio_read answers 0 and dispatch_mmio_write ignores an access
/// with no register behind it (a wrong width or alignment included), so no guest access to a frame exits.
/// </summary>
internal sealed class VgicIoDevice(Kvm kvm, KvmVcpu? redistVcpu) : IKvmIoDevice
{
    private ulong Base => redistVcpu is null
        ? Arm64VmState.Of(kvm).Vgic.DistBase
        : VgicInit.RedistBase(kvm, redistVcpu) ?? 0;

    public bool Read(KvmVcpu vcpu, ulong addr, Span<byte> data)
    {
        var dist = Arm64VmState.Of(kvm).Vgic;
        ulong v;
        lock (dist)
        {
            v = VgicMmio.Read(kvm, redistVcpu ?? vcpu, Frame, (uint)(addr - Base), data.Length, uaccess: false);
        }
        ToBus(v, data);
        return true;
    }

    public bool Write(KvmVcpu vcpu, ulong addr, ReadOnlySpan<byte> data)
    {
        ulong v = FromBus(data);
        var dist = Arm64VmState.Of(kvm).Vgic;
        lock (dist)
        {
            VgicMmio.Write(kvm, redistVcpu ?? vcpu, Frame, (uint)(addr - Base), data.Length, v, uaccess: false);
        }
        return true;
    }

    private VgicFrame Frame => redistVcpu is null ? VgicFrame.Dist : VgicFrame.Redist;

    /// <summary>vgic_data_host_to_mmio_bus: a register's value as the access's bytes (the GIC is little-endian).</summary>
    internal static void ToBus(ulong value, Span<byte> data)
    {
        Span<byte> all = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(all, value);
        all[..Math.Min(8, data.Length)].CopyTo(data);
    }

    /// <summary>vgic_data_mmio_bus_to_host: the access's bytes (at most 8) as a little-endian value.</summary>
    internal static ulong FromBus(ReadOnlySpan<byte> data)
    {
        Span<byte> all = stackalloc byte[8];
        all.Clear();
        data[..Math.Min(8, data.Length)].CopyTo(all);
        return BinaryPrimitives.ReadUInt64LittleEndian(all);
    }
}
