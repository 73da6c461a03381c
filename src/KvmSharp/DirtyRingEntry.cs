// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>
/// One page a vCPU's dirty ring reported (struct kvm_dirty_gfn without its flags): the memory slot, as KVM encodes
/// it (<c>address space &lt;&lt; 16 | slot id</c>), and the page's index in that slot.
/// </summary>
/// <param name="Slot">kvm_dirty_gfn.slot: <c>address space &lt;&lt; 16 | slot id</c>.</param>
/// <param name="Offset">kvm_dirty_gfn.offset: the page's index from the start of the slot.</param>
public readonly record struct DirtyRingEntry(uint Slot, ulong Offset)
{
    /// <summary>The memory slot's id (the low 16 bits of <see cref="Slot"/>), as given to AddMemorySlot.</summary>
    public int SlotId => (ushort)Slot;

    /// <summary>The address space (the high 16 bits of <see cref="Slot"/>; 1 is x86 SMM).</summary>
    public int AddressSpace => (int)(Slot >> 16);

    /// <summary>
    /// The guest-physical address of the page, given the slot's first guest-physical address (the slot may have moved
    /// since the entry was pushed; KVM records only slot and offset).
    /// </summary>
    public ulong GuestPhysicalAddress(ulong slotBase) => slotBase + Offset * (ulong)Environment.SystemPageSize;
}
