// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// include/kvm/iodev.h <c>struct kvm_io_device</c>: an in-kernel device on a <see cref="KvmBus"/> (the PIC's ports,
/// the IOAPIC's MMIO window, the PIT …). A vCPU access it takes completes in the kernel: no exit to userspace.
/// </summary>
internal interface IKvmIoDevice
{
    /// <summary>
    /// kvm_iodevice_read: fills <paramref name="data"/> (its length is the access width) and returns true, or
    /// returns false for an access the device does not take (the kernel's -EOPNOTSUPP: the bus tries the next
    /// device, then userspace). <paramref name="vcpu"/> is the accessing vCPU.
    /// </summary>
    bool Read(KvmVcpu vcpu, ulong addr, Span<byte> data);

    /// <summary>kvm_iodevice_write: as <see cref="Read"/>, for a write of <paramref name="data"/>.</summary>
    bool Write(KvmVcpu vcpu, ulong addr, ReadOnlySpan<byte> data);
}

/// <summary>include/linux/kvm_host.h <c>struct kvm_io_range</c>: one registration of a device on a bus.</summary>
internal sealed record KvmIoRange(KvmBus Bus, ulong Addr, int Length, IKvmIoDevice Device)
{
    /// <summary>
    /// kvm_io_bus_cmp == 0: the access [addr, addr+len) lies inside the registration (the kernel's bsearch finds the
    /// ranges that contain the access, not those that merely overlap it).
    /// </summary>
    public bool Contains(ulong addr, int len) => addr >= Addr && addr + (ulong)len <= Addr + (ulong)Length;
}
