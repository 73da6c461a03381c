// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

public sealed partial class MicroVm
{
    private readonly Lock _vcpuThreadGate = new();
    private VcpuThread? _vcpuThread;

    /// <summary>
    /// <see cref="Call(string, ReadOnlySpan{ulong})"/> on this micro-VM's own vCPU thread (made on the first
    /// asynchronous call, ended by <see cref="Dispose"/>), as a VMM runs each vCPU on a thread of its own: the guest
    /// runs there, not on a .NET thread-pool worker, so a server's timers and other requests keep their threads while
    /// guests run. Host functions run on the vCPU thread too. Calls queue and run one after another; await a call before
    /// <see cref="Reset"/>, <see cref="Restore"/> or returning the micro-VM to a pool. The caller's ExecutionContext
    /// flows (the call's activity is a child of the caller's). An unknown <paramref name="name"/> throws here, before
    /// anything is queued.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The micro-VM was disposed.</exception>
    public Task<CallResult> CallAsync(string name, params ulong[] args) => CallAsync(name, CancellationToken.None, args);

    /// <summary>
    /// <see cref="CallAsync(string, ulong[])"/>; cancelling <paramref name="cancellationToken"/> stops the guest and
    /// ends the call as <see cref="GuestOutcome.Cancelled"/> (the task completes with that outcome, it is not
    /// cancelled).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The micro-VM was disposed.</exception>
    public Task<CallResult> CallAsync(string name, CancellationToken cancellationToken, params ulong[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        ulong entry = ResolveForAsync(name);
        return OnVcpuThread(() => Enter(name, entry, args, ReadOnlySpan<byte>.Empty, withInput: false, cancellationToken));
    }

    /// <summary>
    /// <see cref="Call(string, ReadOnlySpan{byte})"/> on the micro-VM's vCPU thread (<see cref="CallAsync(string,
    /// ulong[])"/>): <paramref name="input"/> is copied into guest memory when the call starts, so keep it unchanged
    /// until the task completes.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The micro-VM was disposed.</exception>
    public Task<CallResult> CallAsync(string name, ReadOnlyMemory<byte> input, CancellationToken cancellationToken = default)
    {
        ulong entry = ResolveForAsync(name);
        return OnVcpuThread(() => Enter(name, entry, [], input.Span, withInput: true, cancellationToken));
    }

    /// <summary><see cref="Run(CancellationToken)"/> on the micro-VM's vCPU thread (<see cref="CallAsync(string, ulong[])"/>).</summary>
    /// <exception cref="ObjectDisposedException">The micro-VM was disposed.</exception>
    public Task<CallResult> RunAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return OnVcpuThread(() => Enter(null, Image.Entry, [], ReadOnlySpan<byte>.Empty, withInput: false, cancellationToken));
    }

    private ulong ResolveForAsync(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Image.Resolve(name);
    }

    private Task<CallResult> OnVcpuThread(Func<CallResult> call)
    {
        VcpuThread thread;
        lock (_vcpuThreadGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            thread = _vcpuThread ??= new VcpuThread($"kvmsharp vcpu (micro-VM of {Image.Entry:X})");
        }
        return thread.Run(call);
    }

    /// <summary>Stops the vCPU thread: queued calls run first (and find the micro-VM disposed).</summary>
    private void StopVcpuThread()
    {
        VcpuThread? thread;
        lock (_vcpuThreadGate) thread = _vcpuThread;
        thread?.Dispose();
    }
}
