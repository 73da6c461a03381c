// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Sdk;

/// <summary>Forwards every call to <see cref="DelegatingKernel.Inner"/> and counts the memory-region ioctls the SDK makes.</summary>
internal sealed class RegionCallCounter(IKernel inner) : DelegatingKernel(inner)
{
    public int Region1Calls { get; private set; }

    public int Region2Calls { get; private set; }

    public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
    {
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2) Region2Calls++;
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION) Region1Calls++;
        return Inner.Ioctl(fd, request, arg);
    }
}
