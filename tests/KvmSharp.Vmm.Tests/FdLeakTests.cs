// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>Runs alone (no other test opens KVM objects meanwhile), so /proc/self/fd before/after is exact.</summary>
[CollectionDefinition(nameof(FdLeakTests), DisableParallelization = true)]
public sealed class FdLeakCollection;

/// <summary>Every way a micro-VM can end leaves no descriptor or mapping behind, and the host can still run guests.</summary>
[Collection(nameof(FdLeakTests))]
public sealed class FdLeakTests
{
    public static readonly string[] EndingNames = ["hello", "exit42", "badport", "loop", "triplefault", "divide", "ud", "pagefault", "halt", "wild", "sum", "hostcall"];

    /// <summary>Every ending with each backing.</summary>
    public static TheoryData<string, GuestMemoryBacking> Endings()
    {
        var data = new TheoryData<string, GuestMemoryBacking>();
        foreach (string ending in EndingNames)
        {
            data.Add(ending, GuestMemoryBacking.GuestMemfd);
            data.Add(ending, GuestMemoryBacking.HostMemory);
        }
        return data;
    }

    private static MicroVmOptions EndingOptions(DemoGuest guest, GuestMemoryBacking backing) =>
        GuestRun.Default with { Timeout = TimeSpan.FromMilliseconds(100), HostFunctions = guest.HostFunctions?.Invoke(TextWriter.Null), Memory = backing };

    /// <summary>On the real kernel; the guest_memfd cases are skipped, with the reason, where it has no guest_memfd.</summary>
    [KvmTheory]
    [MemberData(nameof(Endings))]
    public void Each_ending_leaves_no_kvm_descriptor_or_mapping_behind(string demo, GuestMemoryBacking backing)
    {
        if (backing == GuestMemoryBacking.GuestMemfd) RealKernel.SkipUnlessGuestMemfd();
        var guest = DemoGuests.Find(demo)!;
        var image = guest.Image();
        var fdsBefore = KvmFds.Kvm();
        int mapsBefore = KvmFds.KvmMappings();

        nint memory;
        ulong size;
        using (var vm = MicroVm.Create(image, EndingOptions(guest, backing)))
        {
            Assert.Equal(backing, vm.Memory.Backing);
            memory = vm.Memory.HostAddress;
            size = vm.Memory.Size;
            var r = guest.Invoke(vm);
            Assert.NotEqual(GuestOutcome.RunFailed, r.Outcome);
            // While it lives, the micro-VM holds /dev/kvm, the VM and the vCPU, and the guest_memfd when it has one.
            var held = KvmFds.Kvm().Except(fdsBefore).ToList();
            Assert.True(held.Count >= 3, "held: " + string.Join(", ", held));
            Assert.Equal(backing == GuestMemoryBacking.GuestMemfd ? 1 : 0, held.Count(fd => fd.Contains("gmem", StringComparison.Ordinal)));
            Assert.True(HostMappings.AnyIn(memory, size));
        }

        Assert.False(HostMappings.AnyIn(memory, size), $"guest memory at 0x{memory:X} is still mapped");
        var leaked = KvmFds.Kvm().Except(fdsBefore).ToList();
        Assert.True(leaked.Count == 0, "leaked: " + string.Join(", ", leaked));
        Assert.Equal(mapsBefore, KvmFds.KvmMappings());
        // The host is healthy: a fresh guest still runs to a clean exit.
        Assert.True(GuestRun.Run(Hello.Image()).IsSuccess);
    }

    /// <summary>The same on the emulated kernel (it has guest_memfd), on every host: its own descriptor and mapping counts.</summary>
    [Theory]
    [MemberData(nameof(Endings))]
    public void Each_ending_on_the_emulated_kernel_leaves_nothing_behind(string demo, GuestMemoryBacking backing)
    {
        var guest = DemoGuests.Find(demo)!;
        using var k = TestKernel.Emulated();
        int fdsBefore = k.Emulator!.OpenFdCount; // /dev/kvm
        nint memory;
        ulong size;
        using (var vm = MicroVm.Create(guest.Image(), k.Options(backing, EndingOptions(guest, backing))))
        {
            Assert.Equal(backing, vm.Memory.Backing);
            memory = vm.Memory.HostAddress;
            size = vm.Memory.Size;
            Assert.NotEqual(GuestOutcome.RunFailed, guest.Invoke(vm).Outcome);
            // The VM and the vCPU, and the guest_memfd with its mapping when it has one.
            Assert.Equal(fdsBefore + (backing == GuestMemoryBacking.GuestMemfd ? 3 : 2), k.Emulator.OpenFdCount);
            // The vCPU's kvm_run, and the guest_memfd's one mapping (host memory is no emulated file).
            Assert.Equal(backing == GuestMemoryBacking.GuestMemfd ? 2 : 1, k.Emulator.MappingCount);
        }
        Assert.False(HostMappings.AnyIn(memory, size), $"guest memory at 0x{memory:X} is still mapped");
        Assert.Equal(fdsBefore, k.Emulator.OpenFdCount);
        Assert.Equal(0, k.Emulator.MappingCount);
        Assert.Equal(0, k.Emulator.LiveVmCount);
    }

    [KvmFact]
    public void Host_function_failures_and_a_dispose_from_a_host_function_leave_nothing_behind()
    {
        var fdsBefore = KvmFds.Kvm();
        int mapsBefore = KvmFds.KvmMappings();
        MicroVm? self = null;
        var functions = new HostCalls.HostFunctions();
        uint boom = functions.Add("boom", _ => throw new InvalidOperationException("boom"));
        uint quit = functions.Add("quit", _ =>
        {
            self!.Dispose();
            return 0;
        });
        using (var vm = HostCallGuest.Create(functions))
        {
            Assert.Equal(GuestOutcome.HostFunctionFailed, vm.Call("call", boom).Outcome);
            Assert.Equal(GuestOutcome.Exit, vm.Call("call", 0, 0, 0).Outcome); // resolve with a bad pointer: a status
        }
        var disposed = HostCallGuest.Create(functions);
        self = disposed;
        Assert.Equal(GuestOutcome.HostFunctionFailed, disposed.Call("call", quit).Outcome);

        var leaked = KvmFds.Kvm().Except(fdsBefore).ToList();
        Assert.True(leaked.Count == 0, "leaked: " + string.Join(", ", leaked));
        Assert.Equal(mapsBefore, KvmFds.KvmMappings());
    }

    [KvmFact]
    public void A_failed_create_leaves_nothing_behind()
    {
        var fdsBefore = KvmFds.Kvm();
        // A valid image that does not fit: refused before anything is created.
        var tooBig = GuestImage.FromFlat(new byte[3 * 1024 * 1024]);
        Assert.Throws<GuestImageException>(() => MicroVm.Create(tooBig, GuestRun.Default));
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
    }

    /// <summary>KVM_CREATE_VM's bare EINVAL for a type the kernel lacks becomes a refusal that names the types it has.</summary>
    [KvmFact]
    public void A_vm_type_the_kernel_lacks_is_refused_by_name_and_leaves_nothing_behind()
    {
        using var kvm = Kvm.Open();
        VmType missing = new[] { VmType.Snp, VmType.Tdx, VmType.SevEs, VmType.Sev, VmType.SwProtected }
            .FirstOrDefault(t => !kvm.SupportedVmTypes.Contains(t), VmType.Default);
        Skip.If(missing == VmType.Default, $"{KvmHost.DevicePath} offers every VM type: nothing to refuse");
        var fdsBefore = KvmFds.Kvm();
        var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(), GuestRun.Default with { Kvm = kvm, VmType = missing }));
        Assert.Contains($"VM type {missing} is not offered by this kernel (KVM_CAP_VM_TYPES:", e.Message, StringComparison.Ordinal);
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
    }

    [KvmFact]
    public void Asking_for_guest_memfd_on_a_kernel_without_it_is_refused_and_leaves_nothing_behind()
    {
        Skip.If(RealKernel.NoGuestMemfdReason is null,
            $"{KvmHost.DevicePath} has guest_memfd: nothing to refuse (BackingTests refuses it on an emulated kernel without guest_memfd)");
        var fdsBefore = KvmFds.Kvm();
        int mapsBefore = KvmFds.KvmMappings();
        // Refused after the VM was created (the capability is per VM): the VM and /dev/kvm are closed again.
        var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(), GuestRun.Default with { Memory = GuestMemoryBacking.GuestMemfd }));
        Assert.Contains(RealKernel.NoGuestMemfdReason!, e.Message, StringComparison.Ordinal);
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
        Assert.Equal(mapsBefore, KvmFds.KvmMappings());
    }

    [KvmFact]
    public void A_pool_releases_everything_on_dispose()
    {
        var fdsBefore = KvmFds.Kvm();
        using (var pool = new MicroVmPool(Sum.Image(), GuestRun.Quick, size: 3))
        {
            var vm = pool.Rent();
            Assert.Equal(3UL, vm.Call("add", 1, 2).Value);
            pool.Return(vm);
        }
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
    }
}
