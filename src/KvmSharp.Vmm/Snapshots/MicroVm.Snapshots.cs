// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.Vmm;

public sealed partial class MicroVm
{
    /// <summary>
    /// Captures this micro-VM between calls: its guest memory (the pages that are not all zero), image, memory size,
    /// VM type and offered features. Hyperlight's pattern: run the guest's initialisation once, snapshot, then start
    /// every later use from the snapshot (<see cref="Create(MicroVmSnapshot, MicroVmOptions?)"/>, <see cref="Restore"/>,
    /// a <see cref="MicroVmPool"/> of it). Refused (<see cref="MicroVmSnapshotException"/>, nothing changes) when the
    /// micro-VM is disposed, in its own call (from a host function), faulted (its memory may be half-way through
    /// something), or holds private guest pages, which the host cannot read.
    /// </summary>
    public MicroVmSnapshot Snapshot()
    {
        ThrowIfCannotUseSnapshots("Snapshot");
        if (IsFaulted)
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.Faulted,
                "cannot snapshot a faulted micro-VM: its last call did not end normally, so its memory may be half-way through an update; Reset() or Restore() it first");
        }
        if (!_memory.IsShared(0, _memory.Size))
        {
            ulong first = 0;
            while (first < _memory.Size && _memory.IsShared(first, Layout.PageSize)) first += Layout.PageSize;
            throw new MicroVmSnapshotException(SnapshotRefusal.PrivatePages,
                $"cannot snapshot a micro-VM whose guest holds private pages (the first at 0x{first:X}): the host cannot read them; the guest must make them shared first");
        }
        return new MicroVmSnapshot(Image, _memory.Size, _vm.Type, Features, SnapshotCapture.Capture(_memory));
    }

    /// <summary>
    /// A new micro-VM whose guest memory equals <paramref name="snapshot"/>'s; the image is not run or loaded again. Its
    /// image, memory size and VM type are the snapshot's (those of <paramref name="options"/> are not used); everything
    /// else comes from <paramref name="options"/>, so the kernel and the backing may differ from the snapshot's (a
    /// snapshot of a guest_memfd micro-VM on one kernel runs in host memory on another). Refused with a
    /// <see cref="MicroVmSnapshotException"/> when the new VM would offer its guest other features than the
    /// snapshot's guest was offered.
    /// </summary>
    public static MicroVm Create(MicroVmSnapshot snapshot, MicroVmOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        options = (options ?? new MicroVmOptions()) with { MemorySize = snapshot.MemorySize, VmType = snapshot.VmType };
        return CreateCore(snapshot.Image, options, snapshot);
    }

    /// <summary>
    /// Puts this micro-VM back to <paramref name="snapshot"/>: guest memory as captured (nothing of what happened since
    /// survives), the boot registers reloaded, a fault cleared. The snapshot must be of the same image (by content) and
    /// memory size, and of a guest offered the same features; otherwise a <see cref="MicroVmSnapshotException"/> names
    /// both values and nothing changes. A guest_memfd is punched and the snapshot's pages written; host memory adopts
    /// the snapshot as its pristine state, so from the second restore of the same snapshot on only the pages changed
    /// since (dirty log and the host's tracked writes) are rewritten. If the kernel fails half-way, the micro-VM is
    /// faulted until the next successful Reset or Restore.
    /// </summary>
    public void Restore(MicroVmSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ThrowIfCannotUseSnapshots("Restore");
        snapshot.CheckFits(Image, _memory.Size, Features);
        try
        {
            _memory.RestoreTo(snapshot.Pages);
            _vcpu.SetSregs(_sregs);
        }
        catch
        {
            IsFaulted = true;
            throw;
        }
        _vcpu.ImmediateExit = false;
        IsFaulted = false;
    }

    private void ThrowIfCannotUseSnapshots(string what)
    {
        if (_disposed) throw new MicroVmSnapshotException(SnapshotRefusal.Disposed, $"MicroVm.{what} on a disposed micro-VM");
        if (_inCall) throw new MicroVmSnapshotException(SnapshotRefusal.InCall, InCallMessage(what));
    }

    /// <summary>The CallRegion features this micro-VM offers its guest on every call.</summary>
    internal ulong Features => FeaturesOf(_conversion);

    private static ulong FeaturesOf(Confidential.MemoryConversion? conversion) =>
        conversion is null ? 0 : GuestAbi.CallRegion.FeaturePrivateMemory;
}
