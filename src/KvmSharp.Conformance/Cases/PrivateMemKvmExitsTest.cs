// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// tools/testing/selftests/kvm/x86/private_mem_kvm_exits_test.c, one for one (torvalds/linux, "Copyright (C) 2023,
/// Google LLC"): a KVM_X86_SW_PROTECTED_VM guest reads one page over and over; that page is PRIVATE, and KVM_RUN must
/// come back with KVM_EXIT_MEMORY_FAULT (flags PRIVATE, the page's GPA, one page) when no guest_memfd can serve it:
/// the memslot was deleted under the running vCPU, or it never had one. The upstream guest is 64-bit at GVA = GPA
/// 0xc0000000; here it is a real-mode loop whose DS points at the page (the address is arbitrary upstream too:
/// "selected to avoid overlaps"). main() requires KVM_CAP_VM_TYPES to list SW_PROTECTED: so do both cases.
/// </summary>
public static class PrivateMemKvmExitsTest
{
    /// <summary>EXITS_TEST_GPA: page-aligned, above the code page, in its own slot EXITS_TEST_SLOT.</summary>
    private const ulong ExitsTestGpa = 0x20000;
    private const uint ExitsTestSlot = 10;

    /// <summary>
    /// guest_repeatedly_read(): <c>while (true) value = *(u64 *)EXITS_TEST_GVA;</c> (DS based at the page; one
    /// 4-byte load per iteration, so every exit names the page's first byte as the selftest's one 8-byte load does).
    /// </summary>
    private static HostMemoryGuest GuestRepeatedlyRead(Vm vm)
    {
        var guest = HostMemoryGuest.Create(vm, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.mov(eax, __dword_ptr[0]);
            a.jmp(loop);
        });
        var sregs = guest.Vcpu.GetSregs();
        sregs.ds.@base = ExitsTestGpa;
        sregs.ds.selector = (ushort)(ExitsTestGpa >> 4);
        guest.Vcpu.SetSregs(sregs);
        return guest;
    }

    /// <summary>The selftest's protected_vm_shape, and its main()'s TEST_REQUIRE.</summary>
    private static Vm CreateProtectedVm(Kvm kvm)
    {
        RequireSwProtectedVm(kvm);
        return kvm.CreateVm(VmType.SwProtected);
    }

    /// <summary>run_vcpu_get_exit_reason(): KVM_RUN either succeeds, or fails with EFAULT and a MEMORY_FAULT exit.</summary>
    private static (KvmExitReason Reason, ulong Flags, ulong Gpa, ulong Size) RunVcpuGetExit(Vcpu vcpu)
    {
        var exit = vcpu.Run();
        return (exit.Reason, exit.MemoryFaultFlags, exit.MemoryFaultGpa, exit.MemoryFaultSize);
    }

    private static void AssertPrivateMemoryFault((KvmExitReason Reason, ulong Flags, ulong Gpa, ulong Size) exit)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, exit.Reason);
        Assert.Equal(KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE, exit.Flags);
        Assert.Equal(ExitsTestGpa, exit.Gpa);
        Assert.Equal((ulong)PageSize, exit.Size);
    }

    [ConformanceCase("x86/private_mem_kvm_exits_test.c test_private_access_memslot_deleted", Profile = EmulatedProfile.X86, Requires = KernelRequirement.GuestMemfd)]
    public static void test_private_access_memslot_deleted(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = CreateProtectedVm(kvm);
        using var guest = GuestRepeatedlyRead(vm);
        ulong ps = (ulong)PageSize;
        // vm_userspace_mem_region_add(VM_MEM_SRC_ANONYMOUS, …, KVM_MEM_GUEST_MEMFD): host memory for the shared
        // half and a guest_memfd for the private one.
        using var shared = vm.AllocateMemory(ps);
        using var gmem = vm.CreateGuestMemfd(ps);
        var slot = vm.AddPrivateMemorySlot(ExitsTestSlot, ExitsTestGpa, ps, shared, gmem);
        // vm_mem_set_private: request to access the page privately.
        vm.SetMemoryAttributes(ExitsTestGpa, ps, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);

        var vmThread = Task.Run(() => RunVcpuGetExit(guest.Vcpu));
        // Upstream deletes at once (either order ends the same way); a short wait makes the harder order the usual
        // one here: the guest is inside KVM_RUN, reading the page from the guest_memfd, when its slot goes away.
        Thread.Sleep(20);
        // vm_mem_region_delete.
        slot.Dispose();
        if (!vmThread.Wait(TimeSpan.FromSeconds(10)))
        {
            guest.Vcpu.Kick();
            Assert.Fail("the vCPU kept running after its private page's memslot was deleted");
        }
        // pthread_join: the thread has finished (Wait above), so this does not block.
        AssertPrivateMemoryFault(vmThread.GetAwaiter().GetResult());
    }

    [ConformanceCase("x86/private_mem_kvm_exits_test.c test_private_access_memslot_not_private", Profile = EmulatedProfile.X86)]
    public static void test_private_access_memslot_not_private(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = CreateProtectedVm(kvm);
        using var guest = GuestRepeatedlyRead(vm);
        // Add a non-private memslot (flags = 0).
        using var memory = vm.AllocateMemory((ulong)PageSize);
        using var slot = vm.AddMemorySlot(ExitsTestSlot, ExitsTestGpa, memory);
        // Request to access the page privately.
        vm.SetMemoryAttributes(ExitsTestGpa, (ulong)PageSize, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        AssertPrivateMemoryFault(RunVcpuGetExit(guest.Vcpu));
    }

    [ConformanceCase("guest_memfd: In-place conversion support [PATCH v8], its private_mem_kvm_exits_test update: with attributes in guest_memfd a deleted memslot leaves nothing that says PRIVATE, so the access is shared and exits KVM_EXIT_MMIO (and test_private_access_memslot_not_private is skipped there)",
        Profile = EmulatedProfile.X86InPlaceConversion, Requires = KernelRequirement.GuestMemfd)]
    public static void test_private_access_memslot_deleted_with_in_place_conversion(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = CreateProtectedVm(kvm);
        if ((vm.CheckExtension(kvm.Proposals.GuestMemfdMemoryAttributesCap) & (long)KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0)
            Skip("no in-place conversion: KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES lacks PRIVATE");
        using var guest = GuestRepeatedlyRead(vm);
        ulong ps = (ulong)PageSize;
        // Without INIT_SHARED the file's pages start PRIVATE in the guest_memfd's own attributes.
        using var gmem = vm.CreateGuestMemfd(ps, GuestMemfdFlags.Mmap);
        var slot = vm.AddGuestMemfdSlot(ExitsTestSlot, ExitsTestGpa, ps, gmem);

        var vmThread = Task.Run(() =>
        {
            var exit = guest.Vcpu.Run();
            return (exit.Reason, exit.MmioAddress, exit.MmioIsWrite);
        });
        Thread.Sleep(20);
        slot.Dispose();
        if (!vmThread.Wait(TimeSpan.FromSeconds(10)))
        {
            guest.Vcpu.Kick();
            Assert.Fail("the vCPU kept running after its page's memslot was deleted");
        }
        var (reason, address, isWrite) = vmThread.GetAwaiter().GetResult();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, reason);
        Assert.Equal(ExitsTestGpa, address);
        Assert.False(isWrite);
    }
}
