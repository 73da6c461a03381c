// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_EXIT_MEMORY_FAULT through the typed run loop: a guest access whose privacy the memslot cannot serve comes
/// back from KVM_RUN as -EFAULT with the exit filled in (Documentation/virt/kvm/api.rst KVM_CAP_MEMORY_FAULT_INFO),
/// and <see cref="Vcpu.Run"/> returns it as an exit.
/// </summary>
public static class MemoryFaultExit
{
    private const ulong CodeGpa = 0x10000;
    private const ulong SlotSize = 0x10000;
    private const ushort DataOffset = 0x1000;

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c kvm_mmu_faultin_pfn: private fault on a slot without guest_memfd -> kvm_mmu_prepare_memory_fault_exit", Profile = EmulatedProfile.X86)]
    public static void private_access_to_a_slot_without_guest_memfd_exits_memory_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireSwProtectedVm(kvm);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        if (!vm.SupportedMemoryAttributes.HasFlag(MemoryAttributes.Private))
            Skip("the SW_PROTECTED VM reports no PRIVATE memory attribute (KVM_CAP_MEMORY_ATTRIBUTES)");

        // Ordinary (anonymous) memory in slot 0 holds the code and the data page: no guest_memfd behind it.
        Assert.Equal(0, MappedRegion.Map(ctx.Kernel, null, SlotSize, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
            LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, 0, out var memory));
        using (memory)
        {
            byte[] code = RealModeGuest.Assemble(a =>
            {
                a.mov(al, __byte_ptr[DataOffset]);
                a.hlt();
            });
            code.CopyTo(memory!.GetSpan(0, code.Length));
            vm.SetUserMemoryRegion2(new kvm_userspace_memory_region2
            {
                slot = 0, guest_phys_addr = CodeGpa, memory_size = SlotSize, userspace_addr = (ulong)memory.Address,
            });
            // The data page becomes private: a SW_PROTECTED VM's accesses follow the attributes, and this slot has no
            // guest_memfd to serve a private page from.
            vm.SetMemoryAttributes(CodeGpa + DataOffset, (ulong)PageSize, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);

            using var vcpu = vm.CreateVcpu();
            var sregs = vcpu.GetSregs();
            sregs.cs.@base = sregs.ds.@base = CodeGpa;
            sregs.cs.selector = sregs.ds.selector = (ushort)(CodeGpa >> 4);
            vcpu.SetSregs(sregs);
            vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });

            var exit = vcpu.Run();
            Assert.False(exit.Interrupted);
            Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, exit.Reason);
            Assert.Equal(KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE, exit.MemoryFaultFlags & KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE);
            Assert.Equal(CodeGpa + DataOffset, exit.MemoryFaultGpa);
            Assert.Equal((ulong)PageSize, exit.MemoryFaultSize);

            // Userspace resolves it the way a VMM would: the page goes back to shared and the guest proceeds.
            vm.SetMemoryAttributes(CodeGpa + DataOffset, (ulong)PageSize, 0);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
        }
    }
}
