// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Telemetry;

namespace KvmSharp.Vmm;

/// <summary>
/// Pre-created micro-VMs of one image. <see cref="Rent()"/> hands out a ready VM; <see cref="Return"/> resets it
/// (<see cref="MicroVm.Reset"/>: every page of its guest_memfd freed by a punch and the image reloaded, or every page of
/// its host memory changed since its first reset rewritten with its bytes from then or zeros) instead of destroying it, so the
/// next user pays for a discard and a reload, or a restore of the pages the last user changed, rather than for KVM_CREATE_VM, new guest memory, a slot and a vCPU. Every micro-VM of a pool has the
/// backing <see cref="MicroVmOptions.Memory"/> asks for.
/// Thread-safe: any thread may rent and return (a web server's requests, say, each on its own micro-VM). A return
/// resets the micro-VM on the returning thread, outside the pool's lock, so resets of several threads run side by side;
/// a micro-VM itself takes one call at a time, and a rented one is its renter's alone.
/// With <see cref="MaxRented"/> the pool bounds how many micro-VMs are out at once (each holds a VM, a vCPU and its
/// guest memory): a renter beyond it waits, <see cref="RentAsync"/> without blocking a thread, until a return. Return
/// every rented micro-VM, also one that faulted or that you disposed: a return is what frees its place.
/// </summary>
public sealed class MicroVmPool : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Stack<MicroVm> _idle = new();
    private readonly GuestImage _image;
    private readonly MicroVmOptions _options;
    private readonly MicroVmSnapshot? _snapshot;
    // Out and not yet returned, so that a return frees a place only for what this pool handed out.
    private readonly HashSet<MicroVm> _rented = new(ReferenceEqualityComparer.Instance);
    // Places for rented micro-VMs when MaxRented is set; never disposed (no wait handle is ever made), so a return
    // after Dispose can still release.
    private readonly SemaphoreSlim? _places;
    private readonly CancellationTokenSource _disposing = new();
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

    /// <summary>
    /// The most micro-VMs rented at once; a renter beyond it waits for a <see cref="Return"/>. No limit unless set
    /// (then a burst of renters creates as many micro-VMs as it has renters).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Less than 1.</exception>
    public int MaxRented
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            field = value;
            _places = value == int.MaxValue ? null : new SemaphoreSlim(value, value);
        }
    } = int.MaxValue;

    /// <summary>Micro-VMs rented from this pool and not yet returned.</summary>
    public int Rented
    {
        get
        {
            lock (_gate) return _rented.Count;
        }
    }

    /// <summary>
    /// A ready micro-VM: an idle one, or a new one (created on the calling thread) when none is idle. With
    /// <see cref="MaxRented"/> reached it blocks until a return.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The pool was disposed (also while waiting).</exception>
    public MicroVm Rent() => Rent(CancellationToken.None);

    /// <summary>
    /// <see cref="Rent()"/>; a wait for a place (<see cref="MaxRented"/> reached) ends when
    /// <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before or while waiting; nothing was rented.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed (also while waiting).</exception>
    public MicroVm Rent(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        if (_places is not null && !_places.Wait(0)) WaitForPlace(cancellationToken);
        return Take();
    }

    /// <summary>
    /// <see cref="Rent()"/> for servers: a wait for a place (<see cref="MaxRented"/> reached) blocks no thread. The
    /// micro-VM is taken, or created when none is idle, on the thread that continues.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before or while waiting; nothing was rented.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed (also while waiting).</exception>
    public async ValueTask<MicroVm> RentAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        if (_places is not null && !_places.Wait(0)) await WaitForPlaceAsync(cancellationToken).ConfigureAwait(false);
        return Take();
    }

    private void WaitForPlace(CancellationToken cancellationToken)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        try
        {
            _places!.Wait(either.Token);
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ObjectDisposedException(nameof(MicroVmPool), "the pool was disposed while a renter waited for a place");
        }
    }

    private async Task WaitForPlaceAsync(CancellationToken cancellationToken)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        try
        {
            await _places!.WaitAsync(either.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ObjectDisposedException(nameof(MicroVmPool), "the pool was disposed while a renter waited for a place");
        }
    }

    /// <summary>With a place held (when bounded): an idle micro-VM or a new one; the place goes back on failure.</summary>
    private MicroVm Take()
    {
        MicroVm? vm;
        lock (_gate)
        {
            if (_disposed)
            {
                _places?.Release();
                throw new ObjectDisposedException(nameof(MicroVmPool));
            }
            if (_idle.TryPop(out vm))
            {
                _rented.Add(vm);
                Instruments.IdleChanged(-1);
                Instruments.Rented(fromIdle: true);
                return vm;
            }
        }
        Instruments.Rented(fromIdle: false);
        try
        {
            vm = New();
        }
        catch
        {
            _places?.Release();
            throw;
        }
        lock (_gate) _rented.Add(vm);
        return vm;
    }

    private MicroVm New() => _snapshot is null ? MicroVm.Create(_image, _options) : MicroVm.Create(_snapshot, _options);

    /// <summary>
    /// Resets <paramref name="vm"/> (discard + reload, or restore of the changed pages), or restores it to the pool's
    /// snapshot, and keeps it for the next <see cref="Rent()"/>. A micro-VM of another image, one already disposed, one
    /// returned to a disposed pool, and one beyond <see cref="MaxIdle"/> are disposed instead. Either way a micro-VM
    /// rented from this pool frees its place (<see cref="MaxRented"/>), after it is idle, so a waiting renter gets it.
    /// </summary>
    public void Return(MicroVm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        bool ours;
        lock (_gate) ours = _rented.Remove(vm);
        try
        {
            Keep(vm);
        }
        finally
        {
            if (ours) _places?.Release();
        }
    }

    private void Keep(MicroVm vm)
    {
        // A sealed SNP micro-VM (MicroVm.IsSealed) is dropped, and a new one created, even though it could take the next
        // call of the same image through its dispatcher: Reset and Restore are refused for it (its private memory cannot
        // be rewritten, its registers are sealed), so everything the last user's calls left in its private memory —
        // globals, heap, stack, even the page tables — and in its vCPU would reach the next user. A pool promises that
        // nothing of one user reaches the next.
        if (vm.IsDisposed || vm.IsSealed || !ReferenceEquals(vm.Image, _image) || !HasRoom())
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
    /// Disposes the idle micro-VMs; renters still waiting for a place get an <see cref="ObjectDisposedException"/>.
    /// Rented micro-VMs stay the renter's; returning them later disposes them.
    /// </summary>
    public void Dispose()
    {
        MicroVm[] idle;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            idle = [.. _idle];
            _idle.Clear();
        }
        Instruments.IdleChanged(-idle.Length);
        foreach (MicroVm vm in idle) vm.Dispose();
        // Not disposed: a renter racing with Dispose may still link to its token (it then sees the pool disposed).
        _disposing.Cancel();
    }
}
