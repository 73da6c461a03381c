// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Fs;

/// <summary>
/// fs/eventfd.c <c>struct eventfd_ctx</c>: a 64-bit counter under its wait-queue lock, reference counted (kref) by
/// the file and by every kernel user that took it with eventfd_ctx_fdget (an ioeventfd keeps it after userspace closed
/// the file). Its own lock, not the emulated kernel's: a running vCPU signals it without the kernel lock, and a blocking
/// read waits on it with the kernel lock released.
/// </summary>
internal sealed class EventFdCtx
{
    private readonly object _wqh = new();
    private readonly EmulatedKernel _kernel;
    private ulong _count;
    private int _refs = 1;

    // The irqfds polling this eventfd (virt/kvm/eventfd.c irqfd_wakeup on the wait queue), run after a write or signal.
    private readonly List<Action> _irqfdWakeups = [];

    // A real descriptor standing for this eventfd (kvmsharp exec lends its numbers): told each time "the counter is
    // non-zero" changes, so poll/epoll on it say what eventfd_poll says (EPOLLIN iff ctx->count > 0).
    private Action<bool>? _readableChanged;
    private int _mirroredFd = -1;

    public EventFdCtx(EmulatedKernel kernel, ulong count, int flags)
    {
        _kernel = kernel;
        _count = count;
        Flags = flags;
        kernel.EventFdContextCreated();
    }

    /// <summary>ctx->flags as eventfd2 got them (EFD_SEMAPHORE decides what a read takes).</summary>
    public int Flags { get; }

    /// <summary>ctx->count.</summary>
    public ulong Count
    {
        get { lock (_wqh) return _count; }
    }

    /// <summary>The kref: the file's reference plus one per kernel user.</summary>
    public int Refs => Volatile.Read(ref _refs);

    /// <summary>eventfd_ctx_fileget / kref_get.</summary>
    public void Get() => Interlocked.Increment(ref _refs);

    /// <summary>eventfd_ctx_put: the last reference frees the context.</summary>
    public void Put()
    {
        if (Interlocked.Decrement(ref _refs) == 0) _kernel.EventFdContextFreed();
    }

    /// <summary>
    /// Has <paramref name="changed"/> follow whether the counter is non-zero, for the real descriptor
    /// <paramref name="fd"/> that stands for this eventfd (told the current state at once).
    /// </summary>
    public void MirrorReadable(int fd, Action<bool> changed)
    {
        lock (_wqh)
        {
            (_mirroredFd, _readableChanged) = (fd, changed);
            changed(_count != 0);
        }
    }

    /// <summary>Descriptor <paramref name="fd"/> was closed: if it was the mirrored one, mirroring stops.</summary>
    public void StopMirroring(int fd)
    {
        lock (_wqh)
        {
            if (_mirroredFd == fd) (_mirroredFd, _readableChanged) = (-1, null);
        }
    }

    // After the counter changed under _wqh: tell the mirror when readability flipped.
    private void Mirror(bool wasReadable)
    {
        if (_readableChanged is { } changed && (_count != 0) != wasReadable) changed(_count != 0);
    }

    /// <summary>
    /// eventfd_signal_mask (6.8+): "if (ctx->count &lt; ULLONG_MAX) ctx->count++" — a kernel signal may take the counter
    /// to ULLONG_MAX, which a write(2) never can; readers are woken.
    /// </summary>
    public void Signal()
    {
        Action[] wakeups;
        lock (_wqh)
        {
            bool was = _count != 0;
            if (_count < ulong.MaxValue) _count++;
            Monitor.PulseAll(_wqh);
            wakeups = TakeForIrqfds();
            Mirror(was);
        }
        foreach (var wakeup in wakeups) wakeup();
    }

    /// <summary>
    /// kvm_irqfd_assign's init_waitqueue_func_entry(irqfd_wakeup) + vfs_poll: <paramref name="inject"/> runs after every
    /// write or signal; it returns whether the counter was already non-zero ("if (events &amp; EPOLLIN)
    /// schedule_work(&amp;irqfd->inject)": the caller injects once, and the count stays).
    /// </summary>
    public bool AddIrqfdWakeup(Action inject)
    {
        lock (_wqh)
        {
            _irqfdWakeups.Add(inject);
            return _count != 0;
        }
    }

    /// <summary>irqfd_shutdown: eventfd_ctx_remove_wait_queue.</summary>
    public void RemoveIrqfdWakeup(Action inject)
    {
        lock (_wqh) _irqfdWakeups.Remove(inject);
    }

    /// <summary>
    /// irqfd_wakeup (EPOLLIN), once per irqfd on this eventfd, under the wait-queue lock: eventfd_ctx_do_read takes 1
    /// (EFD_SEMAPHORE) or the whole counter; the injections run after the lock is dropped. Caller holds _wqh.
    /// </summary>
    private Action[] TakeForIrqfds()
    {
        if (_irqfdWakeups.Count == 0) return [];
        foreach (var _ in _irqfdWakeups)
            _count -= (Flags & LinuxConstants.EFD_SEMAPHORE) != 0 && _count != 0 ? 1 : _count;
        return [.. _irqfdWakeups];
    }

    /// <summary>
    /// eventfd_read: a buffer under 8 bytes → EINVAL; a zero counter → EAGAIN when non-blocking, else wait for a
    /// signal; eventfd_ctx_do_read takes 1 (EFD_SEMAPHORE) or the whole counter; 8 bytes are copied out.
    /// </summary>
    public long Read(Span<byte> buffer, bool nonBlocking)
    {
        if (buffer.Length < sizeof(ulong)) return Err.EINVAL;
        ulong taken;
        lock (_wqh)
        {
            if (_count == 0)
            {
                if (nonBlocking) return Err.EAGAIN;
                while (_count == 0) Monitor.Wait(_wqh);
            }
            taken = (Flags & LinuxConstants.EFD_SEMAPHORE) != 0 ? 1 : _count;
            _count -= taken;
            Monitor.PulseAll(_wqh);
            Mirror(wasReadable: true);
        }
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, taken);
        return sizeof(ulong);
    }

    /// <summary>
    /// eventfd_write: exactly 8 bytes (else EINVAL); ULLONG_MAX is EINVAL; the add must leave the counter below
    /// ULLONG_MAX ("if (ULLONG_MAX - ctx-&gt;count &gt; ucnt)"), else EAGAIN when non-blocking or wait for a read.
    /// </summary>
    public long Write(ReadOnlySpan<byte> buffer, bool nonBlocking)
    {
        if (buffer.Length != sizeof(ulong)) return Err.EINVAL;
        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(buffer);
        if (value == ulong.MaxValue) return Err.EINVAL;
        Action[] wakeups;
        lock (_wqh)
        {
            if (!(ulong.MaxValue - _count > value))
            {
                if (nonBlocking) return Err.EAGAIN;
                while (!(ulong.MaxValue - _count > value)) Monitor.Wait(_wqh);
            }
            bool was = _count != 0;
            _count += value;
            Monitor.PulseAll(_wqh);
            // eventfd_write: "if (likely(res > 0)) { ctx->count += ucnt; … wake_up_locked_poll(&ctx->wqh, EPOLLIN); }".
            wakeups = TakeForIrqfds();
            Mirror(was);
        }
        foreach (var wakeup in wakeups) wakeup();
        return sizeof(ulong);
    }
}
