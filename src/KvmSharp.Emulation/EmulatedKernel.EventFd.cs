// SPDX-License-Identifier: MIT
// eventfd2(2) and the count of live eventfd contexts (fs/eventfd.c).
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
    /// <summary>eventfd2(2): fs/eventfd.c do_eventfd (flags checked, then a descriptor); -EBADF once disposed.</summary>
    public long EventFd(uint initialValue, int flags, out KernelFd? fd)
    {
        fd = null;
        lock (SyncRoot)
        {
            if (_disposed) return Err.EBADF;
            long rc = Fs.EventFdFile.Create(this, initialValue, flags);
            if (Err.IsError(rc)) return rc;
            fd = new KernelFd(this, (int)rc);
            return rc;
        }
    }

    private int _liveEventFdContexts;

    /// <summary>eventfd contexts not yet freed: held by an open eventfd or by a kernel user (an ioeventfd) after close.</summary>
    public int LiveEventFdContexts => Volatile.Read(ref _liveEventFdContexts);

    internal void EventFdContextCreated() => Interlocked.Increment(ref _liveEventFdContexts);

    internal void EventFdContextFreed() => Interlocked.Decrement(ref _liveEventFdContexts);
}
