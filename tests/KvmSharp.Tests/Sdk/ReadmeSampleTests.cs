// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>The README's code sample, as written there, runs on every kernel.</summary>
public class ReadmeSampleTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void The_readme_sample_runs(string kernel)
    {
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(2 << 20, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var mem = gmem.Map();
        mem.Write<ulong>(0x1000, 42);
        using var slot = vm.AddGuestMemfdSlot(slot: 0, guestPhysicalAddress: 0, size: 2 << 20, gmem);
        using var vcpu = vm.CreateVcpu();
        var exit = vcpu.Run();

        Assert.Equal(42UL, mem.Read<ulong>(0x1000));
        // The reset vector (0xFFFF0) has no memory behind it: KVM cannot fetch an instruction from MMIO and
        // reports an emulation failure (KVM_INTERNAL_ERROR_EMULATION), on the real kernel and the emulator alike.
        Assert.False(exit.Interrupted);
        Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
        Assert.Equal(1u, exit.InternalSuberror);
    }
}
