// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>Counts pwrite(2) calls, bytes and whole pages on their way to the kernel it wraps.</summary>
internal sealed class PwriteCounter(IKernel inner) : DelegatingKernel(inner)
{
    public int Calls { get; private set; }

    public long Bytes { get; private set; }

    /// <summary>Pages written (each call's length in host pages): what a lazy restore's populations cost.</summary>
    public int Pages { get; private set; }

    /// <summary>Starts counting again from zero.</summary>
    public void Restart() => (Calls, Bytes, Pages) = (0, 0, 0);

    public override long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset)
    {
        Calls++;
        Bytes += buffer.Length;
        Pages += buffer.Length / Environment.SystemPageSize;
        return base.Pwrite(fd, buffer, offset);
    }
}
