// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>Counts pwrite(2) calls and bytes on their way to the kernel it wraps.</summary>
internal sealed class PwriteCounter(IKernel inner) : DelegatingKernel(inner)
{
    public int Calls { get; private set; }

    public long Bytes { get; private set; }

    public override long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset)
    {
        Calls++;
        Bytes += buffer.Length;
        return base.Pwrite(fd, buffer, offset);
    }
}
