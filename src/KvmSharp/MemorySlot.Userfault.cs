// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// KVM userfault on a slot — PROPOSAL: "[PATCH v3 00/15] KVM: Introduce KVM Userfault" (James Houghton, 2025-06-18,
/// unmerged). KVM_MEM_USERFAULT with a <see cref="UserfaultBitmap"/>: a vCPU fault on a page whose bit is set fails
/// KVM_RUN with a KVM_EXIT_MEMORY_FAULT carrying KVM_MEMORY_EXIT_FLAG_USERFAULT (<see cref="VcpuExit.MemoryFaultIsUserfault"/>);
/// the VMM provides the page, clears the bit and runs again. v3 lets the flag be toggled on an existing slot, also on
/// a guest_memfd slot (which still cannot move).
/// </summary>
public sealed partial class MemorySlot
{
    private UserfaultBitmap? _userfault;

    /// <summary>The bitmap KVM reads while the slot has KVM_MEM_USERFAULT; null when it has not.</summary>
    public UserfaultBitmap? Userfault => _userfault;

    /// <summary>True while the slot has KVM_MEM_USERFAULT.</summary>
    public bool HasUserfault => (_region.flags & KvmConstants.KVM_MEM_USERFAULT) != 0;

    /// <summary>
    /// Turns KVM_MEM_USERFAULT on with <paramref name="bitmap"/> (a flags-only KVM_SET_USER_MEMORY_REGION2; KVM drops
    /// the slot's mappings so that every page whose bit is set faults again). With another bitmap already in use the
    /// flag is turned off first: v3 compares flags only, so a request that changes only userfault_bitmap would be a
    /// no-op and KVM would keep reading the old bitmap. The slot keeps <paramref name="bitmap"/>'s memory mapped until
    /// the flag is turned off or the slot deleted.
    /// </summary>
    /// <exception cref="ArgumentException">The bitmap has fewer pages than the slot.</exception>
    /// <exception cref="InvalidOperationException">The slot was created with the legacy KVM_SET_USER_MEMORY_REGION.</exception>
    /// <exception cref="Kernel.KvmCapabilityException">The kernel has no KVM_CAP_USERFAULT.</exception>
    public void EnableUserfault(UserfaultBitmap bitmap)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        ObjectDisposedException.ThrowIf(_deleted, this);
        ObjectDisposedException.ThrowIf(bitmap.IsDisposed, bitmap);
        if (_legacy)
            throw new InvalidOperationException($"slot {Slot} was created with KVM_SET_USER_MEMORY_REGION, which has no userfault_bitmap (KVM_CAP_USER_MEMORY2 = 0)");
        ulong pages = Size / (ulong)Environment.SystemPageSize;
        if (bitmap.PageCount < pages)
            throw new ArgumentException($"the bitmap covers {bitmap.PageCount} pages, slot {Slot} has {pages}", nameof(bitmap));
        if (ReferenceEquals(bitmap, _userfault)) return;
        if (_userfault is not null) DisableUserfault();
        bool added = false;
        bitmap.Memory.DangerousAddRef(ref added);
        try
        {
            var region = _region;
            region.flags |= KvmConstants.KVM_MEM_USERFAULT;
            region.userfault_bitmap = bitmap.Address;
            Set(region);
            _region = region;
            _userfault = bitmap;
        }
        catch
        {
            if (added) bitmap.Memory.DangerousRelease();
            throw;
        }
    }

    /// <summary>Turns KVM_MEM_USERFAULT off (faults proceed whatever the bitmap says) and lets go of the bitmap.</summary>
    public void DisableUserfault()
    {
        ObjectDisposedException.ThrowIf(_deleted, this);
        if (_userfault is null) return;
        var region = _region;
        region.flags &= ~KvmConstants.KVM_MEM_USERFAULT;
        region.userfault_bitmap = 0;
        Set(region);
        _region = region;
        ReleaseUserfault();
    }

    /// <summary>Takes over a bitmap the slot was created with (its reference is already taken).</summary>
    internal void AdoptUserfault(UserfaultBitmap bitmap) => _userfault = bitmap;

    /// <summary>KVM no longer reads the bitmap (flag off or slot deleted): drop the slot's reference on its memory.</summary>
    private void ReleaseUserfault()
    {
        var bitmap = _userfault;
        _userfault = null;
        bitmap?.Memory.DangerousRelease();
    }
}
