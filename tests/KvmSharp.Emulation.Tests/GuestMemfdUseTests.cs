// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// <see cref="Vm.GuestMemfdUse"/> is read from two capabilities; these tests check that it predicts what the kernel
/// then does (create, map, write, bind), on the real kernel and on every generation, architecture and VM type the
/// emulator knows.
/// </summary>
public sealed class GuestMemfdUseTests
{
    private static readonly ulong Size = 2UL * (ulong)Environment.SystemPageSize;

    public static TheoryData<string> EmulatedKernels()
    {
        var data = new TheoryData<string>();
        foreach (var g in Enum.GetValues<KernelGeneration>())
        {
            data.Add($"x86_64 {g}");
            // The v8 series is x86-only and needs TDP for its VM types: no arm64 or this-host flavour.
            if (g == KernelGeneration.InPlaceConversionV8) continue;
            data.Add($"arm64 {g}");
            data.Add($"this-host {g}");
        }
        return data;
    }

    private static EmulatorConfig Config(string name)
    {
        string[] parts = name.Split(' ');
        var g = Enum.Parse<KernelGeneration>(parts[1]);
        return parts[0] switch
        {
            "x86_64" => g == KernelGeneration.InPlaceConversionV8
                ? EmulatorConfig.X86_64(inPlaceConversion: true)
                : EmulatorConfig.X86_64(g),
            "arm64" => EmulatorConfig.Arm64(g),
            _ => EmulatorConfig.LikeThisHost(guestMemfd: g.HasGmemMmap(), g),
        };
    }

    [Theory]
    [MemberData(nameof(EmulatedKernels))]
    public void The_use_predicts_what_every_VM_type_of_an_emulated_kernel_does(string name)
    {
        var config = Config(name);
        using var kernel = new EmulatedKernel(config);
        using var kvm = Kvm.Open(kernel, proposals: config.Proposals);
        foreach (VmType type in kvm.SupportedVmTypes)
        {
            using var vm = kvm.CreateVm(type);
            AssertUseHolds(vm, $"{name}, VM type {type}");
        }
    }

    [KvmFact]
    public void The_use_predicts_what_the_real_kernel_does()
    {
        using var kvm = Kvm.Open();
        foreach (VmType type in kvm.SupportedVmTypes)
        {
            using var vm = kvm.CreateVm(type);
            AssertUseHolds(vm, $"linux, VM type {type}");
        }
    }

    [Theory]
    [InlineData(KernelGeneration.Linux61, VmType.Default, GuestMemfdUse.None)]
    [InlineData(KernelGeneration.Linux68, VmType.Default, GuestMemfdUse.None)]
    [InlineData(KernelGeneration.Linux68, VmType.SwProtected, GuestMemfdUse.PrivateBacking)]
    [InlineData(KernelGeneration.Linux616, VmType.Tdx, GuestMemfdUse.PrivateBacking)]
    [InlineData(KernelGeneration.Linux618, VmType.Default, GuestMemfdUse.SoleMemory)]
    [InlineData(KernelGeneration.Linux618, VmType.Snp, GuestMemfdUse.MappablePrivate)]
    [InlineData(KernelGeneration.InPlaceConversionV8, VmType.Snp, GuestMemfdUse.SoleMemory)]
    public void Each_generation_and_VM_type_has_its_use(KernelGeneration g, VmType type, GuestMemfdUse expected)
    {
        var config = g == KernelGeneration.InPlaceConversionV8 ? EmulatorConfig.X86_64(inPlaceConversion: true) : EmulatorConfig.X86_64(g);
        using var kernel = new EmulatedKernel(config);
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm(type);
        Assert.Equal(expected, vm.GuestMemfdUse);
    }

    /// <summary>Does what the use promises, and checks that the next level up is refused.</summary>
    private static void AssertUseHolds(Vm vm, string what)
    {
        GuestMemfdUse use = vm.GuestMemfdUse;
        if (use == GuestMemfdUse.None)
        {
            // Either there is no guest_memfd at all, or this VM cannot bind one.
            KvmSharp.GuestMemfd? memfd = null;
            try
            {
                memfd = vm.CreateGuestMemfd(Size);
            }
            catch (KvmException e) when (e.Errno is Errno.ENOTTY or Errno.EINVAL)
            {
                return;
            }
            using (memfd)
            {
                using var shared = vm.AllocateMemory(Size);
                var bind = Assert.Throws<KvmCapabilityException>(() => vm.AddPrivateMemorySlot(1, 0x100000, Size, shared, memfd).Dispose());
                Assert.Equal("KVM_CAP_GUEST_MEMFD", bind.Capability);
            }
            return;
        }

        // PrivateBacking and up: a file without flags backs the private half of a private-capable slot.
        using (var memfd = vm.CreateGuestMemfd(Size))
        using (var shared = vm.AllocateMemory(Size))
        using (vm.AddPrivateMemorySlot(1, 0x100000, Size, shared, memfd)) { }

        if (use == GuestMemfdUse.PrivateBacking)
        {
            Assert.True(Assert.Throws<KvmException>(() => vm.CreateGuestMemfd(Size, GuestMemfdFlags.Mmap).Dispose()).Errno == Errno.EINVAL, what);
            return;
        }

        using var mappable = vm.CreateGuestMemfd(Size, GuestMemfdFlags.Mmap);
        using (var mapping = mappable.Map())
        {
            if (use == GuestMemfdUse.MappablePrivate)
            {
                // Born private: the checked mapping refuses before the kernel would raise SIGBUS.
                Assert.Throws<GuestMemoryFaultException>(() => mapping.Write<byte>(0, 1));
                Assert.Equal(Errno.EINVAL,
                    Assert.Throws<KvmException>(() => vm.CreateGuestMemfd(Size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared).Dispose()).Errno);
                return;
            }
        }

        Assert.Equal(GuestMemfdUse.SoleMemory, use);
        using var sole = vm.CreateGuestMemfd(Size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = vm.AddGuestMemfdSlot(1, 0x100000, Size, sole);
        using var view = sole.Map();
        view.Write<ulong>(8, 0x1234);
        Assert.Equal(0x1234UL, view.Read<ulong>(8));
    }
}
