// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Runtime.InteropServices;
using static KvmSharp.Kernel.Libc.Libc;

namespace KvmSharp.Kernel;

/// <summary>
/// A wake-up counter that threads sleep on until it changes or a <see cref="Stopwatch"/> deadline passes, to the
/// microsecond: a 32-bit futex word (futex(2) FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC timeout; FUTEX_WAKE).
/// .NET's own timed waits are whole milliseconds and end 0.1–0.2 ms late. <see cref="Signal"/> is safe from any thread
/// at any time and makes a syscall only while a thread is asleep. Where futex(2) is not available (not Linux on x86_64 or
/// arm64) the sleep is a monitor wait rounded up to whole milliseconds.
/// </summary>
public sealed unsafe class FutexEvent
{
    /// <summary>The futex word: on the pinned object heap, so its address is fixed for the object's life.</summary>
    private readonly int[] _word = GC.AllocateArray<int>(1, pinned: true);

    /// <summary>Threads inside <see cref="Wait"/>'s sleep; <see cref="Signal"/> wakes only when this is not 0.</summary>
    private int _sleepers;

    private static readonly bool UseFutex = OperatingSystem.IsLinux() && SyscallNumbers.Futex >= 0;

    /// <summary>How many times <see cref="Signal"/> was called (wrapping at 2^32).</summary>
    public int Sequence => Volatile.Read(ref _word[0]);

    /// <summary>How many threads are asleep in <see cref="Wait"/> now (a snapshot).</summary>
    public int Sleepers => Volatile.Read(ref _sleepers);

    /// <summary>Advances <see cref="Sequence"/> and wakes every thread asleep in <see cref="Wait"/>.</summary>
    public void Signal()
    {
        // Interlocked operations are full fences: the increment is ordered before the read of _sleepers, and Wait's
        // increment of _sleepers before the kernel's read of the word (the futex wait compares it under its lock).
        Interlocked.Increment(ref _word[0]);
        if (Volatile.Read(ref _sleepers) == 0) return;
        if (!UseFutex)
        {
            lock (_word) Monitor.PulseAll(_word);
            return;
        }
        // SAFETY: _word is pinned for the life of this object, which the call keeps alive; FUTEX_WAKE only reads the
        // address to find the waiters queued on it.
        fixed (int* word = &_word[0])
            syscall(SyscallNumbers.Futex, (nint)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, int.MaxValue, 0, 0, 0);
    }

    /// <summary>
    /// Sleeps while <see cref="Sequence"/> is <paramref name="sequence"/>, until the <see cref="Stopwatch"/> timestamp
    /// <paramref name="due"/> (long.MaxValue: no deadline). Returns true when the sequence moved on (a signal), false at
    /// the deadline; never returns false before it (interrupted sleeps resume). With <paramref name="precise"/> the
    /// calling thread's timer slack (PR_SET_TIMERSLACK, 50 µs by default for a normal thread, which the kernel may add
    /// to a sleep's end) is 1 ns for the sleep, and the thread's own value is restored after it.
    /// </summary>
    public bool Wait(int sequence, long due, bool precise = false)
    {
        if (Sequence != sequence) return true;
        if (Stopwatch.GetTimestamp() >= due) return false;
        Interlocked.Increment(ref _sleepers);
        try
        {
            return UseFutex ? FutexWait(sequence, due, precise) : MonitorWait(sequence, due);
        }
        finally
        {
            Interlocked.Decrement(ref _sleepers);
        }
    }

    private bool FutexWait(int sequence, long due, bool precise)
    {
        long slack = precise ? syscall(SyscallNumbers.Prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0, 0) : -1;
        bool lowered = slack > 1 && syscall(SyscallNumbers.Prctl, PR_SET_TIMERSLACK, 1, 0, 0, 0, 0) == 0;
        try
        {
            long deadlineNs = due == long.MaxValue ? long.MaxValue : MonotonicDeadline(due);
            long* timespec = stackalloc long[2];
            timespec[0] = deadlineNs / 1_000_000_000;
            timespec[1] = deadlineNs % 1_000_000_000;
            while (Sequence == sequence)
            {
                // SAFETY: _word is pinned for the life of this object, which this frame keeps alive, and timespec is a
                // 16-byte struct __kernel_timespec on this stack; the kernel reads both and writes neither.
                long rc;
                fixed (int* word = &_word[0])
                    rc = syscall(SyscallNumbers.Futex, (nint)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, sequence,
                        deadlineNs == long.MaxValue ? 0 : (nint)timespec, 0, unchecked((nint)FUTEX_BITSET_MATCH_ANY));
                if (rc == 0) continue; // woken: the loop looks at the word (a wake for another sequence sleeps again)
                int errno = Marshal.GetLastPInvokeError();
                // ETIMEDOUT: the absolute deadline passed. EAGAIN: the word was not `sequence` any more. EINTR: a signal
                // (the runtime's own, e.g. a GC suspension): sleep again toward the same absolute deadline.
                if (errno == ETIMEDOUT) return false;
                if (errno != (int)Errno.EAGAIN && errno != (int)Errno.EINTR)
                    throw new InvalidOperationException($"futex(FUTEX_WAIT_BITSET) failed: {ErrnoInfo.NameOf(errno)}");
            }
            return true;
        }
        finally
        {
            if (lowered) syscall(SyscallNumbers.Prctl, PR_SET_TIMERSLACK, (nint)slack, 0, 0, 0, 0);
        }
    }

    /// <summary>
    /// The CLOCK_MONOTONIC time in ns of the Stopwatch timestamp <paramref name="due"/>, through both clocks read now
    /// (on Linux .NET's Stopwatch is CLOCK_MONOTONIC in ns, so this is the identity; the conversion does not rely on it).
    /// </summary>
    private static long MonotonicDeadline(long due)
    {
        long stopwatchNow = Stopwatch.GetTimestamp();
        long nowNs = MonotonicNanoseconds();
        long ticks = Math.Max(0, due - stopwatchNow);
        long ns = Stopwatch.Frequency == 1_000_000_000 ? ticks
            : (long)Math.Min((double)ticks * 1e9 / Stopwatch.Frequency, long.MaxValue / 4);
        return ns > long.MaxValue / 2 - nowNs ? long.MaxValue / 2 : nowNs + ns;
    }

    /// <summary>clock_gettime(CLOCK_MONOTONIC) in ns: the clock of the futex wait's deadline.</summary>
    public static long MonotonicNanoseconds()
    {
        long* now = stackalloc long[2];
        // SAFETY: now is a 16-byte struct timespec on this stack, the only memory the call writes.
        if (clock_gettime(CLOCK_MONOTONIC, now) != 0) throw new InvalidOperationException("clock_gettime(CLOCK_MONOTONIC) failed");
        return now[0] * 1_000_000_000 + now[1];
    }

    private bool MonitorWait(int sequence, long due)
    {
        lock (_word)
        {
            while (Sequence == sequence)
            {
                long left = due - Stopwatch.GetTimestamp();
                if (left <= 0) return false;
                int ms = due == long.MaxValue ? Timeout.Infinite : (int)Math.Min(int.MaxValue, (left * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency);
                Monitor.Wait(_word, ms);
            }
            return true;
        }
    }
}
