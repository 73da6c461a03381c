// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The arm64 stage-2 page cache (Arm64/Stage2Access.cs, Mmu/GuestPhysicalMemory.Stage2.cs): once a guest access
/// resolved a page, later accesses copy through the kept mapping until kvm->mmu_invalidate_seq moves. Each test lets the
/// guest use a page at least twice (so the page is cached), changes what the fault path would decide, and checks the
/// next access sees the change exactly as an uncached access would (6.18 arch/arm64/kvm/mmu.c kvm_handle_guest_abort →
/// gmem_abort / user_mem_abort; the zaps behind each change are kvm_mmu_invalidate_begin/end and
/// kvm_arch_flush_shadow_memslot). Emulator only: the real kernel here is x86.
/// </summary>
public sealed class Arm64MemoryViewTests
{
    private const ulong Base = 0x4000_0000, Report = 0x9000_0000, Offset = 0x10;

    private static readonly ulong Page = (ulong)Environment.SystemPageSize;

    /// <summary>loop: LDR x1, [x0]; STR x1, [Report] (an MMIO exit carrying the value); B loop.</summary>
    private static Arm64TestVm Reader(EmulatorConfig? config = null) => new(a =>
    {
        var loop = a.CreateLabel();
        a.MovImm(X(2), Report);
        a.Bind(loop);
        a.Ldr(X(1), X(0));
        a.Str(X(1), X(2));
        a.B(loop);
    }, config);

    /// <summary>loop: x3 += 1; STR x3, [x0]; STR x3, [Report]; B loop.</summary>
    private static Arm64TestVm Writer(EmulatorConfig? config = null) => new(a =>
    {
        var loop = a.CreateLabel();
        a.MovImm(X(2), Report);
        a.MovImm(X(3), 0x100);
        a.Bind(loop);
        a.AddImm(X(3), X(3), 1);
        a.Str(X(3), X(0));
        a.Str(X(3), X(2));
        a.B(loop);
    }, config);

    private static KvmSharp.Vcpu Start(Arm64TestVm s, ulong gpa)
    {
        var vcpu = s.AddVcpu();
        vcpu.SetX(0, gpa);
        return vcpu;
    }

    /// <summary>One loop iteration: the value the guest reported (its load, or its store).</summary>
    private static ulong Next(KvmSharp.Vcpu vcpu)
    {
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal((Report, true), (exit.MmioAddress, exit.MmioIsWrite));
        return BitConverter.ToUInt64(exit.MmioData);
    }

    [Fact]
    public void A_host_write_through_its_mapping_is_seen_by_the_next_guest_load()
    {
        using var s = Reader();
        using var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem);
        using var view = gmem.Map();
        view.Write<ulong>(Offset, 0x1111);
        var vcpu = Start(s, Base + Offset);
        Assert.Equal(0x1111UL, Next(vcpu));
        Assert.Equal(0x1111UL, Next(vcpu));
        view.Write<ulong>(Offset, 0x2222);
        Assert.Equal(0x2222UL, Next(vcpu));
        // Anonymous memory, used directly: the same.
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var anon = s.Vm.AddMemorySlot(2, Base + 0x10_0000, memory);
        vcpu.SetX(0, Base + 0x10_0000 + Offset);
        memory.Write<ulong>(Offset, 0x3333);
        Assert.Equal(0x3333UL, Next(vcpu));
        memory.Write<ulong>(Offset, 0x4444);
        Assert.Equal(0x4444UL, Next(vcpu));
    }

    [Fact]
    public void Guest_stores_are_seen_through_the_host_mapping()
    {
        using var s = Writer();
        using var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem);
        using var view = gmem.Map();
        var vcpu = Start(s, Base + Offset);
        for (ulong expected = 0x101; expected < 0x105; expected++)
        {
            Assert.Equal(expected, Next(vcpu));
            Assert.Equal(expected, view.Read<ulong>(Offset));
        }
    }

    [Fact]
    public void A_punched_page_reads_zero_and_faults_in_again()
    {
        using var s = Reader();
        using var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem);
        using var view = gmem.Map();
        view.Write<ulong>(Offset, 0x5555);
        var vcpu = Start(s, Base + Offset);
        Assert.Equal(0x5555UL, Next(vcpu));
        Assert.Equal(0x5555UL, Next(vcpu));
        // kvm_gmem_punch_hole → kvm_gmem_invalidate_begin: the stage-2 leaf goes; the next access is a new gmem_abort,
        // whose kvm_gmem_get_pfn allocates a zeroed folio and installs the leaf again.
        gmem.PunchHole(0, (long)Page);
        Assert.Equal(-(long)Errno.ENOENT, GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, Base, out _));
        Assert.Equal(0UL, Next(vcpu));
        Assert.Equal(0, GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, Base, out var m));
        Assert.Equal(Base, m.Gpa);
    }

    [Fact]
    public void A_deleted_memslot_makes_the_next_load_an_mmio_exit()
    {
        using var s = Reader();
        using var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        var slot = s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem);
        var vcpu = Start(s, Base + Offset);
        Assert.Equal(0UL, Next(vcpu));
        Assert.Equal(0UL, Next(vcpu));
        slot.Dispose(); // KVM_MR_DELETE: kvm_arch_flush_shadow_memslot
        var exit = vcpu.RunBounded();
        // No memslot: io_mem_abort, a read of 8 bytes at the IPA.
        Assert.Equal((KvmExitReason.KVM_EXIT_MMIO, Base + Offset, false), (exit.Reason, exit.MmioAddress, exit.MmioIsWrite));
    }

    [Fact]
    public void A_released_guest_memfd_makes_the_next_load_fail_with_efault()
    {
        using var s = Reader();
        var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem, mapForUserspace: false);
        var vcpu = Start(s, Base + Offset);
        Assert.Equal(0UL, Next(vcpu));
        Assert.Equal(0UL, Next(vcpu));
        gmem.Dispose(); // the last reference: kvm_gmem_release unbinds the slot
        var exit = vcpu.RunBounded();
        // gmem_abort: kvm_gmem_get_pfn → -EFAULT → kvm_prepare_memory_fault_exit(fault_ipa, PAGE_SIZE, …).
        Assert.Equal((KvmExitReason.KVM_EXIT_MEMORY_FAULT, Base), (exit.Reason, exit.MemoryFaultGpa));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_userfault_bit_set_after_cached_loads_exits_at_the_next_load(bool gmemSlot)
    {
        using var s = Reader(EmulatorConfig.Arm64() with { KvmUserfault = true });
        using var gmem = s.Vm.CreateGuestMemfd(2 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var bitmap = UserfaultBitmap.ForSlotSize(2 * Page);
        using var slot = gmemSlot
            ? s.Vm.AddGuestMemfdSlot(1, Base, 2 * Page, gmem, userfault: bitmap)
            : s.Vm.AddMemorySlot(1, Base, memory);
        if (!gmemSlot) slot.EnableUserfault(bitmap);
        var vcpu = Start(s, Base + Offset);
        Assert.Equal(0UL, Next(vcpu));
        Assert.Equal(0UL, Next(vcpu));
        // Setting a bit zaps nothing: the next fault consults the bitmap (kvm_do_userfault), so a page of a userfault
        // slot must reach the fault path at every access.
        bitmap.Set(0);
        var exit = vcpu.RunBounded();
        Assert.True(exit.MemoryFaultIsUserfault, $"exit {exit.Reason}");
        Assert.Equal(Base, exit.MemoryFaultGpa);
        bitmap.Clear(0);
        Assert.Equal(0UL, Next(vcpu));
    }

    [Fact]
    public void Turning_userfault_on_after_cached_loads_exits_at_the_next_load()
    {
        using var s = Reader(EmulatorConfig.Arm64() with { KvmUserfault = true });
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory);
        var vcpu = Start(s, Base + Offset);
        Assert.Equal(0UL, Next(vcpu));
        Assert.Equal(0UL, Next(vcpu));
        using var bitmap = UserfaultBitmap.ForSlotSize(2 * Page, allSet: true);
        slot.EnableUserfault(bitmap); // [PATCH v3 04/15]: enabling KVM_MEM_USERFAULT zaps the slot's mappings
        Assert.True(vcpu.RunBounded().MemoryFaultIsUserfault);
    }

    [Fact]
    public void A_store_to_a_read_only_slot_after_cached_loads_is_an_mmio_exit()
    {
        using var s = new Arm64TestVm(a =>
        {
            a.MovImm(X(2), Report);
            a.Ldr(X(1), X(0));
            a.Str(X(1), X(2));
            a.Ldr(X(1), X(0));
            a.Str(X(1), X(2));
            a.MovImm(X(3), 0x77);
            a.Str(X(3), X(0));
            var stop = a.CreateLabel(); // a store that did not exit: report it, then stay here
            a.Bind(stop);
            a.Str(X(3), X(2));
            a.B(stop);
        });
        using var memory = s.Vm.AllocateMemory(2 * Page);
        memory.Write<ulong>(Offset, 0x66);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.ReadOnly);
        var vcpu = Start(s, Base + Offset);
        Assert.Equal(0x66UL, Next(vcpu));
        Assert.Equal(0x66UL, Next(vcpu));
        var exit = vcpu.RunBounded();
        // user_mem_abort is never reached: a write to a READONLY slot is io_mem_abort.
        Assert.Equal((KvmExitReason.KVM_EXIT_MMIO, Base + Offset, true), (exit.Reason, exit.MmioAddress, exit.MmioIsWrite));
        Assert.Equal(0x77UL, BitConverter.ToUInt64(exit.MmioData));
        Assert.Equal(0x66UL, memory.Read<ulong>(Offset));
    }

    [Fact]
    public void Every_store_to_a_dirty_logged_page_is_logged_after_the_log_was_read()
    {
        using var s = Writer();
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.LogDirtyPages);
        var vcpu = Start(s, Base + Offset);
        Assert.Equal(0x101UL, Next(vcpu));
        Assert.True(slot.GetDirtyLog().IsDirty(0));
        Assert.False(slot.GetDirtyLog().IsDirty(0)); // read and cleared
        // user_mem_abort: the logged page is mapped write-protected, so the next store faults and is marked again.
        Assert.Equal(0x102UL, Next(vcpu));
        Assert.True(slot.GetDirtyLog().IsDirty(0));
        Assert.Equal(0x102UL, memory.Read<ulong>(Offset));
    }
}
