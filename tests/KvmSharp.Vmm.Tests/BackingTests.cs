// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;
using Xunit.Abstractions;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// What holds guest memory (<see cref="GuestMemoryBacking"/>): the best the kernel offers when the host leaves it
/// open, host memory that works like a guest_memfd for everything but private pages, and a clear refusal of
/// guest_memfd on a kernel without it — on the real kernel and on emulated kernels with and without guest_memfd.
/// </summary>
public sealed class BackingTests(ITestOutputHelper output)
{
    [KvmFact]
    public void The_suite_runs_on_the_best_backing_the_real_kernel_offers()
    {
        output.WriteLine(RealKernel.Describe());
        Assert.Equal(RealKernel.Backing, GuestRun.Default.Memory);
        // The kernel build the emulator matches (KVM_CAP_GUEST_MEMFD alone) agrees: no guest_memfd, no guest_memfd backing.
        if (HostMatching.HostHasGuestMemfd == false) Assert.Equal(GuestMemoryBacking.HostMemory, RealKernel.Backing);

        // Left open (Memory = null), a micro-VM gets that same backing, and says why when it is host memory.
        using var vm = MicroVm.Create(Hello.Image(), GuestRun.Quick with { Memory = null });
        Assert.Equal(RealKernel.Backing, vm.Memory.Backing);
        Assert.Equal(RealKernel.NoGuestMemfdReason, vm.GuestMemfdUnavailableReason);
        var r = vm.Run();
        Assert.True(r.IsSuccess, r.Detail);
        Assert.Equal(Hello.Greeting, r.Console);
    }

    [Fact]
    public void Left_open_the_memory_is_a_guest_memfd_where_the_kernel_offers_one()
    {
        using var k = TestKernel.Emulated();
        using var vm = MicroVm.Create(Hello.Image(), k.Options(backing: null));
        Assert.Equal(GuestMemoryBacking.GuestMemfd, vm.Memory.Backing);
        Assert.Null(vm.GuestMemfdUnavailableReason);
        Assert.NotNull(vm.Memory.Memfd);
        Assert.Equal(vm.Memory.Mapping!.Address, vm.Memory.HostAddress);
        Assert.True(vm.Run().IsSuccess);
    }

    public static TheoryData<string> KernelsWithoutGuestMemfdForAMicroVm => new() { "no guest_memfd", "SW_PROTECTED without in-place conversion" };

    [Theory]
    [MemberData(nameof(KernelsWithoutGuestMemfdForAMicroVm))]
    public void Left_open_the_memory_is_host_memory_where_the_kernel_has_no_guest_memfd_for_the_vm_type_and_says_why(string kernel)
    {
        // A kernel built without CONFIG_KVM_GUEST_MEMFD; and one with guest_memfd whose SW_PROTECTED VMs cannot map it
        // (mainline 6.18: no MMAP|INIT_SHARED for a VM type with private memory).
        bool noGmem = kernel == "no guest_memfd";
        using var k = noGmem ? TestKernel.Emulated(guestMemfd: false) : TestKernel.Emulated(EmulatorConfig.X86_64(), "emulated x86_64");
        var options = k.Options(backing: null) with { VmType = noGmem ? VmType.Default : VmType.SwProtected };
        using var vm = MicroVm.Create(Hello.Image(), options);
        Assert.Equal(GuestMemoryBacking.HostMemory, vm.Memory.Backing);
        Assert.Contains(noGmem ? "KVM_CAP_GUEST_MEMFD = 0" : "lacks MMAP|INIT_SHARED", vm.GuestMemfdUnavailableReason, StringComparison.Ordinal);
        var r = vm.Run();
        Assert.True(r.IsSuccess, r.Detail);
        Assert.Equal(Hello.Greeting, r.Console);
    }

    /// <summary>On an emulated kernel without guest_memfd everywhere, and on the real kernel when it has none.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Asking_for_guest_memfd_on_a_kernel_without_it_is_a_MicroVmException_that_names_the_capability(string kernel)
    {
        using var k = kernel == TestKernel.RealName ? TestKernel.Real() : TestKernel.Emulated(guestMemfd: false);
        if (k.IsReal)
        {
            Skip.If(RealKernel.NoGuestMemfdReason is null,
                $"{KvmHost.DevicePath} has guest_memfd: nothing to refuse (the emulated kernel without guest_memfd case runs everywhere)");
        }
        int fdsBefore = k.Emulator?.OpenFdCount ?? 0;
        // Not k.Options: that would skip the real case, which is the point here.
        var options = GuestRun.Quick with { Kvm = k.Kvm, Memory = GuestMemoryBacking.GuestMemfd };
        var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(), options));
        Assert.Contains("KVM_CAP_GUEST_MEMFD = 0", e.Message, StringComparison.Ordinal);
        Assert.Contains("CONFIG_KVM_GUEST_MEMFD", e.Message, StringComparison.Ordinal);
        Assert.Contains("GuestMemoryBacking.HostMemory", e.Message, StringComparison.Ordinal); // and what to do instead
        if (k.Emulator is { } emulator)
        {
            Assert.Equal(fdsBefore, emulator.OpenFdCount); // the VM created before the refusal is closed again
            Assert.Equal(0, emulator.LiveVmCount);
        }
        // The library default is guest_memfd, so a plain MicroVmOptions is refused the same way.
        Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(), new MicroVmOptions { Kvm = k.Kvm }));
        // The SDK under it: KVM_CREATE_GUEST_MEMFD is ENOTTY, and the exception says why.
        using var vm = k.Kvm.CreateVm();
        var sdk = Assert.Throws<KvmException>(() => vm.CreateGuestMemfd(2 << 20, GuestMemory.RequiredFlags));
        Assert.Equal("ENOTTY", sdk.ErrnoName);
        Assert.Contains("KVM_CAP_GUEST_MEMFD = 0", sdk.Message, StringComparison.Ordinal);
        // And host memory runs the guest.
        using var host = MicroVm.Create(Hello.Image(), options with { Memory = GuestMemoryBacking.HostMemory });
        Assert.True(host.Run().IsSuccess);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Host_memory_is_anonymous_memory_the_guest_and_the_host_share(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Sum.Image(), k.Options(GuestMemoryBacking.HostMemory));
        GuestMemory memory = vm.Memory;
        Assert.Equal(GuestMemoryBacking.HostMemory, memory.Backing);
        Assert.Null(memory.Memfd);
        Assert.Null(memory.Mapping);
        Assert.NotEqual(0, memory.HostAddress);
        Assert.Equal(MicroVmOptions.DefaultMemorySize, memory.Size);
        Assert.True(memory.IsAttached);
        Assert.False(memory.SupportsPrivateMemory);
        Assert.Null(vm.Conversion);
        Assert.True(memory.IsShared(0, memory.Size));
        Assert.False(memory.IsShared(memory.Size - 4096, 8192)); // beyond the end is not guest memory
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.Read<ulong>(memory.Size - 4)); // checked, never a fault

        // The host writes, the guest reads: bytes placed at the top of memory are summed by the guest.
        ulong scratch = memory.Size - 4096;
        var bytes = new byte[4096];
        new Random(11).NextBytes(bytes);
        memory.Write(scratch, bytes);
        Assert.Equal((ulong)bytes.Sum(b => (long)b), vm.Call("sum", scratch, (ulong)bytes.Length).Value);

        // The guest writes, the host reads, through the accessors and at HostAddress (the slot's userspace_addr).
        var r = vm.Call("reverse", "host memory"u8);
        Assert.Equal("yromem tsoh"u8.ToArray(), r.Output.ToArray());
        var raw = new byte[11];
        Marshal.Copy(memory.HostAddress + (nint)(Layout.CallData + 11), raw, 0, raw.Length);
        Assert.Equal("yromem tsoh"u8.ToArray(), raw);

        // Discard (what Reset does first) zeroes every page for the host …
        memory.Discard();
        var all = new byte[memory.Size];
        memory.Read(0, all);
        Assert.DoesNotContain(all, b => b != 0);
        // … and after Reset the guest runs from a fresh image and sees zeros where the data was.
        vm.Reset();
        Assert.Equal(0UL, vm.Call("sum", scratch, 4096).Value);
        Assert.Equal(7UL, vm.Call("add", 3, 4).Value);

        // Detach deletes the slot and Attach binds the same memory again.
        memory.Detach();
        Assert.False(memory.IsAttached);
        memory.Attach();
        Assert.Equal(9UL, vm.Call("add", 4, 5).Value);
    }

    [Fact]
    public void GuestMemory_create_takes_each_backing_and_nothing_else()
    {
        using var k = TestKernel.Emulated();
        using var vm = k.Kvm.CreateVm();
        Assert.Equal(GuestMemoryBacking.GuestMemfd, GuestMemory.BestBacking(vm));
        Assert.Null(GuestMemory.GuestMemfdUnavailableReason(vm));
        using (var gmem = GuestMemory.Create(vm, 2 << 20))
            Assert.Equal(GuestMemoryBacking.GuestMemfd, gmem.Backing); // the default
        using (var host = GuestMemory.Create(vm, 2 << 20, GuestMemoryBacking.HostMemory))
            Assert.Equal(GuestMemoryBacking.HostMemory, host.Backing);
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestMemory.Create(vm, 2 << 20, (GuestMemoryBacking)7));
        Assert.Equal(1, k.Emulator!.OpenFdCount - 1); // only the VM is left besides /dev/kvm
    }
}
