// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using Xunit;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The arm64 half of KVM userfault ("[PATCH v3 06/15] KVM: arm64: Add support for KVM userfault exits", James
/// Houghton, 2025-06-18, unmerged): kvm_do_userfault in user_mem_abort after the VMA lookup, and in gmem_abort before
/// kvm_gmem_get_pfn as the 6.18 rebase Firecracker carries places it. This host is x86_64: every case is skipped on the
/// real kernel, and <see cref="UserfaultRefusal"/> checks that a kernel without the series refuses the flag.
/// </summary>
[ConformanceGroup(Requires = KernelRequirement.Userfault)]
public static class Arm64UserfaultRules
{
    private const string Patch06 = "[PATCH v3 06/15] KVM: arm64: Add support for KVM userfault exits";
    private const string Firecracker53 = "firecracker resources/hiding_ci/kernels/6.18-amazon-linux patch 53 (gmem_abort)";
    private const ulong DataGpa = 0x10_0000;
    private const uint DataSlot = 1;
    private const int Pages = 8;

    private static ulong PageBytes => (ulong)PageSize;

    /// <summary>
    /// A guest that reads the first byte of each of the <see cref="Pages"/> pages at x0, sums them into x6, writes
    /// 0xEE at offset 8 of each, then reports UcallDone and powers off.
    /// </summary>
    private static Arm64Guest TouchEveryPage(Kvm kvm) => Arm64Guest.Create(kvm, a =>
    {
        var next = a.CreateLabel();
        a.Movz(X(6), 0);
        a.Movz(X(2), 0);
        a.Movz(W(5), 0xEE);
        a.Bind(next);
        a.Ldrb(W(3), X(0));
        a.Add(X(6), X(6), X(3));
        a.Strb(W(5), X(0), 8);
        a.AddImm(X(0), X(0), 1, lsl12: true);
        a.AddImm(X(2), X(2), 1);
        a.CmpImm(X(2), Pages);
        a.B(A64Condition.LO, next);
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        Arm64Guest.SystemOff(a);
    });

    /// <summary>demand_paging_test's -k loop: resolve each userfault exit's page, clear its bit, run again.</summary>
    private static List<ulong> RunResolving(Vcpu vcpu, UserfaultBitmap bitmap, Action<ulong> fill)
    {
        var resolved = new List<ulong>();
        for (int runs = 0; runs < 4 * Pages; runs++)
        {
            var exit = vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioAddress == Arm64Guest.UcallMmioGpa)
            {
                Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(exit.MmioData));
                return resolved;
            }
            Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, exit.Reason);
            // arm64 never sets PRIVATE: the flags are USERFAULT alone.
            Assert.Equal(KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT, exit.MemoryFaultFlags);
            Assert.Equal(PageBytes, exit.MemoryFaultSize);
            ulong page = (exit.MemoryFaultGpa - DataGpa) / PageBytes;
            Assert.Equal(DataGpa + page * PageBytes, exit.MemoryFaultGpa);
            Assert.InRange(page, 0UL, (ulong)Pages - 1);
            Assert.True(bitmap.IsSet(page), $"exit for page {page}, whose bit is clear");
            fill(page);
            Assert.True(bitmap.Clear(page));
            resolved.Add(page);
        }
        Assert.Fail("the guest did not finish");
        return resolved;
    }

    private static int ExpectedSum => Pages * (Pages + 1) / 2;

    [ConformanceCase("tools/testing/selftests/kvm/demand_paging_test.c -k on arm64 (" + Patch06 + ": user_mem_abort): every page of a " +
                     "host-memory slot userfaults once, in order, with flags = USERFAULT", Profile = EmulatedProfile.Arm64Userfault)]
    public static void arm64_demand_paging_host_memory(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = TouchEveryPage(kvm);
        using var data = guest.Vm.AllocateMemory(Pages * PageBytes);
        using var slot = guest.Vm.AddMemorySlot(DataSlot, DataGpa, data);
        using var bitmap = UserfaultBitmap.ForSlotSize(slot.Size, allSet: true);
        slot.EnableUserfault(bitmap);
        guest.Vcpu.SetX(0, DataGpa);
        var resolved = RunResolving(guest.Vcpu, bitmap, page => data.Write(page * PageBytes, (byte)(page + 1)));
        Assert.Equal(Enumerable.Range(0, Pages).Select(i => (ulong)i), resolved);
        Assert.Equal((ulong)ExpectedSum, guest.Vcpu.GetX(6));
        for (int i = 0; i < Pages; i++) Assert.Equal(0xEE, data.Read<byte>((ulong)i * PageBytes + 8));
    }

    [ConformanceCase("demand_paging_test.c -k on an arm64 guest_memfd slot (MMAP|INIT_SHARED, bound with userspace_addr = NULL): " + Firecracker53 +
                     " checks the bitmap before kvm_gmem_get_pfn", Profile = EmulatedProfile.Arm64Userfault, Requires = KernelRequirement.UserfaultGuestMemfd)]
    public static void arm64_demand_paging_guest_memfd(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = TouchEveryPage(kvm);
        var vm = guest.Vm;
        using var memfd = vm.CreateGuestMemfd(Pages * PageBytes, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var bitmap = UserfaultBitmap.Create(Pages, allSet: true);
        using var slot = vm.AddGuestMemfdSlot(DataSlot, DataGpa, Pages * PageBytes, memfd, mapForUserspace: false, userfault: bitmap);
        Assert.True(slot.HasUserfault);
        guest.Vcpu.SetX(0, DataGpa);
        using var view = memfd.Map();
        var resolved = RunResolving(guest.Vcpu, bitmap, page => view.Write(page * PageBytes, (byte)(page + 1)));
        Assert.Equal(Pages, resolved.Count);
        Assert.Equal((ulong)ExpectedSum, guest.Vcpu.GetX(6));
        for (int i = 0; i < Pages; i++) Assert.Equal(0xEE, view.Read<byte>((ulong)i * PageBytes + 8));
    }

    [ConformanceCase(Patch06 + " user_mem_abort: the VMA lookup precedes kvm_do_userfault — a set bit over an unmapped userspace_addr " +
                     "fails KVM_RUN with a bare EFAULT; an unreadable bitmap (NULL) as well; with the bit clear the access proceeds",
        Profile = EmulatedProfile.Arm64Userfault)]
    public static void arm64_userfault_order_in_user_mem_abort(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = TouchEveryPage(kvm);
        var vm = guest.Vm;
        guest.Vcpu.SetX(0, DataGpa);
        using var bitmap = UserfaultBitmap.Create(Pages, allSet: true);
        // An address range nothing maps: just above vm.mmap_min_addr (4096 here), where the kernel's top-down
        // get_unmapped_area never places a mapping. A freed allocation was used before; another thread's mmap could
        // take it (the case failed 2 runs in 6 under load, session 22).
        const ulong hole = 0x1000;
        var region = new kvm_userspace_memory_region2
        {
            slot = DataSlot, flags = KvmConstants.KVM_MEM_USERFAULT, guest_phys_addr = DataGpa, memory_size = Pages * PageBytes,
            userspace_addr = hole, userfault_bitmap = bitmap.Address,
        };
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Raw(ref region)));
        var e = Assert.Throws<KvmException>(() => guest.Vcpu.Run());
        Assert.Equal(Errno.EFAULT, e.Errno);
        Assert.NotEqual(KvmExitReason.KVM_EXIT_MEMORY_FAULT, guest.Vcpu.LastExit.Reason);
        // Mapped memory, NULL bitmap: kvm_do_userfault's __get_user fails → bare EFAULT again.
        var delete = region with { memory_size = 0 };
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Raw(ref delete)));
        using var data = vm.AllocateMemory(Pages * PageBytes);
        region.userspace_addr = (ulong)data.Address;
        region.userfault_bitmap = 0;
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Raw(ref region)));
        e = Assert.Throws<KvmException>(() => guest.Vcpu.Run());
        Assert.Equal(Errno.EFAULT, e.Errno);
        Assert.NotEqual(KvmExitReason.KVM_EXIT_MEMORY_FAULT, guest.Vcpu.LastExit.Reason);
        // A readable bitmap with every bit clear: the guest runs to the end.
        using var clear = UserfaultBitmap.Create(Pages);
        delete = region with { memory_size = 0 };
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Raw(ref delete)));
        region.userfault_bitmap = clear.Address;
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Raw(ref region)));
        Arm64Guests.AssertUcall(guest.Vcpu, Arm64Guest.UcallDone, () => "no ucall");
    }
}
