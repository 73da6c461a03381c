// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// A memory slot bound to a guest_memfd range. Dispose deletes the slot (memory_size = 0) and unmaps the mapping
/// the SDK made for it. The guest_memfd's pages are not freed by deletion (their lifetime is the file's).
/// </summary>
public sealed class MemorySlot : IDisposable
{
    private readonly kvm_userspace_memory_region2 _region;
    private bool _deleted;

    internal MemorySlot(Vm vm, kvm_userspace_memory_region2 region, GuestMemfd memfd, GuestMapping? ownedMapping)
    {
        Vm = vm;
        _region = region;
        Memfd = memfd;
        Mapping = ownedMapping;
    }

    public Vm Vm { get; }

    public uint Slot => _region.slot;

    public ulong GuestPhysicalAddress => _region.guest_phys_addr;

    public ulong Size => _region.memory_size;

    public ulong MemfdOffset => _region.guest_memfd_offset;

    public GuestMemfd Memfd { get; }

    /// <summary>The host mapping the SDK made for userspace_addr (null when the caller passed one or the file is not mappable).</summary>
    public GuestMapping? Mapping { get; }

    /// <summary>Deletes the slot now (KVM_SET_USER_MEMORY_REGION2 with memory_size = 0).</summary>
    public void Delete()
    {
        if (_deleted) return;
        var region = _region;
        region.memory_size = 0;
        Vm.SetUserMemoryRegion2(region);
        _deleted = true;
        Mapping?.Dispose();
    }

    public void Dispose()
    {
        if (!_deleted && !Vm.Handle.IsClosed) Delete();
        Mapping?.Dispose();
        _deleted = true;
    }
}
