// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>Random bytes for every known request on every fd kind: always a result in range, never an exception.</summary>
public sealed class GarbageTests
{
    private static uint[] Requests =>
    [
        KvmIoctls.KVM_GET_API_VERSION, KvmIoctls.KVM_CREATE_VM, KvmIoctls.KVM_CHECK_EXTENSION, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE,
        KvmIoctls.KVM_CREATE_VCPU, KvmIoctls.KVM_SET_USER_MEMORY_REGION, KvmIoctls.KVM_SET_USER_MEMORY_REGION2,
        KvmIoctls.KVM_SET_TSS_ADDR, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2,
        KvmIoctls.KVM_CREATE_GUEST_MEMFD, KvmIoctls.KVM_RUN, KvmIoctls.KVM_PRE_FAULT_MEMORY, 0x5421, 0x0002, 0,
        uint.MaxValue,
    ];

    public static TheoryData<string> Configs => new() { "host", "x86", "x86-v8", "arm64", "x86-seed002" };

    private static EmulatorConfig Config(string name) => name switch
    {
        "host" => EmulatorConfig.LikeThisHost(),
        "x86" => EmulatorConfig.X86_64(),
        "x86-v8" => EmulatorConfig.X86_64(inPlaceConversion: true),
        "arm64" => EmulatorConfig.Arm64(),
        _ => EmulatorConfig.X86_64() with { VmMemoryAttributes2 = true },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Garbage_never_throws_and_every_fd_is_closed_at_the_end(string config)
    {
        var rng = new Random(1234);
        using var k = new EmulatedKernel(Config(config));
        var sys = Raw.OpenKvm(k);
        var vm = Raw.CreateVm(k, sys, config.StartsWith("x86", StringComparison.Ordinal) ? 1UL : 0UL);
        var gmem = Raw.CreateGmem(k, vm, 16 * (ulong)Raw.Page, KvmConstants.GUEST_MEMFD_FLAG_MMAP);
        var created = new List<KernelFd>();
        for (int round = 0; round < 300; round++)
        {
            foreach (var fd in new[] { sys, vm, gmem })
            {
                foreach (uint request in Requests)
                {
                    var bytes = new byte[rng.Next(0, 200)];
                    rng.NextBytes(bytes);
                    long rc = rng.Next(3) == 0 ? k.Ioctl(fd, request, (ulong)rng.NextInt64()) : k.Ioctl(fd, request, bytes);
                    Assert.True(rc >= -4095, $"{KvmIoctls.NameOf(request)} → {rc}");
                    if (rc > 2 && (request == KvmIoctls.KVM_CREATE_VM || request == KvmIoctls.KVM_CREATE_GUEST_MEMFD || request == KvmIoctls.KVM_CREATE_VCPU))
                        created.Add(k.Adopt((int)rc));
                }
                Assert.True(k.Fallocate(fd, rng.Next(-2, 300), rng.NextInt64(long.MinValue, long.MaxValue), rng.NextInt64(long.MinValue, long.MaxValue)) >= -4095);
                ulong len = (ulong)rng.NextInt64(0, 1L << 20);
                long m = k.Mmap(0, len, rng.Next(8), rng.Next(4), fd, rng.NextInt64() & ~4095L, out nint a);
                if (m == 0) Assert.Equal(0, k.Munmap(a, len));
            }
        }
        foreach (var fd in created) fd.Dispose();
        gmem.Dispose();
        vm.Dispose();
        sys.Dispose();
        Assert.Equal(0, k.OpenFdCount);
        Assert.Equal(0, k.LiveVmCount);
    }
}
