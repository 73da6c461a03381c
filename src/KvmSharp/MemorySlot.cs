// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// A memory slot: a guest_memfd range (<see cref="Vm.AddGuestMemfdSlot"/>), ordinary host memory
/// (<see cref="Vm.AddMemorySlot(uint, ulong, AnonymousMemory, MemorySlotFlags)"/>), or both — shared pages from host
/// memory, private pages from guest_memfd (<see cref="Vm.AddPrivateMemorySlot"/>). Dispose deletes the slot
/// (memory_size = 0), unmaps the mapping the SDK made for it and lets go of the host memory it kept mapped. The
/// guest_memfd's pages are not freed by deletion (their lifetime is the file's).
/// </summary>
public sealed partial class MemorySlot : IDisposable
{
    private kvm_userspace_memory_region2 _region;
    private readonly bool _legacy;
    private bool _deleted;
    private bool _memoryReleased;

    internal MemorySlot(Vm vm, kvm_userspace_memory_region2 region, GuestMemfd memfd, GuestMapping? ownedMapping)
        : this(vm, region, memfd, ownedMapping, memory: null, legacy: false)
    {
    }

    /// <summary>
    /// <paramref name="memory"/>, when given, must already carry a reference (DangerousAddRef) taken for this slot:
    /// the slot releases it once the kernel no longer uses userspace_addr.
    /// </summary>
    internal MemorySlot(Vm vm, kvm_userspace_memory_region2 region, GuestMemfd? memfd, GuestMapping? ownedMapping, AnonymousMemory? memory, bool legacy)
    {
        Vm = vm;
        _region = region;
        _legacy = legacy;
        Memfd = memfd;
        Mapping = ownedMapping;
        Memory = memory;
        _memoryReleased = memory is null;
    }

    /// <summary>The VM the slot belongs to.</summary>
    public Vm Vm { get; }

    /// <summary>The slot id passed to the kernel (kvm_userspace_memory_region2.slot).</summary>
    public uint Slot => _region.slot;

    /// <summary>The guest-physical address (GPA) where the slot starts; changes with <see cref="Move"/>.</summary>
    public ulong GuestPhysicalAddress => _region.guest_phys_addr;

    /// <summary>
    /// The slot's length in bytes (memory_size): it covers GPAs [<see cref="GuestPhysicalAddress"/>, +Size).
    /// </summary>
    public ulong Size => _region.memory_size;

    /// <summary>The slot's userspace_addr (0 for a guest_memfd-only slot).</summary>
    public ulong UserspaceAddress => _region.userspace_addr;

    /// <summary>
    /// LOG_DIRTY_PAGES / READONLY as the slot was created (KVM_MEM_GUEST_MEMFD shows as <see cref="HasGuestMemfd"/>,
    /// KVM_MEM_USERFAULT as <see cref="HasUserfault"/>).
    /// </summary>
    public MemorySlotFlags Flags => (MemorySlotFlags)(_region.flags & ~(KvmConstants.KVM_MEM_GUEST_MEMFD | KvmConstants.KVM_MEM_USERFAULT));

    /// <summary>True when the slot was bound to a guest_memfd (KVM_MEM_GUEST_MEMFD).</summary>
    public bool HasGuestMemfd => (_region.flags & KvmConstants.KVM_MEM_GUEST_MEMFD) != 0;

    /// <summary>
    /// The guest_memfd file offset (bytes) that <see cref="GuestPhysicalAddress"/> maps to (guest_memfd_offset; 0
    /// without a guest_memfd).
    /// </summary>
    public ulong MemfdOffset => _region.guest_memfd_offset;

    /// <summary>
    /// The guest_memfd offset that <paramref name="guestPhysicalAddress"/> maps to in this slot (what a VMM converts
    /// after a KVM_EXIT_MEMORY_FAULT: <c>slot.MemfdOffsetOf(exit.MemoryFaultGpa)</c>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The address lies outside the slot.</exception>
    /// <exception cref="InvalidOperationException">The slot has no guest_memfd.</exception>
    public ulong MemfdOffsetOf(ulong guestPhysicalAddress)
    {
        if (!HasGuestMemfd) throw new InvalidOperationException($"slot {Slot} has no guest_memfd");
        if (guestPhysicalAddress < GuestPhysicalAddress || guestPhysicalAddress - GuestPhysicalAddress >= Size)
        {
            throw new ArgumentOutOfRangeException(nameof(guestPhysicalAddress), guestPhysicalAddress,
                $"GPA 0x{guestPhysicalAddress:X} is outside slot {Slot} [0x{GuestPhysicalAddress:X}, +0x{Size:X})");
        }
        return MemfdOffset + (guestPhysicalAddress - GuestPhysicalAddress);
    }

    /// <summary>The guest_memfd behind the slot's private (or, if mappable, all) pages; null for a plain slot.</summary>
    public GuestMemfd? Memfd { get; }

    /// <summary>The host memory at userspace_addr (null for guest_memfd slots, whose view is <see cref="Mapping"/>).</summary>
    public AnonymousMemory? Memory { get; }

    /// <summary>The host mapping the SDK made for userspace_addr (null when the caller passed one or the file is not mappable).</summary>
    public GuestMapping? Mapping { get; }

    /// <summary>
    /// Moves the slot to <paramref name="guestPhysicalAddress"/> (KVM_MR_MOVE: same slot id, memory and flags). The
    /// kernel refuses with EEXIST when the new range overlaps another slot, and with EINVAL for guest_memfd slots
    /// ("private memslots are immutable, they can only be deleted").
    /// </summary>
    public void Move(ulong guestPhysicalAddress)
    {
        ObjectDisposedException.ThrowIf(_deleted, this);
        var region = _region;
        region.guest_phys_addr = guestPhysicalAddress;
        Set(region);
        _region = region;
    }

    /// <summary>Deletes the slot now (KVM_SET_USER_MEMORY_REGION[2] with memory_size = 0).</summary>
    public void Delete()
    {
        if (_deleted) return;
        var region = _region;
        region.memory_size = 0;
        Set(region);
        _deleted = true;
        Mapping?.Dispose();
        ReleaseMemory();
        ReleaseUserfault();
    }

    private void Set(in kvm_userspace_memory_region2 region)
    {
        if (_legacy)
        {
            Vm.SetUserMemoryRegion(new kvm_userspace_memory_region
            {
                slot = region.slot, flags = region.flags, guest_phys_addr = region.guest_phys_addr,
                memory_size = region.memory_size, userspace_addr = region.userspace_addr,
            });
        }
        else
        {
            Vm.SetUserMemoryRegion2(region);
        }
    }

    /// <summary>The kernel no longer reaches userspace_addr: the host memory may now really be unmapped.</summary>
    private void ReleaseMemory()
    {
        if (_memoryReleased) return;
        _memoryReleased = true;
        Memory!.Region.DangerousRelease();
    }

    /// <summary>
    /// Deletes the slot unless it is already deleted or the VM descriptor is closed, disposes the mapping the SDK made
    /// and lets go of the host memory it kept mapped.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">The delete (KVM_SET_USER_MEMORY_REGION[2] with memory_size = 0)
    /// failed.</exception>
    public void Dispose()
    {
        if (!_deleted && !Vm.Handle.IsClosed)
        {
            try
            {
                Delete();
            }
            catch (KvmException e) when (e.Errno == Errno.EIO)
            {
                // A dead VM (kvm_main.c kvm_vm_ioctl: "if (kvm->mm != current->mm || kvm->vm_dead) return -EIO;", e.g.
                // vmx/tdx.c's kvm_vm_dead) takes no more ioctls: its memslots go with it, and Dispose must not throw.
            }
        }
        Mapping?.Dispose();
        _deleted = true;
        ReleaseUserfault();
        // With the VM descriptor closed the slot goes away with the VM (vCPU and guest_memfd descriptors may keep the
        // VM alive a little longer, but nothing can add or run guest code through this Vm object any more).
        ReleaseMemory();
    }
}
