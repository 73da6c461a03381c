// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// virt/kvm/coalesced_mmio.c for one VM: kvm->coalesced_mmio_ring (one zeroed page, kvm_coalesced_mmio_init), the
/// ring_lock and kvm->coalesced_zones. The page is a host memfd so that every vCPU's mmap shows it at
/// KVM_COALESCED_MMIO_PAGE_OFFSET (kvm_vcpu_fault: "page = virt_to_page(vcpu-&gt;kvm-&gt;coalesced_mmio_ring)",
/// <see cref="Vcpu.KvmVcpuFile"/>) and the kernel side writes the same bytes. Created on first use (a zone, or a vCPU
/// mapping over the page): nothing can tell an untouched zero page from a lazily made one.
/// </summary>
internal sealed class CoalescedMmio : IDisposable
{
    private readonly Kvm _kvm;
    private readonly Lock _ringLock = new();
    private readonly List<Zone> _zones = [];
    private HostMapping? _ring;
    private int _memfd = -1;

    public CoalescedMmio(Kvm kvm) => _kvm = kvm;

    private static int PageSize => EmulatorConfig.PageSize;

    private static int Max => KvmCoalescedMmio.MaxEntries(PageSize);

    /// <summary>KVM_COALESCED_MMIO_PAGE_OFFSET of the VM's arch: 2 on x86, 1 on arm64 (their uapi asm/kvm.h).</summary>
    public static ulong PageOffset(EmulatorConfig config) => (ulong)(config.Architecture == Architecture.Arm64
        ? KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_ARM64
        : KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_X86);

    /// <summary>kvm->coalesced_zones, in registration order.</summary>
    public IReadOnlyList<Zone> Zones
    {
        get
        {
            lock (_zones) return [.. _zones];
        }
    }

    /// <summary>The host memfd holding the ring page (made now if it was not), or -errno.</summary>
    public long RingFd()
    {
        lock (_ringLock)
        {
            if (_memfd >= 0) return _memfd;
            long fd = HostMemory.MemfdCreate("kvm-coalesced-mmio", HostMemory.MFD_CLOEXEC);
            if (Err.IsError(fd)) return fd;
            long rc = HostMemory.Ftruncate((int)fd, PageSize);
            HostMapping? map = null;
            if (!Err.IsError(rc)) rc = HostMapping.MapShared((int)fd, 0, (ulong)PageSize, out map);
            if (Err.IsError(rc))
            {
                _ = HostMemory.Close((int)fd);
                return Err.ENOMEM;
            }
            _ring = map;
            _memfd = (int)fd;
            return _memfd;
        }
    }

    /// <summary>
    /// kvm_vm_ioctl KVM_REGISTER_COALESCED_MMIO: copy_from_user (EFAULT), then kvm_vm_ioctl_register_coalesced_mmio:
    /// "if (zone-&gt;pio != 1 &amp;&amp; zone-&gt;pio != 0) return -EINVAL", then under slots_lock kvm_io_bus_register_dev on
    /// "zone-&gt;pio ? KVM_PIO_BUS : KVM_MMIO_BUS" at (addr, size as an int) — its ENOSPC is the answer — and
    /// list_add_tail to coalesced_zones. Nothing else is checked: a zone may overlap another, have size 0 or wrap.
    /// </summary>
    public long Register(IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_coalesced_mmio_zone zone)) return Err.EFAULT;
        if (zone.pio is not (0 or 1)) return Err.EINVAL;
        long fd = RingFd();
        if (Err.IsError(fd)) return fd;
        var dev = new Zone(this, zone.addr, zone.size, zone.pio);
        long r = _kvm.IoBus.TryRegister(dev.Bus, zone.addr, (int)zone.size, dev);
        if (r != 0) return r;
        lock (_zones) _zones.Add(dev);
        return 0;
    }

    /// <summary>
    /// kvm_vm_ioctl KVM_UNREGISTER_COALESCED_MMIO: copy_from_user (EFAULT), then
    /// kvm_vm_ioctl_unregister_coalesced_mmio: the same pio check (EINVAL), then every zone of the same kind
    /// "coalesced_mmio_in_range(dev, zone-&gt;addr, zone-&gt;size)" — that contains the given range, not one the range
    /// contains — is unregistered (kvm_io_bus_unregister_dev runs coalesced_mmio_destructor). Always 0: "from
    /// userspace's perspective, the coalesced MMIO is most definitely unregistered".
    /// </summary>
    public long Unregister(IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_coalesced_mmio_zone zone)) return Err.EFAULT;
        if (zone.pio is not (0 or 1)) return Err.EINVAL;
        foreach (var dev in Zones)
        {
            if (dev.Pio != zone.pio || !dev.InRange(zone.addr, (int)zone.size)) continue;
            _kvm.IoBus.Unregister(dev.Bus, dev);
            lock (_zones) _zones.Remove(dev);
        }
        return 0;
    }

    /// <summary>
    /// coalesced_mmio_write once the zone took the access, under ring_lock: "insert = READ_ONCE(ring-&gt;last); if
    /// (insert &gt;= KVM_COALESCED_MMIO_MAX || (insert + 1) % KVM_COALESCED_MMIO_MAX == READ_ONCE(ring-&gt;first))
    /// return -EOPNOTSUPP" (userspace's out-of-range last, or a full ring: one entry stays free, and the write exits
    /// as usual); else phys_addr, len, len bytes of data (the rest of data[] keeps what it had) and pio, smp_wmb,
    /// "ring-&gt;last = (insert + 1) % KVM_COALESCED_MMIO_MAX".
    /// </summary>
    private bool Append(ulong addr, ReadOnlySpan<byte> data, uint pio)
    {
        lock (_ringLock)
        {
            if (_ring is not { } ring) return false;
            var header = ring.GetSpan(0, KvmCoalescedMmio.RingHeaderSize);
            uint insert = Volatile.Read(ref MemoryMarshal.Cast<byte, uint>(header)[1]);
            uint first = Volatile.Read(ref MemoryMarshal.Cast<byte, uint>(header)[0]);
            if (insert >= (uint)Max || (insert + 1) % (uint)Max == first) return false;
            var entry = ring.GetSpan((ulong)(KvmCoalescedMmio.RingHeaderSize + (int)insert * KvmCoalescedMmio.EntrySize), KvmCoalescedMmio.EntrySize);
            BinaryPrimitives.WriteUInt64LittleEndian(entry, addr);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], (uint)data.Length);
            // memcpy(data, val, len): at most the 8 bytes of data[] (every bus write is at most 8 bytes).
            data[..Math.Min(data.Length, 8)].CopyTo(entry[16..]);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[12..], pio);
            Interlocked.MemoryBarrier(); // smp_wmb: the entry before last
            Volatile.Write(ref MemoryMarshal.Cast<byte, uint>(header)[1], (insert + 1) % (uint)Max);
            return true;
        }
    }

    /// <summary>kvm_destroy_vm → kvm_coalesced_mmio_free (the zones went with the buses, kvm_io_bus_destroy).</summary>
    public void Dispose()
    {
        lock (_zones) _zones.Clear();
        lock (_ringLock)
        {
            _ring?.Dispose();
            _ring = null;
            if (_memfd >= 0) _ = HostMemory.Close(_memfd);
            _memfd = -1;
        }
    }

    /// <summary>
    /// virt/kvm/coalesced_mmio.h struct kvm_coalesced_mmio_dev: one registered zone, a kvm_io_device with
    /// coalesced_mmio_ops (a write, no read).
    /// </summary>
    internal sealed class Zone(CoalescedMmio owner, ulong addr, uint size, uint pio) : IKvmIoDevice
    {
        public ulong Addr => addr;

        public uint Size => size;

        public uint Pio => pio;

        public KvmBus Bus => pio != 0 ? KvmBus.Pio : KvmBus.Mmio;

        /// <summary>
        /// coalesced_mmio_in_range: "(addr,len) is fully included in (zone-&gt;addr, zone-&gt;size)": len &lt; 0, addr + len
        /// wrapping, addr below the zone, or an end beyond zone.addr + zone.size (u64 arithmetic) → no.
        /// </summary>
        public bool InRange(ulong a, int len)
        {
            if (len < 0) return false;
            if (a + (ulong)len < a) return false;
            if (a < addr) return false;
            return a + (ulong)len <= addr + size;
        }

        /// <summary>coalesced_mmio_ops has no read: -EOPNOTSUPP, the bus tries the next device, then userspace.</summary>
        public bool Read(Vcpu.KvmVcpu vcpu, ulong a, Span<byte> data) => false;

        /// <summary>coalesced_mmio_write: "if (!coalesced_mmio_in_range(dev, addr, len)) return -EOPNOTSUPP", then the ring.</summary>
        public bool Write(Vcpu.KvmVcpu vcpu, ulong a, ReadOnlySpan<byte> data) =>
            InRange(a, data.Length) && owner.Append(a, data, pio);
    }
}
