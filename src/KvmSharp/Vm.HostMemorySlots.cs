// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>Memory slots backed by ordinary host memory, and 6.18 mainline private-capable slots built on them.</summary>
public sealed partial class Vm
{
    // KVM_CAP_USER_MEMORY2 on this VM, asked once: kernels before 6.8 only have KVM_SET_USER_MEMORY_REGION.
    private bool? _hasUserMemory2;

    /// <summary>Zero-filled anonymous host memory for this VM's slots (<see cref="AnonymousMemory.Allocate"/> on this VM's kernel).</summary>
    public AnonymousMemory AllocateMemory(ulong size, bool shared = false) => AnonymousMemory.Allocate(Kernel, size, shared);

    /// <summary>
    /// Maps all of <paramref name="memory"/> at <paramref name="guestPhysicalAddress"/> as slot <paramref name="slot"/>
    /// (userspace_addr = the memory's address). See <see cref="AddMemorySlot(uint, ulong, AnonymousMemory, ulong, ulong, MemorySlotFlags)"/>.
    /// </summary>
    public MemorySlot AddMemorySlot(uint slot, ulong guestPhysicalAddress, AnonymousMemory memory, MemorySlotFlags flags = MemorySlotFlags.None)
    {
        ArgumentNullException.ThrowIfNull(memory);
        return AddMemorySlot(slot, guestPhysicalAddress, memory, 0, memory.Length, flags);
    }

    /// <summary>
    /// Maps [<paramref name="offset"/>, +<paramref name="size"/>) of <paramref name="memory"/> at
    /// <paramref name="guestPhysicalAddress"/> (KVM_SET_USER_MEMORY_REGION2, or KVM_SET_USER_MEMORY_REGION on a
    /// kernel without KVM_CAP_USER_MEMORY2). The slot keeps the memory mapped until it is deleted, even if the
    /// memory is disposed first. Kernel rules (alignment → EINVAL, overlap → EEXIST, READONLY without
    /// KVM_CAP_READONLY_MEM → <see cref="KvmCapabilityException"/>) come back as typed exceptions.
    /// </summary>
    public MemorySlot AddMemorySlot(uint slot, ulong guestPhysicalAddress, AnonymousMemory memory, ulong offset, ulong size,
        MemorySlotFlags flags = MemorySlotFlags.None)
    {
        ArgumentNullException.ThrowIfNull(memory);
        CheckHostRange(memory, offset, size, nameof(memory));
        var region = new kvm_userspace_memory_region2
        {
            slot = slot,
            flags = (uint)flags,
            guest_phys_addr = guestPhysicalAddress,
            memory_size = size,
            userspace_addr = (ulong)memory.Address + offset,
        };
        bool legacy = !HasUserMemory2;
        return AddHostBackedSlot(region, memory, memfd: null, legacy);
    }

    /// <summary>
    /// A private-capable slot as 6.18 mainline has it (no in-place conversion): shared pages come from
    /// [<paramref name="sharedOffset"/>, +<paramref name="size"/>) of <paramref name="shared"/> (userspace_addr),
    /// private pages from [<paramref name="privateOffset"/>, +<paramref name="size"/>) of <paramref name="privateMemory"/>
    /// (KVM_MEM_GUEST_MEMFD). Which one a guest access reaches follows <see cref="SetMemoryAttributes"/>
    /// (KVM_MEMORY_ATTRIBUTE_PRIVATE per GFN, on VM types with private memory such as SW_PROTECTED). The file is
    /// normally created without <see cref="GuestMemfdFlags.Mmap"/>: with it the kernel serves every fault, shared
    /// ones too, from the file and never reads <paramref name="shared"/>.
    /// </summary>
    public MemorySlot AddPrivateMemorySlot(uint slot, ulong guestPhysicalAddress, ulong size, AnonymousMemory shared,
        GuestMemfd privateMemory, ulong privateOffset = 0, ulong sharedOffset = 0)
    {
        ArgumentNullException.ThrowIfNull(shared);
        ArgumentNullException.ThrowIfNull(privateMemory);
        CheckHostRange(shared, sharedOffset, size, nameof(shared));
        var region = new kvm_userspace_memory_region2
        {
            slot = slot,
            flags = KvmConstants.KVM_MEM_GUEST_MEMFD,
            guest_phys_addr = guestPhysicalAddress,
            memory_size = size,
            userspace_addr = (ulong)shared.Address + sharedOffset,
            guest_memfd_offset = privateOffset,
            guest_memfd = (uint)privateMemory.Handle.Number,
        };
        return AddHostBackedSlot(region, shared, privateMemory, legacy: false);
    }

    private bool HasUserMemory2 => _hasUserMemory2 ??= CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY2) != 0;

    /// <summary>
    /// The SDK's own checks, before the kernel's: the slot must lie inside the host memory (the kernel would accept
    /// any mapped-or-not address below TASK_SIZE, and the guest would then reach memory this object does not own),
    /// and must not be empty (memory_size = 0 means "delete slot N" to the kernel).
    /// </summary>
    private static void CheckHostRange(AnonymousMemory memory, ulong offset, ulong size, string paramName)
    {
        ObjectDisposedException.ThrowIf(memory.IsDisposed, memory);
        if (size == 0)
            throw new ArgumentOutOfRangeException(nameof(size), "a memory slot needs a non-zero size (memory_size = 0 deletes a slot)");
        if (offset > memory.Length || size > memory.Length - offset)
            throw new ArgumentOutOfRangeException(paramName, $"[0x{offset:X}, +0x{size:X}) is outside the 0x{memory.Length:X}-byte host memory");
    }

    private MemorySlot AddHostBackedSlot(kvm_userspace_memory_region2 region, AnonymousMemory memory, GuestMemfd? memfd, bool legacy)
    {
        if (!ReferenceEquals(memory.Kernel, Kernel))
            throw new ArgumentException($"the host memory was mapped by the {memory.Kernel.Name} kernel, this VM runs on the {Kernel.Name} kernel", nameof(memory));
        // The slot holds a reference on the mapping for as long as the kernel may reach userspace_addr: disposing the
        // memory first then leaves it mapped instead of letting the guest write into whatever is mapped there next.
        bool added = false;
        memory.Region.DangerousAddRef(ref added);
        try
        {
            string operation = legacy ? "KVM_SET_USER_MEMORY_REGION" : "KVM_SET_USER_MEMORY_REGION2";
            var v1 = new kvm_userspace_memory_region
            {
                slot = region.slot, flags = region.flags, guest_phys_addr = region.guest_phys_addr,
                memory_size = region.memory_size, userspace_addr = region.userspace_addr,
            };
            long rc = legacy
                ? Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, KvmCall.Bytes(ref v1))
                : Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, KvmCall.Bytes(ref region));
            if (KvmCall.IsError(rc)) ThrowSlotError(rc, operation, region);
            return new MemorySlot(this, region, memfd, ownedMapping: null, memory, legacy);
        }
        catch
        {
            if (added) memory.Region.DangerousRelease();
            throw;
        }
    }

    private void ThrowSlotError(long rc, string operation, in kvm_userspace_memory_region2 region)
    {
        string request = Describe(region);
        if (operation == "KVM_SET_USER_MEMORY_REGION2") ThrowIfRegion2CapabilityMissing(rc, region);
        if (rc == -(long)Errno.EINVAL && (region.flags & KvmConstants.KVM_MEM_READONLY) != 0)
        {
            long readOnly = CheckExtension(KvmCaps.KVM_CAP_READONLY_MEM);
            if (readOnly == 0) throw new KvmCapabilityException(operation, (int)-rc, request, nameof(KvmCaps.KVM_CAP_READONLY_MEM), readOnly);
        }
        request += rc switch
        {
            -(long)Errno.EEXIST => "; the guest-physical range overlaps another slot",
            -(long)Errno.EINVAL => "; gpa, size and userspace_addr must be page-aligned, the slot id below KVM_CAP_NR_MEMSLOTS, " +
                                   "an existing slot may only move or toggle LOG_DIRTY_PAGES",
            _ => "",
        };
        KvmCall.ThrowKvm(rc, operation, request);
    }
}
