// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM userfault, "[PATCH v3 00/15] KVM: Introduce KVM Userfault" (James Houghton, 2025-06-18, unmerged): the selftest
/// changes of the series ported — set_memory_region_test's flag list ([PATCH v3 12/15]) and guest_memfd toggle test
/// ([PATCH v3 13/15]), demand_paging_test's KVM Userfault mode ([PATCH v3 11/15]) — and the rules of
/// kvm_set_memory_region / kvm_do_userfault ([PATCH v3 04/15]) and the x86 fault path ([PATCH v3 05/15]). A kernel
/// without the series (this host: KVM_CAP_USERFAULT = 0) skips them all; <see cref="UserfaultRefusal"/> checks its
/// refusal on both kernels.
/// </summary>
[ConformanceGroup(Requires = KernelRequirement.Userfault)]
public static class UserfaultRules
{
    private const string SetMemoryRegionTest = "tools/testing/selftests/kvm/set_memory_region_test.c";
    private const string Patch04 = "[PATCH v3 04/15] KVM: Add common infrastructure for KVM Userfaults";
    private const string Patch05 = "[PATCH v3 05/15] KVM: x86: Add support for KVM userfault exits";
    private const ulong DataGpa = HostMemoryGuest.CodeGpa + 0x1000;
    private const uint DataSlot = 1;
    private const int Pages = 8;
    private const byte DonePort = 0x10;

    private static ulong PageBytes => (ulong)PageSize;

    private static long Set2(CaseContext ctx, Vm vm, kvm_userspace_memory_region2 region) =>
        ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Raw(ref region));

    /// <summary>
    /// A real-mode guest that reads the first byte of each of the <see cref="Pages"/> data pages at
    /// <see cref="DataGpa"/>, sums them into BX, writes 0xEE at offset 8 of each, and reports BX on
    /// <see cref="DonePort"/> (memstress's guest_code, reduced to one access per page).
    /// </summary>
    private static HostMemoryGuest TouchEveryPage(Vm vm) => HostMemoryGuest.Create(vm, a =>
    {
        a.xor(bx, bx);
        for (int i = 0; i < Pages; i++)
        {
            ushort at = HostMemoryGuest.Offset(DataGpa + (ulong)i * 0x1000);
            a.mov(al, __byte_ptr[at]);
            a.add(bl, al);
            a.mov(__byte_ptr[at + 8], 0xEE);
        }
        a.mov(ax, bx);
        a.@out(DonePort, ax);
        a.hlt();
    });

    /// <summary>
    /// demand_paging_test's vcpu_worker with -k: run; on EFAULT + KVM_EXIT_MEMORY_FAULT with flags ==
    /// KVM_MEMORY_EXIT_FLAG_USERFAULT resolve the page (<paramref name="fill"/>, then clear its bit) and run again.
    /// Returns the pages resolved, in order.
    /// </summary>
    private static List<ulong> RunResolving(Vcpu vcpu, UserfaultBitmap bitmap, ulong expectedFlags, Action<ulong> fill)
    {
        var resolved = new List<ulong>();
        for (int runs = 0; runs < 4 * Pages; runs++)
        {
            var exit = vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == DonePort) return resolved;
            Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, exit.Reason);
            Assert.True(exit.MemoryFaultIsUserfault, "memory fault exit without the USERFAULT flag: " + exit.ToString());
            Assert.Equal(expectedFlags, exit.MemoryFaultFlags);
            Assert.Equal(PageBytes, exit.MemoryFaultSize);
            Assert.Equal(0UL, exit.MemoryFaultGpa % PageBytes);
            ulong page = (exit.MemoryFaultGpa - DataGpa) / PageBytes;
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

    [ConformanceCase(SetMemoryRegionTest + " test_invalid_memory_region_flags ([PATCH v3 12/15]: KVM_MEM_USERFAULT is supported iff KVM_CAP_USERFAULT)",
        Profile = EmulatedProfile.X86Userfault)]
    public static void test_invalid_memory_region_flags(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        uint supported = KvmConstants.KVM_MEM_LOG_DIRTY_PAGES | KvmConstants.KVM_MEM_USERFAULT;
        if (vm.CheckExtension(KvmCaps.KVM_CAP_READONLY_MEM) != 0) supported |= KvmConstants.KVM_MEM_READONLY;
        using var memory = vm.AllocateMemory(PageBytes);
        for (int i = 0; i < 32; i++)
        {
            uint flag = 1u << i;
            if ((supported & flag) != 0 || flag == KvmConstants.KVM_MEM_GUEST_MEMFD) continue;
            var region = new kvm_userspace_memory_region2
            {
                slot = 0, flags = flag, guest_phys_addr = DataGpa, memory_size = PageBytes, userspace_addr = (ulong)memory.Address,
            };
            AssertErrno(Errno.EINVAL, Set2(ctx, vm, region), $"KVM_SET_USER_MEMORY_REGION2 with flag bit {i}");
        }
        // KVM_MEM_USERFAULT itself is accepted by the v2 ioctl (here with the bitmap NULL, as [PATCH v3 13/15] does),
        // and refused by the v1 ioctl, whose flags stay KVM_SET_USER_MEMORY_REGION_V1_FLAGS.
        var v1 = new kvm_userspace_memory_region
        {
            slot = 0, flags = KvmConstants.KVM_MEM_USERFAULT, guest_phys_addr = DataGpa, memory_size = PageBytes, userspace_addr = (ulong)memory.Address,
        };
        AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, Raw(ref v1)), "KVM_MEM_USERFAULT through the v1 ioctl");
        Assert.Equal(0, Set2(ctx, vm, new kvm_userspace_memory_region2
        {
            slot = 0, flags = KvmConstants.KVM_MEM_USERFAULT, guest_phys_addr = DataGpa, memory_size = PageBytes, userspace_addr = (ulong)memory.Address,
        }));
    }

    [ConformanceCase(SetMemoryRegionTest + " test_private_memory_region_userfault ([PATCH v3 13/15]): KVM_MEM_USERFAULT toggles on and off on a KVM_MEM_GUEST_MEMFD slot",
        Profile = EmulatedProfile.X86Userfault, Requires = KernelRequirement.UserfaultGuestMemfd)]
    public static void test_private_memory_region_userfault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireSwProtectedVm(kvm);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        const ulong Size = 0x200000;
        const ulong Gpa = 0x100000000;
        var region = new kvm_userspace_memory_region2 { slot = 0, flags = KvmConstants.KVM_MEM_GUEST_MEMFD, guest_phys_addr = Gpa, memory_size = Size };
        // test_invalid_guest_memfd(vm, vm->kvm_fd / vm->fd, ...): neither is a guest_memfd → EINVAL.
        AssertErrno(Errno.EINVAL, Set2(ctx, vm, region with { guest_memfd = (uint)kvm.Handle.Number }), "KVM fd should fail");
        AssertErrno(Errno.EINVAL, Set2(ctx, vm, region with { guest_memfd = (uint)vm.Handle.Number }), "VM's fd should fail");
        using var memfd = vm.CreateGuestMemfd(Size);
        region.guest_memfd = (uint)memfd.Handle.Number;
        Assert.Equal(0, Set2(ctx, vm, region));
        Assert.Equal(0, Set2(ctx, vm, region with { flags = KvmConstants.KVM_MEM_GUEST_MEMFD | KvmConstants.KVM_MEM_USERFAULT }));
        Assert.Equal(0, Set2(ctx, vm, region));
        // v3 relaxes "private memslots are immutable" to "a guest_memfd memslot can't be moved" (Sean's rework of
        // [PATCH v2 03/13]), and 6.18's "Disallow toggling KVM_MEM_GUEST_MEMFD" still holds.
        AssertErrno(Errno.EINVAL, Set2(ctx, vm, region with { guest_phys_addr = Gpa + Size }), "moving a guest_memfd slot");
        AssertErrno(Errno.EINVAL, Set2(ctx, vm, region with { flags = 0 }), "dropping KVM_MEM_GUEST_MEMFD");
        Assert.Equal(0, Set2(ctx, vm, region with { memory_size = 0 }));
    }

    [ConformanceCase("tools/testing/selftests/kvm/demand_paging_test.c -k ([PATCH v3 11/15]): every page userfaults once, the VMM fills it, " +
                     "clears its bit with release semantics and runs again", Profile = EmulatedProfile.X86Userfault)]
    public static void demand_paging_host_memory(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var data = vm.AllocateMemory(Pages * PageBytes);
        using var slot = vm.AddMemorySlot(DataSlot, DataGpa, data);
        using var guest = TouchEveryPage(vm);
        // enable_userfault: "everything is userfault initially".
        using var bitmap = UserfaultBitmap.ForSlotSize(slot.Size, allSet: true);
        slot.EnableUserfault(bitmap);
        Assert.True(slot.HasUserfault);
        var resolved = RunResolving(guest.Vcpu, bitmap, KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT,
            page => data.Write(page * PageBytes, (byte)(page + 1)));
        Assert.Equal(Enumerable.Range(0, Pages).Select(i => (ulong)i), resolved);
        Assert.Equal(ExpectedSum, (int)guest.Vcpu.GetRegs().rbx);
        Assert.Equal(0UL, bitmap.CountSet());
        for (int i = 0; i < Pages; i++) Assert.Equal(0xEE, data.Read<byte>((ulong)i * PageBytes + 8));
    }

    [ConformanceCase("demand_paging_test.c -k on a guest_memfd slot (MMAP|INIT_SHARED), each page filled by write(2) as Firecracker's lazy " +
                     "restore does (" + Patch05 + ": the check precedes the gmem fault-in)", Profile = EmulatedProfile.X86Userfault, Requires = KernelRequirement.UserfaultGuestMemfd)]
    public static void demand_paging_guest_memfd(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var flags = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared | GuestMemfdFlags.Write;
        if ((vm.SupportedGuestMemfdFlags & flags) != flags) Skip($"the default VM does not offer {flags.ToKernelString()}");
        using var memfd = vm.CreateGuestMemfd(Pages * PageBytes, flags);
        using var bitmap = UserfaultBitmap.Create(Pages, allSet: true);
        using var slot = vm.AddGuestMemfdSlot(DataSlot, DataGpa, Pages * PageBytes, memfd, userfault: bitmap);
        Assert.True(slot.HasUserfault);
        using var guest = TouchEveryPage(vm);
        byte[] page = new byte[PageSize];
        var resolved = RunResolving(guest.Vcpu, bitmap, KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT, p =>
        {
            page[0] = (byte)(p + 1);
            memfd.WriteAll((long)(p * PageBytes), page);
        });
        Assert.Equal(Pages, resolved.Count);
        Assert.Equal(ExpectedSum, (int)guest.Vcpu.GetRegs().rbx);
        using var view = memfd.Map();
        for (int i = 0; i < Pages; i++) Assert.Equal(0xEE, view.Read<byte>((ulong)i * PageBytes + 8));
    }

    [ConformanceCase(Patch04 + " kvm_do_userfault: a private access exits with USERFAULT | PRIVATE (kvm_prepare_memory_fault_exit keeps is_private)",
        Profile = EmulatedProfile.X86Userfault, Requires = KernelRequirement.UserfaultGuestMemfd)]
    public static void private_access_exits_userfault_and_private(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireSwProtectedVm(kvm);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        if (!vm.SupportedMemoryAttributes.HasFlag(MemoryAttributes.Private))
            Skip("the SW_PROTECTED VM reports no PRIVATE memory attribute (KVM_CAP_MEMORY_ATTRIBUTES)");
        using var shared = vm.AllocateMemory(Pages * PageBytes);
        using var memfd = vm.CreateGuestMemfd(Pages * PageBytes);
        using var slot = vm.AddPrivateMemorySlot(DataSlot, DataGpa, Pages * PageBytes, shared, memfd);
        using var guest = TouchEveryPage(vm);
        vm.SetMemoryAttributes(DataGpa, Pages * PageBytes, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        using var bitmap = UserfaultBitmap.Create(Pages);
        bitmap.Set(3);
        slot.EnableUserfault(bitmap);
        var exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, exit.Reason);
        Assert.Equal(KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT | KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE, exit.MemoryFaultFlags);
        Assert.Equal(DataGpa + 3 * PageBytes, exit.MemoryFaultGpa);
        Assert.Equal(PageBytes, exit.MemoryFaultSize);
        bitmap.Clear(3);
        // Private pages are zero: the sum is 0 and the guest finishes.
        var done = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, done.Reason);
        Assert.Equal(0UL, guest.Vcpu.GetRegs().rbx & 0xFF);
    }

    [ConformanceCase(Patch04 + " kvm_set_memory_region: !access_ok(userfault_bitmap, DIV_ROUND_UP(npages, BITS_PER_LONG) * sizeof(long)) → EINVAL, " +
                     "checked before the slot lookup (also on deletion); NULL and unaligned bitmaps pass", Profile = EmulatedProfile.X86Userfault)]
    public static void bitmap_range_is_checked_with_access_ok(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong size = 128 * PageBytes; // two longs of bitmap: 16 bytes
        using var memory = vm.AllocateMemory(size);
        var region = new kvm_userspace_memory_region2
        {
            slot = DataSlot, flags = KvmConstants.KVM_MEM_USERFAULT, guest_phys_addr = DataGpa, memory_size = size, userspace_addr = (ulong)memory.Address,
        };
        // x86_64 4-level paging: user addresses end at TASK_SIZE_MAX = 2^47 - 4096 (access_ok: addr + size <= it).
        const ulong TaskSizeMax = (1UL << 47) - 4096;
        AssertErrno(Errno.EINVAL, Set2(ctx, vm, region with { userfault_bitmap = TaskSizeMax - 8 }), "a bitmap whose second long is beyond TASK_SIZE_MAX");
        AssertErrno(Errno.EINVAL, Set2(ctx, vm, region with { userfault_bitmap = ulong.MaxValue - 7 }), "a bitmap that wraps");
        AssertErrno(Errno.EINVAL, Set2(ctx, vm, region with { userfault_bitmap = 0xffff_8000_0000_0000 }), "a kernel address");
        // The range is all that is checked: an unmapped, unaligned bitmap right below the limit is accepted.
        Assert.Equal(0, Set2(ctx, vm, region with { userfault_bitmap = TaskSizeMax - 16 }));
        Assert.Equal(0, Set2(ctx, vm, region with { memory_size = 0 }));
        Assert.Equal(0, Set2(ctx, vm, region with { userfault_bitmap = 3 }));
        // Deleting with the flag and a bad bitmap fails before the slot is looked up, and leaves it in place.
        AssertErrno(Errno.EINVAL, Set2(ctx, vm, region with { memory_size = 0, userfault_bitmap = TaskSizeMax + 8 }), "deleting with a bitmap beyond TASK_SIZE_MAX");
        AssertErrno(Errno.EEXIST, Set2(ctx, vm, region with { slot = DataSlot + 1, flags = 0 }), "the slot is still there");
        Assert.Equal(0, Set2(ctx, vm, region with { memory_size = 0, userfault_bitmap = 0 }));
    }

    [ConformanceCase(Patch04 + " kvm_do_userfault: \"if (__get_user(chunk, user_chunk)) return true\" — an unreadable bitmap fails KVM_RUN with " +
                     "a bare EFAULT (no memory fault exit); Documentation: \"If an invalid pointer is provided, at fault time, KVM_RUN will return -EFAULT\"",
        Profile = EmulatedProfile.X86Userfault)]
    public static void unreadable_bitmap_fails_run_with_bare_efault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var data = vm.AllocateMemory(Pages * PageBytes);
        // The NULL bitmap of [PATCH v3 13/15]'s toggle test: accepted, unreadable at fault time.
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.hlt();
            a.mov(al, __byte_ptr[HostMemoryGuest.Offset(DataGpa)]);
            a.hlt();
        });
        Assert.Equal(0, Set2(ctx, vm, new kvm_userspace_memory_region2
        {
            slot = DataSlot, flags = KvmConstants.KVM_MEM_USERFAULT, guest_phys_addr = DataGpa, memory_size = Pages * PageBytes,
            userspace_addr = (ulong)data.Address, userfault_bitmap = 0,
        }));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        var e = Assert.Throws<KvmException>(() => guest.Vcpu.Run());
        Assert.Equal(Errno.EFAULT, e.Errno);
        // Turning the flag off lets the access proceed.
        Assert.Equal(0, Set2(ctx, vm, new kvm_userspace_memory_region2
        {
            slot = DataSlot, guest_phys_addr = DataGpa, memory_size = Pages * PageBytes, userspace_addr = (ulong)data.Address,
        }));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
    }

    [ConformanceCase(Patch04 + " kvm_set_memory_region: a request that changes only userfault_bitmap is \"nothing to change\" (flags compared, " +
                     "not the bitmap), so KVM keeps reading the old bitmap", Profile = EmulatedProfile.X86Userfault)]
    public static void changing_only_the_bitmap_is_ignored(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var data = vm.AllocateMemory(Pages * PageBytes);
        using var clear = UserfaultBitmap.Create(Pages);
        using var set = UserfaultBitmap.Create(Pages, allSet: true);
        var region = new kvm_userspace_memory_region2
        {
            slot = DataSlot, flags = KvmConstants.KVM_MEM_USERFAULT, guest_phys_addr = DataGpa, memory_size = Pages * PageBytes,
            userspace_addr = (ulong)data.Address, userfault_bitmap = clear.Address,
        };
        Assert.Equal(0, Set2(ctx, vm, region));
        Assert.Equal(0, Set2(ctx, vm, region with { userfault_bitmap = set.Address }));
        using var guest = TouchEveryPage(vm);
        var exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, exit.Reason);
        Assert.Equal(0, Set2(ctx, vm, region with { memory_size = 0 }));
    }

    [ConformanceCase("Documentation/virt/kvm/api.rst ([PATCH v3 15/15]): \"Setting bits in userfault_bitmap has no effect on pages that have already " +
                     "been mapped by KVM until KVM_MEM_USERFAULT is disabled and re-enabled again\" (kvm_commit_memory_region → kvm_arch_userfault_enabled)",
        Profile = EmulatedProfile.X86Userfault)]
    public static void bits_set_later_take_effect_when_the_flag_is_enabled_again(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var data = vm.AllocateMemory(PageBytes);
        using var slot = vm.AddMemorySlot(DataSlot, DataGpa, data);
        ushort at = HostMemoryGuest.Offset(DataGpa);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            var again = a.CreateLabel();
            a.Label(ref again);
            a.mov(al, __byte_ptr[at]);
            a.hlt();
            a.jmp(again);
        });
        using var bitmap = UserfaultBitmap.Create(1);
        slot.EnableUserfault(bitmap);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason); // bit clear: the page is mapped
        bitmap.Set(0);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason); // mapped: no exit
        slot.DisableUserfault();
        slot.EnableUserfault(bitmap); // the translations are dropped: the next access sees the bit
        var exit = guest.Vcpu.Run();
        Assert.True(exit.MemoryFaultIsUserfault, exit.ToString());
        Assert.Equal(DataGpa, exit.MemoryFaultGpa);
        bitmap.Clear(0);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
    }

    [ConformanceCase(Patch05 + " __kvm_mmu_faultin_pfn: kvm_do_userfault runs before __kvm_faultin_pfn, so a write to a READONLY slot's userfault " +
                     "page exits with USERFAULT instead of KVM_EXIT_MMIO; once cleared the write is MMIO", Profile = EmulatedProfile.X86Userfault)]
    public static void readonly_slot_userfaults_before_mmio(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        if (vm.CheckExtension(KvmCaps.KVM_CAP_READONLY_MEM) == 0) Skip("KVM_CAP_READONLY_MEM = 0");
        using var data = vm.AllocateMemory(PageBytes);
        using var slot = vm.AddMemorySlot(DataSlot, DataGpa, data, MemorySlotFlags.ReadOnly);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            a.mov(__byte_ptr[HostMemoryGuest.Offset(DataGpa)], 0x5A);
            a.hlt();
        });
        using var bitmap = UserfaultBitmap.Create(1, allSet: true);
        slot.EnableUserfault(bitmap);
        var exit = guest.Vcpu.Run();
        Assert.True(exit.MemoryFaultIsUserfault, exit.ToString());
        Assert.Equal(KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT, exit.MemoryFaultFlags);
        bitmap.Clear(0);
        exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.True(exit.MmioIsWrite);
        Assert.Equal(DataGpa, exit.MmioAddress);
    }

    [ConformanceCase(Patch05 + ": KVM_PRE_FAULT_MEMORY goes through kvm_mmu_do_page_fault too — a page whose bit is set is not mapped (EFAULT, " +
                     "the memory fault exit filled with USERFAULT); a clear page is", Profile = EmulatedProfile.X86Userfault)]
    public static void pre_fault_stops_at_a_userfault_page(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        if (vm.CheckExtension(KvmCaps.KVM_CAP_PRE_FAULT_MEMORY) == 0) Skip("KVM_CAP_PRE_FAULT_MEMORY = 0 (shadow paging)");
        using var data = vm.AllocateMemory(Pages * PageBytes);
        using var slot = vm.AddMemorySlot(DataSlot, DataGpa, data);
        using var guest = HostMemoryGuest.Create(vm, a => a.hlt());
        using var bitmap = UserfaultBitmap.Create(Pages);
        bitmap.Set(2);
        slot.EnableUserfault(bitmap);
        long Prefault(ulong gpa, ulong size, out kvm_pre_fault_memory back)
        {
            back = new kvm_pre_fault_memory { gpa = gpa, size = size };
            return ctx.Kernel.Ioctl(guest.Vcpu.Handle, KvmIoctls.KVM_PRE_FAULT_MEMORY, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref back, 1)));
        }
        // Pages 0 and 1 map, page 2 stops the loop: "Return success if at least one page was mapped successfully."
        Assert.Equal(0, Prefault(DataGpa, Pages * PageBytes, out var range));
        Assert.Equal(DataGpa + 2 * PageBytes, range.gpa);
        Assert.Equal((Pages - 2) * PageBytes, range.size);
        // Starting at the userfault page nothing maps: EFAULT, with the exit filled as for KVM_RUN.
        AssertErrno(Errno.EFAULT, Prefault(DataGpa + 2 * PageBytes, PageBytes, out _), "pre-faulting a userfault page");
        var exit = guest.Vcpu.LastExit;
        Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, exit.Reason);
        Assert.Equal(KvmConstants.KVM_MEMORY_EXIT_FLAG_USERFAULT, exit.MemoryFaultFlags);
        Assert.Equal(DataGpa + 2 * PageBytes, exit.MemoryFaultGpa);
        bitmap.Clear(2);
        Assert.Equal(0UL, guest.Vcpu.PreFaultMemory(DataGpa + 2 * PageBytes, PageBytes));
    }

    [ConformanceCase(Patch04 + " / " + Patch05 + ": KVM_MEM_USERFAULT | KVM_MEM_LOG_DIRTY_PAGES — the userfault check comes before the page is " +
                     "mapped writable, so a faulting write is not logged; once resolved it is", Profile = EmulatedProfile.X86Userfault)]
    public static void dirty_logging_sees_only_resolved_writes(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var data = vm.AllocateMemory(Pages * PageBytes);
        using var slot = vm.AddMemorySlot(DataSlot, DataGpa, data, MemorySlotFlags.LogDirtyPages);
        using var guest = TouchEveryPage(vm);
        using var bitmap = UserfaultBitmap.Create(Pages);
        bitmap.Set(5);
        slot.EnableUserfault(bitmap);
        var exit = guest.Vcpu.Run();
        Assert.True(exit.MemoryFaultIsUserfault, exit.ToString());
        Assert.Equal(DataGpa + 5 * PageBytes, exit.MemoryFaultGpa);
        Assert.Equal(0b1_1111UL, slot.GetDirtyLog().Words[0]); // pages 0–4 were written; page 5 was not reached
        bitmap.Clear(5);
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, guest.Vcpu.Run().Reason);
        Assert.Equal(0b1110_0000UL, slot.GetDirtyLog().Words[0]);
    }
}
