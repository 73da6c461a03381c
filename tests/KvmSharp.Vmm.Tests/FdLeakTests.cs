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
    public static TheoryData<string> Endings => new() { "hello", "exit42", "badport", "loop", "triplefault", "halt", "wild", "sum", "hostcall" };

    [KvmTheory]
    [MemberData(nameof(Endings))]
    public void Each_ending_leaves_no_kvm_descriptor_or_mapping_behind(string demo)
    {
        var guest = DemoGuests.Find(demo)!;
        var image = guest.Image();
        var fdsBefore = KvmFds.Kvm();
        int mapsBefore = KvmFds.KvmMappings();

        var options = new MicroVmOptions { Timeout = TimeSpan.FromMilliseconds(100), HostFunctions = guest.HostFunctions?.Invoke(TextWriter.Null) };
        using (var vm = MicroVm.Create(image, options))
        {
            var r = guest.Invoke(vm);
            Assert.NotEqual(GuestOutcome.RunFailed, r.Outcome);
            // While it lives, the micro-VM holds /dev/kvm, the VM, the guest_memfd and the vCPU.
            Assert.True(KvmFds.Kvm().Except(fdsBefore).Count() >= 4);
        }

        var leaked = KvmFds.Kvm().Except(fdsBefore).ToList();
        Assert.True(leaked.Count == 0, "leaked: " + string.Join(", ", leaked));
        Assert.Equal(mapsBefore, KvmFds.KvmMappings());
        // The host is healthy: a fresh guest still runs to a clean exit.
        Assert.True(GuestRun.Run(Hello.Image()).IsSuccess);
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
        Assert.Throws<GuestImageException>(() => MicroVm.Create(tooBig));
        Assert.Empty(KvmFds.Kvm().Except(fdsBefore));
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
