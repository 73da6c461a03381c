// SPDX-License-Identifier: MIT
using System.Net;
using System.Net.Sockets;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// The TCP listener of a micro-VM's gdb stub (<see cref="MicroVmOptions.GdbEndpoint"/>), bound when the micro-VM is
/// created and closed when it is disposed. Each call accepts one connection (<see cref="Accept"/>) and ends it.
/// </summary>
internal sealed class GdbServer : IDisposable
{
    private readonly TcpListener _listener;

    /// <exception cref="MicroVmException">The endpoint cannot be bound (in use, no such address …).</exception>
    public GdbServer(IPEndPoint endpoint)
    {
        _listener = new TcpListener(endpoint);
        try
        {
            _listener.Start(1);
        }
        catch (SocketException e)
        {
            _listener.Dispose();
            throw new MicroVmException($"MicroVmOptions.GdbEndpoint: cannot listen on {endpoint}: {e.Message} ({e.SocketErrorCode})");
        }
        Endpoint = (IPEndPoint)_listener.LocalEndpoint;
    }

    /// <summary>The bound endpoint (a port of 0 asked for is resolved here).</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>Waits for a debugger to connect; null when <paramref name="abort"/> said to give up (checked every 50 ms).</summary>
    public Socket? Accept(Func<bool> abort)
    {
        while (!_listener.Server.Poll(50_000, SelectMode.SelectRead))
        {
            if (abort()) return null;
        }
        return _listener.AcceptSocket();
    }

    public void Dispose() => _listener.Dispose();
}
