// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Telemetry;

namespace KvmSharp.Vmm;

/// <summary>
/// Pre-created micro-VMs of one image. <see cref="Rent"/> hands out a ready VM; <see cref="Return"/> resets it
/// (<see cref="MicroVm.Reset"/>: every page of its guest_memfd freed by a punch and the image reloaded, or every page of
/// its host memory changed since its first reset rewritten with its bytes from then or zeros) instead of destroying it, so the
/// next user pays for a discard and a reload, or a restore of the pages the last user changed, rather than for KVM_CREATE_VM, new guest memory, a slot and a vCPU. Every micro-VM of a pool has the
/// backing <see cref="MicroVmOptions.Memory"/> asks for.
/// Thread-safe: any thread may rent and return (a web server's requests, say, each on its own micro-VM). A return
/// resets the micro-VM on the returning thread, outside the pool's lock, so resets of several threads run side by side;
/// a micro-VM itself takes one call at a time, and a rented one is its renter's alone.
/// </summary>
public sealed class MicroVmPool : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Stack<MicroVm> _idle = new();
    private readonly GuestImage _image;
    private readonly MicroVmOptions _options;
    private readonly MicroVmSnapshot? _snapshot;
    private bool _disposed;

    /// <summary>
    /// Creates <paramref name="size"/> idle micro-VMs of <paramref name="image"/> up front; <see cref="Return"/> resets
    /// them with <see cref="MicroVm.Reset"/>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="image"/> or <paramref name="options"/> is
    /// null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is negative.</exception>
    /// <exception cref="MicroVmException">A micro-VM could not be created (the ones already made are
    /// disposed).</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">A kernel call failed while creating a micro-VM.</exception>
    public MicroVmPool(GuestImage image, MicroVmOptions options, int size)
        : this(image, null, options, size)
    {
    }

    /// <summary>
    /// Micro-VMs that start from <paramref name="snapshot"/> (<see cref="MicroVm.Create(MicroVmSnapshot, MicroVmOptions?)"/>)
    /// and go back to it on <see cref="Return"/> (<see cref="MicroVm.Restore"/>): the guest's initialisation ran once,
    /// before the snapshot, and never again. In host memory a return rewrites only the pages the last user changed.
    /// </summary>
    public MicroVmPool(MicroVmSnapshot snapshot, MicroVmOptions options, int size)
        : this(snapshot?.Image!, snapshot ?? throw new ArgumentNullException(nameof(snapshot)), options, size)
    {
    }

    private MicroVmPool(GuestImage image, MicroVmSnapshot? snapshot, MicroVmOptions options, int size)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        _image = image;
        _snapshot = snapshot;
        _options = options;
        try
        {
            for (int i = 0; i < size; i++)
            {
                _idle.Push(New());
                Instruments.IdleChanged(+1);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Micro-VMs ready to rent without creating one.</summary>
    public int Idle
    {
        get
        {
            lock (_gate) return _idle.Count;
        }
    }

    /// <summary>
    /// The most idle micro-VMs the pool keeps: a micro-VM returned when this many are idle is disposed instead (after
    /// a burst of rents, each of which had to create one, the pool shrinks back). No limit unless set; each idle
    /// micro-VM holds its guest memory's pages and a VM and vCPU in the kernel.
    /// </summary>
    public int MaxIdle
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            field = value;
        }
    } = int.MaxValue;

    /// <summary>A ready micro-VM: an idle one, or a new one (created on the calling thread) when none is idle.</summary>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public MicroVm Rent()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_idle.TryPop(out MicroVm? vm))
            {
                Instruments.IdleChanged(-1);
                Instruments.Rented(fromIdle: true);
                return vm;
            }
        }
        Instruments.Rented(fromIdle: false);
        return New();
    }

    private MicroVm New() => _snapshot is null ? MicroVm.Create(_image, _options) : MicroVm.Create(_snapshot, _options);

    /// <summary>
    /// Resets <paramref name="vm"/> (discard + reload, or restore of the changed pages), or restores it to the pool's
    /// snapshot, and keeps it for the next <see cref="Rent"/>. A micro-VM of another image, one returned to a disposed
    /// pool, and one beyond <see cref="MaxIdle"/> are disposed instead.
    /// </summary>
    public void Return(MicroVm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        if (!ReferenceEquals(vm.Image, _image) || !HasRoom())
        {
            vm.Dispose();
            return;
        }
        try
        {
            if (_snapshot is null) vm.Reset();
            else vm.Restore(_snapshot);
        }
        catch
        {
            vm.Dispose();
            throw;
        }
        lock (_gate)
        {
            // Checked again: the pool may have been disposed, or filled by other returns, during the reset.
            if (!_disposed && _idle.Count < MaxIdle)
            {
                _idle.Push(vm);
                Instruments.IdleChanged(+1);
                return;
            }
        }
        vm.Dispose();
    }

    private bool HasRoom()
    {
        lock (_gate) return !_disposed && _idle.Count < MaxIdle;
    }

    /// <summary>
    /// Disposes the idle micro-VMs. Rented ones stay the renter's; returning them later disposes them.
    /// </summary>
    public void Dispose()
    {
        MicroVm[] idle;
        lock (_gate)
        {
            _disposed = true;
            idle = [.. _idle];
            _idle.Clear();
        }
        Instruments.IdleChanged(-idle.Length);
        foreach (MicroVm vm in idle) vm.Dispose();
    }
}
