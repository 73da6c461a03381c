// SPDX-License-Identifier: MIT
using System.Collections.Concurrent;

namespace KvmSharp.Vmm;

/// <summary>
/// The thread a micro-VM's asynchronous calls run on, as a VMM gives each vCPU a thread of its own: KVM_RUN executes
/// the guest on the calling thread for as long as the guest runs, and on the .NET thread pool that would hold a worker
/// the pool's timers and other requests need (a sample's CancelAfter deadlines fired late under load). Work runs in
/// order, one item at a time, in the caller's ExecutionContext (Activity.Current, AsyncLocal values flow).
/// </summary>
internal sealed class VcpuThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;

    public VcpuThread(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>True on this vCPU thread.</summary>
    public bool IsCurrent => Thread.CurrentThread == _thread;

    /// <summary>Queues <paramref name="work"/>; the task completes with its result or exception on this thread's behalf.</summary>
    /// <exception cref="ObjectDisposedException">The thread was stopped.</exception>
    public Task<T> Run<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        ExecutionContext? context = ExecutionContext.Capture();
        void Item()
        {
            try
            {
                if (context is null) done.SetResult(work());
                else ExecutionContext.Run(context, _ => done.SetResult(work()), null);
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }
        try
        {
            _work.Add(Item);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(MicroVm), "the micro-VM was disposed");
        }
        return done.Task;
    }

    private void Loop()
    {
        foreach (Action item in _work.GetConsumingEnumerable()) item();
    }

    /// <summary>Takes no more work; waits for what is queued to finish unless called on this thread itself.</summary>
    public void Dispose()
    {
        _work.CompleteAdding();
        if (IsCurrent) return; // the loop ends after the item that called this
        _thread.Join();
        _work.Dispose();
    }
}
