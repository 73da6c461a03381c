// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The arm64 dirty ring (KVM_CAP_DIRTY_LOG_RING_ACQ_REL) with and without KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, as 6.18
/// has it. Without the bitmap capability kvm_prepare_memory_region gives a KVM_MEM_LOG_DIRTY_PAGES slot no dirty bitmap
/// (kvm_use_dirty_bitmap), so arch/arm64/kvm/mmu.c memslot_is_logging is false: user_mem_abort neither forces PTEs nor
/// maps read faults read-only, and "if (writable &amp;&amp; !ret) mark_page_dirty_in_slot" pushes a read fault that
/// mapped a writable host page; a THP block a read mapped takes no fault for stores to its other pages, which reach no
/// ring. With the bitmap the slot logs: 4 KiB leaves, read faults read-only, each page's first store pushed. Turning
/// logging on (kvm_arch_commit_memory_region → kvm_mmu_wp_memory_region) and KVM_RESET_DIRTY_RINGS
/// (kvm_reset_dirty_gfn → kvm_arch_mmu_enable_log_dirty_pt_masked) write-protect in both cases. Emulator only: the
/// real kernel here is x86. The MMU stays off, so VA = IPA.
/// </summary>
public sealed class Arm64DirtyRingTests
{
    private const ulong K4 = 0x1000, M2 = 2UL << 20, Base = 0x4000_0000, Report = 0x9000_0000;

    /// <summary>Four addresses in the second 2 MiB of the data slot (one THP block), on different pages (D's between A's and B's).</summary>
    private const ulong A = Base + M2 + 0x3008, B = Base + M2 + 0x5008, C = Base + M2 + 0x7008, D = Base + M2 + 0x4008;

    /// <summary>(as_id &lt;&lt; 16) | id of the data slot.</summary>
    private const uint DataSlotId = 1;

    private enum Op { Load, Store }

    /// <summary>
    /// A VM with a dirty ring (and the bitmap capability when asked) before any memslot, the guest program in slot 0 and
    /// a 2 × 2 MiB data slot 1 at <see cref="Base"/>, 2 MiB-aligned like its GPA, over host memory madvised
    /// MADV_HUGEPAGE (thp: the emulated host gives it PMD-mapped THPs) or MADV_NOHUGEPAGE.
    /// </summary>
    private sealed class RingVm : IDisposable
    {
        public RingVm(Action<A64Assembler> program, bool withBitmap, bool thp = false,
            MemorySlotFlags flags = MemorySlotFlags.LogDirtyPages, ulong dataBytes = 2 * M2)
        {
            Kernel = new EmulatedKernel(EmulatorConfig.Arm64());
            Kvm = Kvm.Open(Kernel);
            Vm = Kvm.CreateVm();
            // arm64 offers the acquire/release ring only (KVM_CAP_DIRTY_LOG_RING is 0): 256 entries, soft limit 192.
            Vm.EnableDirtyRing(4096);
            // kvm_vm_ioctl_enable_cap_generic KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP: a ring first, no memslot yet.
            if (withBitmap) Vm.EnableCapability(KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP);
            Code = Vm.AllocateMemory(Arm64Guest.Size);
            Code.Write(Arm64Guest.CodeGpa, Arm64Guest.Assemble(program));
            // VBAR_EL1 resets to 0: an exception at EL1 ends the run with a "fail" ucall instead of spinning.
            Code.Write(0x200, Arm64Guest.Assemble(a => Arm64Guest.Ucall(a, Arm64Guest.UcallFail)));
            CodeSlot = Vm.AddMemorySlot(0, 0, Code);
            Data = Vm.AllocateMemory(dataBytes + 2 * M2);
            ulong address = (ulong)Data.Address;
            Offset = ((address + M2 - 1) & ~(M2 - 1)) - address;
            Assert.Equal(0, Kernel.Madvise((nint)(address + Offset), dataBytes, thp ? LinuxConstants.MADV_HUGEPAGE : 15));
            DataSlot = Vm.AddMemorySlot(1, Base, Data, Offset, dataBytes, flags);
            Vcpu = Vm.CreateVcpu(0);
            var init = Vm.PreferredTarget();
            init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2;
            Vcpu.Init(init);
            Vcpu.SetPc(Arm64Guest.CodeGpa);
        }

        public EmulatedKernel Kernel { get; }
        public Kvm Kvm { get; }
        public Vm Vm { get; }
        public AnonymousMemory Code { get; }
        public MemorySlot CodeSlot { get; }
        public AnonymousMemory Data { get; }
        public ulong Offset { get; }
        public MemorySlot DataSlot { get; }
        public KvmSharp.Vcpu Vcpu { get; }

        public DirtyRing Ring => Vcpu.DirtyRing;

        /// <summary>The host writes the page of <paramref name="gpa"/> (its PTE becomes present and writable).</summary>
        public void HostWrites(ulong gpa, ulong value) => Data.Write(Offset + (gpa - Base), value);

        public ulong HostReads(ulong gpa) => Data.Read<ulong>(Offset + (gpa - Base));

        /// <summary>Runs the next op; it must end with its report (op number <paramref name="n"/>).</summary>
        public void Step(ulong n)
        {
            var exit = Vcpu.RunBounded();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioAddress == Report,
                $"{exit.ToString()} ESR_EL1 0x{Vcpu.GetOneReg(KvmArm64SysRegs.ESR_EL1):X} ELR_EL1 0x{Vcpu.GetOneReg(KvmArm64Regs.ElrEl1):X}");
            Assert.Equal(n, BitConverter.ToUInt64(exit.MmioData));
        }

        /// <summary>The shift of the leaf mapping <paramref name="gpa"/>, or 0 when nothing maps it.</summary>
        public int LeafShift(ulong gpa)
        {
            long r = GuestMappingInspection.LastFault(Kernel, Vm.Handle, gpa, out var m);
            if (r == -(long)Errno.ENOENT) return 0;
            Assert.Equal(0, r);
            return m.PageShift;
        }

        public void Dispose()
        {
            Vcpu.Dispose();
            DataSlot.Dispose();
            Data.Dispose();
            CodeSlot.Dispose();
            Code.Dispose();
            Vm.Dispose();
            Kvm.Dispose();
            Kernel.Dispose();
        }
    }

    /// <summary>
    /// Each (op, address register: 0 holds <see cref="A"/>, 5 <see cref="B"/>, 6 <see cref="C"/>, 7 <see cref="D"/>), then STR of the op's
    /// number to Report (an MMIO exit per op); then a spin. Loads go to X1, stores write 0x5A5A.
    /// </summary>
    private static Action<A64Assembler> Program(params (Op Op, int Reg)[] ops) => a =>
    {
        a.MovImm(X(0), A);
        a.MovImm(X(5), B);
        a.MovImm(X(6), C);
        a.MovImm(X(7), D);
        a.MovImm(X(2), Report);
        a.MovImm(X(3), 0x5A5A);
        for (int i = 0; i < ops.Length; i++)
        {
            if (ops[i].Op == Op.Load) a.Ldr(X(1), X(ops[i].Reg));
            else a.Str(X(3), X(ops[i].Reg));
            a.MovImm(X(9), (ulong)i + 1);
            a.Str(X(9), X(2));
        }
        var spin = a.CreateLabel();
        a.Bind(spin);
        a.B(spin);
    };

    private static ulong PageOf(ulong gpa) => (gpa - Base) / K4;

    private static DirtyRingEntry Entry(ulong gpa) => new(DataSlotId, PageOf(gpa));

    [Fact]
    public void Without_the_bitmap_loads_alone_push_their_pages()
    {
        using var s = new RingVm(Program((Op.Load, 0), (Op.Load, 5), (Op.Load, 0), (Op.Store, 0)), withBitmap: false);
        s.HostWrites(A, 0x1111);
        s.HostWrites(B, 0x2222);
        Assert.Throws<KvmException>(() => s.DataSlot.GetDirtyLog()); // no bitmap: KVM_GET_DIRTY_LOG is ENXIO
        s.Step(1);
        Assert.Equal(0x1111UL, s.Vcpu.GetOneReg(KvmArm64Regs.X(1)));
        // user_mem_abort: not logging, so the read fault maps the (writable) host page writable and marks it.
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        Assert.Equal(12, s.LeafShift(A));
        s.Step(2);
        Assert.Equal([Entry(B)], s.Ring.HarvestAll());
        // A's leaf is present (no fault) and writable: neither the load again nor a store reaches the ring.
        s.Step(3);
        s.Step(4);
        Assert.Equal(0, s.Ring.Pending);
        Assert.Equal(0x5A5AUL, s.HostReads(A));
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void With_the_bitmap_loads_push_nothing_and_the_first_store_pushes_once_until_a_reset()
    {
        using var s = new RingVm(Program((Op.Load, 0), (Op.Load, 5), (Op.Store, 0), (Op.Store, 0), (Op.Store, 0)), withBitmap: true);
        s.HostWrites(A, 0x1111);
        s.HostWrites(B, 0x2222);
        s.Step(1);
        s.Step(2);
        // memslot_is_logging (a dirty bitmap): "else if (logging_active && !write_fault) writable = false" — no mark.
        Assert.Equal(0, s.Ring.Pending);
        Assert.Equal(12, s.LeafShift(A));
        // The store's permission fault maps the page writable and marks it: with a running vCPU, a push (not the bitmap).
        s.Step(3);
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        Assert.Equal(0UL, s.DataSlot.GetDirtyLog().Count);
        s.Step(4);
        Assert.Equal(0, s.Ring.Pending);
        // KVM_RESET_DIRTY_RINGS → kvm_arch_mmu_enable_log_dirty_pt_masked: write-protected again, pushed again.
        Assert.Equal(1, s.Vm.ResetDirtyRings());
        s.Step(5);
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void Without_the_bitmap_a_load_maps_a_thp_block_and_stores_to_its_other_pages_reach_no_ring()
    {
        using var s = new RingVm(Program((Op.Load, 0), (Op.Store, 5), (Op.Store, 6)), withBitmap: false, thp: true);
        s.HostWrites(A, 0x1111);
        s.Step(1);
        // Not logging: no force_pte, transparent_hugepage_adjust gives PMD_SIZE; the block is writable, A is pushed.
        Assert.Equal(21, s.LeafShift(A));
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        s.Step(2);
        s.Step(3);
        Assert.Equal(0, s.Ring.Pending);
        Assert.Equal(0x5A5AUL, s.HostReads(B));
        Assert.Equal(0x5A5AUL, s.HostReads(C));
    }

    [Fact]
    public void With_the_bitmap_a_thp_slot_maps_4k_and_a_store_to_another_page_is_pushed()
    {
        using var s = new RingVm(Program((Op.Load, 0), (Op.Store, 5)), withBitmap: true, thp: true);
        s.HostWrites(A, 0x1111);
        s.Step(1);
        // Logging: "force_pte = true; vma_shift = PAGE_SHIFT", read-only.
        Assert.Equal(12, s.LeafShift(A));
        Assert.Equal(0, s.LeafShift(B));
        Assert.Equal(0, s.Ring.Pending);
        s.Step(2);
        Assert.Equal(12, s.LeafShift(B));
        Assert.Equal([Entry(B)], s.Ring.HarvestAll());
    }

    [Fact]
    public void Without_the_bitmap_a_load_of_a_page_the_host_never_wrote_maps_it_read_only_and_the_store_is_pushed()
    {
        using var s = new RingVm(Program((Op.Load, 6), (Op.Store, 6), (Op.Store, 6)), withBitmap: false);
        s.Step(1);
        // hva_to_pfn: the read maps the zero page, GUP-fast with FOLL_WRITE fails on it: writable = false, no mark.
        Assert.Equal(0UL, s.Vcpu.GetOneReg(KvmArm64Regs.X(1)));
        Assert.Equal(0, s.Ring.Pending);
        // The store's permission fault (FOLL_WRITE breaks the zero page) maps it writable and pushes it, once.
        s.Step(2);
        s.Step(3);
        Assert.Equal([Entry(C)], s.Ring.HarvestAll());
        Assert.Equal(0x5A5AUL, s.HostReads(C));
    }

    [Fact]
    public void Without_the_bitmap_a_reset_write_protects_the_whole_block_and_the_next_store_anywhere_in_it_is_pushed()
    {
        using var s = new RingVm(Program((Op.Load, 0), (Op.Store, 5), (Op.Store, 0), (Op.Load, 6)), withBitmap: false, thp: true);
        s.HostWrites(A, 0x1111);
        s.Step(1);
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        // kvm_reset_dirty_gfn has no bitmap check: kvm_stage2_wp_range over A's page write-protects the block.
        Assert.Equal(1, s.Vm.ResetDirtyRings());
        // A store to another page of the block: a permission fault with fault_granule PMD_SIZE relaxes the block
        // (vma_pagesize = fault_granule) and marks the faulting page.
        s.Step(2);
        Assert.Equal(21, s.LeafShift(B));
        Assert.Equal([Entry(B)], s.Ring.HarvestAll());
        // The block is writable again: A's store takes no fault; a load never does.
        s.Step(3);
        s.Step(4);
        Assert.Equal(0, s.Ring.Pending);
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void A_reset_write_protects_the_span_of_its_batch_so_a_page_between_is_pushed_again()
    {
        using var s = new RingVm(Program((Op.Load, 0), (Op.Load, 5), (Op.Load, 7), (Op.Store, 7)), withBitmap: false);
        s.HostWrites(A, 0x1111);
        s.HostWrites(B, 0x2222);
        s.HostWrites(D, 0x4444);
        s.Step(1);
        s.Step(2);
        s.Step(3);
        // Collect A and B only: the reset frees them and stops at D's entry (not collected).
        var two = new DirtyRingEntry[2];
        Assert.Equal(2, s.Ring.Harvest(two));
        Assert.Equal([Entry(A), Entry(B)], two);
        Assert.Equal(2, s.Vm.ResetDirtyRings());
        // One batch (same slot, within 64 pages): kvm_arch_mmu_enable_log_dirty_pt_masked write-protects from
        // "base_gfn + __ffs(mask)" to "base_gfn + __fls(mask) + 1" — D's page between them too, so D's store faults and
        // is pushed a second time.
        s.Step(4);
        Assert.Equal([Entry(D), Entry(D)], s.Ring.HarvestAll());
    }

    [Fact]
    public void Without_the_bitmap_turning_logging_on_write_protects_a_page_stored_to_before()
    {
        using var s = new RingVm(Program((Op.Store, 0), (Op.Load, 0), (Op.Store, 0), (Op.Load, 5)), withBitmap: false,
            flags: MemorySlotFlags.None);
        s.HostWrites(B, 0x2222);
        s.Step(1);
        Assert.Equal(0, s.Ring.Pending); // not dirty-tracked yet
        // kvm_arch_commit_memory_region: "log_dirty_pages = new && new->flags & KVM_MEM_LOG_DIRTY_PAGES" — no
        // dirty_bitmap needed — then kvm_mmu_wp_memory_region: the leaf stays, read-only.
        s.DataSlot.SetDirtyLogging(true);
        s.Step(2);
        Assert.Equal(0, s.Ring.Pending);
        s.Step(3);
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        // A page not mapped before: its load is a translation fault, mapped writable and pushed.
        s.Step(4);
        Assert.Equal([Entry(B)], s.Ring.HarvestAll());
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void Without_the_bitmap_a_kernel_write_is_pushed_every_time_and_maps_nothing_so_the_guest_load_is_pushed_too()
    {
        // PV_TIME_ST → kvm_init_stolen_time → kvm_write_guest_lock → __kvm_write_guest_page: a copy through the
        // userspace address, then "mark_page_dirty_in_slot(kvm, memslot, gfn)" each time (the running vCPU's ring);
        // stage 2 is not involved, so the guest's own load of the page still takes a translation fault, pushed again.
        const ulong Steal = A & ~(K4 - 1);
        using var s = new RingVm(a =>
        {
            a.MovImm(X(12), Report); // the HVC returns x0–x3 (smccc_set_retval)
            for (ulong i = 1; i <= 2; i++)
            {
                a.MovImm(X(0), Arm64PvTime.PvTimeSt);
                a.Hvc();
                a.MovImm(X(9), i);
                a.Str(X(9), X(12));
            }
            a.MovImm(X(7), A);
            a.Ldr(X(1), X(7));
            a.MovImm(X(9), 3);
            a.Str(X(9), X(12));
            var spin = a.CreateLabel();
            a.Bind(spin);
            a.B(spin);
        }, withBitmap: false);
        s.HostWrites(A, 0x1111);
        s.Vcpu.SetStealTimeIpa(Steal);
        s.Step(1);
        Assert.Equal(Steal, s.Vcpu.GetOneReg(KvmArm64Regs.X(0)));
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        Assert.Equal(0, s.LeafShift(A));
        s.Step(2);
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        s.Step(3);
        Assert.Equal([Entry(A)], s.Ring.HarvestAll());
        Assert.Equal(12, s.LeafShift(A));
    }

    [Fact]
    public void Without_the_bitmap_loads_fill_the_ring_and_the_vcpu_exits_dirty_ring_full()
    {
        // 200 loads of distinct pages the host wrote: each read fault is pushed; at the 192nd entry (256 entries, 64
        // reserved) kvm_dirty_ring_push raises KVM_REQ_DIRTY_RING_SOFT_FULL, and arm.c check_vcpu_requests
        // ("if (kvm_dirty_ring_check_request(vcpu)) return 0;") exits with KVM_EXIT_DIRTY_RING_FULL before the next entry.
        const int Pages = 200;
        using var s = new RingVm(a =>
        {
            var loop = a.CreateLabel();
            a.MovImm(X(0), Base);
            a.MovImm(X(4), Pages);
            a.MovImm(X(2), Report);
            a.Bind(loop);
            a.Ldr(X(1), X(0));
            a.AddImm(X(0), X(0), 1, lsl12: true);
            a.SubsImm(X(4), X(4), 1);
            a.Cbnz(X(4), loop);
            a.MovImm(X(9), 1);
            a.Str(X(9), X(2));
            var spin = a.CreateLabel();
            a.Bind(spin);
            a.B(spin);
        }, withBitmap: false);
        for (ulong i = 0; i < Pages; i++) s.HostWrites(Base + i * K4, i);
        var exit = s.Vcpu.RunBounded();
        Assert.True(exit.IsDirtyRingFull, exit.ToString());
        Assert.Equal(192, s.Ring.Pending);
        // The exit comes after the 192nd page's load (hardware retries it, the emulator completed it), before SUBS.
        Assert.Equal((ulong)Pages - 191, s.Vcpu.GetOneReg(KvmArm64Regs.X(4)));
        // Harvest and reset: the vCPU runs on to the end (the remaining 8 pages pushed).
        Assert.Equal(192, s.Ring.HarvestAll().Length);
        Assert.Equal(192, s.Vm.ResetDirtyRings());
        s.Step(1);
        Assert.Equal(Pages - 192, s.Ring.HarvestAll().Length);
    }
}
