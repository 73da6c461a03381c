// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

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

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void The_readme_fallback_sample_picks_memory_the_kernel_can_give(string kernel)
    {
        using var kvm = Open(kernel);
        bool tookGuestMemfd;
        // As in the README, plus a guest write each branch checks: both kinds of memory must reach the vCPU.
        using var vm = kvm.CreateVm();
        if (vm.GuestMemfdUse == GuestMemfdUse.SoleMemory)
        {
            using var gmem = vm.CreateGuestMemfd(2 << 20, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
            using var slot = vm.AddGuestMemfdSlot(slot: 0, guestPhysicalAddress: 0, size: 2 << 20, gmem);
            using var mapping = gmem.Map();
            RunStoreGuest(vm, (gpa, value) => mapping.Write(gpa, value), gpa => mapping.Read<byte>(gpa));
            tookGuestMemfd = true;
        }
        else
        {
            using var memory = vm.AllocateMemory(2 << 20);
            using var slot = vm.AddMemorySlot(slot: 0, guestPhysicalAddress: 0, memory);
            RunStoreGuest(vm, (gpa, value) => memory.Write(gpa, value), gpa => memory.Read<byte>(gpa));
            tookGuestMemfd = false;
        }
        // Which branch each kernel takes: guest_memfd only where the 6.18 mmap series is.
        Assert.Equal(kvm.SupportedGuestMemfdFlags.HasFlag(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared), tookGuestMemfd);
    }

    // Real mode: "mov byte [0x2000], 0x5a; hlt" at 0x1000 (CS:IP pointed there; the reset vector has no memory).
    private static void RunStoreGuest(Vm vm, Action<ulong, ReadOnlySpan<byte>> write, Func<ulong, byte> read)
    {
        write(0x1000, RealMode.Assemble(0x1000, asm =>
        {
            asm.mov(__byte_ptr[0x2000], 0x5a);
            asm.hlt();
        }));
        using var vcpu = vm.CreateVcpu();
        RealMode.StartAt(vcpu, 0x1000);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
        Assert.Equal(0x5a, read(0x2000));
    }
}
