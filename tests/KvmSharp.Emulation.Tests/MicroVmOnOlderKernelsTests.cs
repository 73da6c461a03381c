// SPDX-License-Identifier: MIT
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The micro-VM on kernels older than 6.18 (cloud-hypervisor#6680's "hosts older than 6.8" and the 6.8–6.17 ones in
/// between): it runs the guest in host memory and says precisely why guest_memfd could not be its memory.
/// </summary>
public sealed class MicroVmOnOlderKernelsTests
{
    [Theory]
    [InlineData(KernelGeneration.Linux61, VmType.Default, "this kernel has no guest_memfd")]
    [InlineData(KernelGeneration.Linux68, VmType.Default, "VM type Default: KVM_CAP_GUEST_MEMFD = 0 on the VM (before 6.18 only VM types with private memory")]
    [InlineData(KernelGeneration.Linux68, VmType.SwProtected, "VM type SwProtected: this kernel's guest_memfd predates the mmap series")]
    [InlineData(KernelGeneration.Linux616, VmType.SwProtected, "VM type SwProtected: this kernel's guest_memfd predates the mmap series")]
    public void The_guest_runs_in_host_memory_and_the_reason_names_what_is_missing(KernelGeneration generation, VmType type, string reason)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64(generation));
        using var kvm = Kvm.Open(kernel);
        var options = new MicroVmOptions { Kvm = kvm, VmType = type, Memory = null, Timeout = TimeSpan.FromSeconds(20) };
        using (var vm = MicroVm.Create(Hello.Image(), options))
        {
            Assert.Equal(GuestMemoryBacking.HostMemory, vm.Memory.Backing);
            Assert.StartsWith(reason, vm.GuestMemfdUnavailableReason, StringComparison.Ordinal);
            var result = vm.Run();
            Assert.Equal(GuestOutcome.Exit, result.Outcome);
            Assert.Equal(Hello.Greeting, result.Console);
        }

        // Asked for guest_memfd explicitly, it refuses with the same reason and leaves nothing behind.
        var refused = Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(), options with { Memory = GuestMemoryBacking.GuestMemfd }));
        Assert.StartsWith(reason, refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, kernel.OpenFdCount - 1); // only /dev/kvm of `kvm` is open
    }
}
