// SPDX-License-Identifier: MIT
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Each SDK object holds its own descriptor, so closing /dev/kvm leaves the VMs created from it usable, as the kernel
/// does (a VM file keeps its struct kvm alive; only KVM_GET_VCPU_MMAP_SIZE is a /dev/kvm ioctl, and the SDK asks it
/// once, at the first KVM_CREATE_VM).
/// </summary>
public class DisposeOrderTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_vm_creates_and_runs_vcpus_after_its_kvm_was_disposed(string kernel)
    {
        Vm vm;
        using (var kvm = Open(kernel))
        {
            vm = kvm.CreateVm();
        }
        using (vm)
        {
            using var memory = vm.AllocateMemory(0x1000);
            memory.Write(0, RealMode.Assemble(0, asm => asm.hlt()));
            using var slot = vm.AddMemorySlot(slot: 0, guestPhysicalAddress: 0, memory);
            using var vcpu = vm.CreateVcpu();
            RealMode.StartAt(vcpu, 0);
            Assert.Equal(KvmSharp.Abi.KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
        }
    }
}
