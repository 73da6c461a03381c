// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Devices;

/// <summary>
/// A device on the port-I/O bus (Firecracker vstate/bus.rs BusDevice). It sees only the offset of an access inside
/// its own range, never the absolute port, so a device can be placed anywhere.
/// </summary>
public interface IBusDevice
{
    /// <summary>An IN: fill <paramref name="data"/> (1, 2 or 4 bytes, inside the kvm_run page).</summary>
    void Read(ulong offset, Span<byte> data);

    /// <summary>An OUT of <paramref name="data"/>.</summary>
    void Write(ulong offset, ReadOnlySpan<byte> data);
}
