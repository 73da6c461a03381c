// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The 6.18 mainline private-memory flow (no in-place conversion): a private-capable slot has anonymous host memory
/// at userspace_addr for shared pages and a guest_memfd (without MMAP) for private ones, and KVM_SET_MEMORY_ATTRIBUTES
/// (v1, per GFN on the VM) decides which one a guest access reaches (kernel-spec.md §2.6, §2.7, §2.9;
/// arch/x86/kvm/mmu/mmu.c kvm_mmu_faultin_pfn). Needs a VM type with private memory: KVM_X86_SW_PROTECTED_VM.
/// </summary>
public static class PrivateMemorySlots
{
    private const byte PausePort = 0x10;
    private const byte ReportPort = 0x11;
    private const ulong SlotGpa = 0x12000;

    [ConformanceCase("arch/x86/kvm/mmu/mmu.c kvm_mmu_faultin_pfn: PRIVATE gfns -> kvm_mmu_faultin_pfn_gmem, shared -> __kvm_faultin_pfn (userspace_addr)", Profile = EmulatedProfile.X86, Requires = KernelRequirement.GuestMemfd)]
    public static void memory_attributes_switch_guest_accesses_between_host_memory_and_guest_memfd(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = CreateSwProtectedVm(kvm);
        ulong ps = (ulong)PageSize;
        ulong privateGpa = SlotGpa + ps;        // page 1 of the slot changes attributes; page 0 stays shared
        ushort page0 = HostMemoryGuest.Offset(SlotGpa);
        ushort page1 = HostMemoryGuest.Offset(privateGpa);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.mov(__byte_ptr[page1], 0x11);     // shared: lands in the anonymous memory
            a.@out(PausePort, al);              // host: page 1 -> PRIVATE
            a.mov(al, __byte_ptr[page1]);       // private: the guest_memfd page, zeroed on first use
            a.@out(ReportPort, al);
            a.mov(al, __byte_ptr[page0]);       // page 0 is still shared
            a.@out(ReportPort, al);
            a.mov(__byte_ptr[page1], 0x22);     // private write: the guest_memfd page
            a.@out(PausePort, al);              // host: page 1 -> shared
            a.mov(al, __byte_ptr[page1]);       // the anonymous memory again
            a.@out(ReportPort, al);
            a.@out(PausePort, al);              // host: page 1 -> PRIVATE again
            a.mov(al, __byte_ptr[page1]);       // the guest_memfd page kept its contents
            a.@out(ReportPort, al);
            a.hlt();
        });
        using var shared = vm.AllocateMemory(2 * ps);
        using var gmem = vm.CreateGuestMemfd(2 * ps);
        shared.Write<byte>(0, 0x33);
        using var slot = vm.AddPrivateMemorySlot(1, SlotGpa, 2 * ps, shared, gmem);

        AssertPause(guest.Vcpu.Run());
        Assert.Equal(0x11, shared.Read<byte>(ps));
        vm.SetMemoryAttributes(privateGpa, ps, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        AssertReport(guest.Vcpu.Run(), 0x00);
        AssertReport(guest.Vcpu.Run(), 0x33);
        AssertPause(guest.Vcpu.Run());
        Assert.Equal(0x11, shared.Read<byte>(ps)); // the private write did not reach the host memory
        vm.SetMemoryAttributes(privateGpa, ps, 0);
        AssertReport(guest.Vcpu.Run(), 0x11);
        AssertPause(guest.Vcpu.Run());
        vm.SetMemoryAttributes(privateGpa, ps, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        AssertReport(guest.Vcpu.Run(), 0x22);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        Assert.Equal(0x11, shared.Read<byte>(ps));
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_get_pfn: file closed -> EFAULT -> kvm_mmu_prepare_memory_fault_exit", Profile = EmulatedProfile.X86, Requires = KernelRequirement.GuestMemfd)]
    public static void a_private_access_after_the_guest_memfd_was_closed_exits_memory_fault(CaseContext ctx)
    {
        // The slot-without-guest_memfd variant of a privacy the slot cannot serve is MemoryFaultExit's case; here the
        // slot had a guest_memfd, but the file is gone (kvm_gmem_release clears slot->gmem.file).
        using var kvm = ctx.OpenKvm();
        using var vm = CreateSwProtectedVm(kvm);
        ulong ps = (ulong)PageSize;
        ushort data = HostMemoryGuest.Offset(SlotGpa);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.mov(al, __byte_ptr[data]);
            a.@out(ReportPort, al);
            a.hlt();
        });
        using var shared = vm.AllocateMemory(ps);
        var gmem = vm.CreateGuestMemfd(ps);
        shared.Write<byte>(0, 0x44);
        using var slot = vm.AddPrivateMemorySlot(1, SlotGpa, ps, shared, gmem);
        vm.SetMemoryAttributes(SlotGpa, ps, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        gmem.Dispose();

        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MEMORY_FAULT, $"expected KVM_EXIT_MEMORY_FAULT, got {exit.ToString()}");
        Assert.Equal(KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE, exit.MemoryFaultFlags & KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE);
        Assert.Equal(SlotGpa, exit.MemoryFaultGpa);
        Assert.Equal(ps, exit.MemoryFaultSize);
        // Shared again: the access goes to the anonymous memory, which never needed the file.
        vm.SetMemoryAttributes(SlotGpa, ps, 0);
        AssertReport(guest.Vcpu.Run(), 0x44);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
    }

    private static Vm CreateSwProtectedVm(Kvm kvm)
    {
        RequireSwProtectedVm(kvm);
        var vm = kvm.CreateVm(VmType.SwProtected);
        if (!vm.SupportedMemoryAttributes.HasFlag(MemoryAttributes.Private))
        {
            vm.Dispose();
            Skip("the SW_PROTECTED VM reports no PRIVATE memory attribute (KVM_CAP_MEMORY_ATTRIBUTES)");
        }
        return vm;
    }

    private static void AssertPause(VcpuExit exit)
    {
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"expected KVM_EXIT_IO, got {exit.ToString()}");
        Assert.Equal(PausePort, exit.IoPort);
    }

    private static void AssertReport(VcpuExit exit, byte value)
    {
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"expected KVM_EXIT_IO, got {exit.ToString()}");
        Assert.Equal(ReportPort, exit.IoPort);
        Assert.Equal(value, exit.IoData[0]);
    }
}
