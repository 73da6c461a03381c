// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The dirty ring (KVM_CAP_DIRTY_LOG_RING / _ACQ_REL): virt/kvm/kvm_main.c kvm_vm_ioctl_enable_dirty_log_ring,
/// kvm_vm_ioctl_reset_dirty_pages, kvm_vcpu_mmap, mark_page_dirty_in_slot, kvm_get_dirty_log_protect's ENXIO;
/// virt/kvm/dirty_ring.c (push, reset, the soft limit); arch/x86/kvm/x86.c vcpu_enter_guest's
/// KVM_EXIT_DIRTY_RING_FULL. Each rule was probed on Linux 6.18 kvm_pvm in C first. Two things differ there and are
/// named deviations (the emulator is held to upstream): real-mode guest writes are emulated by kvm_pvm, so every write
/// pushes (<see cref="HostDeviations.KvmPvmDirtyRingPushesEveryWrite"/>), and the soft-full exit only comes at the next
/// KVM_RUN (<see cref="HostDeviations.KvmPvmDirtyRingFullExitIsLate"/>).
/// </summary>
public static class DirtyRingRules
{
    private const string KvmMain = "virt/kvm/kvm_main.c";
    private const string Ring = "virt/kvm/dirty_ring.c";
    private const int RingBytes = 4096; // 256 entries, soft limit 192
    private const uint DataSlot = 1;
    private const ulong DataGpa = 0x12000;
    private const ulong DataPages = 8;
    private const uint PlainSlot = 2;
    private const ulong PlainGpa = 0x1A000;
    private const byte Port = 0x10;

    private static ulong Ps => (ulong)PageSize;

    private static long EnableRaw(CaseContext ctx, Vm vm, int cap, ulong size, uint flags = 0)
    {
        var c = new kvm_enable_cap { cap = (uint)cap, flags = flags };
        c.args[0] = size;
        return ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_ENABLE_CAP, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref c, 1)));
    }

    private static long Reset(CaseContext ctx, Vm vm, ulong arg = 0) => ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_RESET_DIRTY_RINGS, arg);

    /// <summary>Skips unless the kernel offers both ring capabilities.</summary>
    private static void RequireRing(Kvm kvm)
    {
        if (kvm.CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING) == 0 || kvm.CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL) == 0)
            Skip("this kernel has no dirty ring (KVM_CAP_DIRTY_LOG_RING or _ACQ_REL is 0)");
    }

    /// <summary>
    /// A VM with a 4 KiB ring, a real-mode guest (<see cref="HostMemoryGuest"/>), an 8-page logging slot at
    /// <see cref="DataGpa"/> and a one-page slot without logging at <see cref="PlainGpa"/>.
    /// </summary>
    private sealed class Setup : IDisposable
    {
        public Setup(CaseContext ctx, Action<Assembler> program, MemorySlotFlags dataFlags = MemorySlotFlags.LogDirtyPages)
        {
            Kvm = ctx.OpenKvm();
            RequireRing(Kvm);
            Vm = Kvm.CreateVm();
            Vm.EnableDirtyRing(RingBytes);
            Guest = HostMemoryGuest.Create(Vm, program);
            Data = Vm.AllocateMemory(DataPages * Ps);
            DataSlotHandle = Vm.AddMemorySlot(DataSlot, DataGpa, Data, dataFlags);
            Plain = Vm.AllocateMemory(Ps);
            PlainSlotHandle = Vm.AddMemorySlot(PlainSlot, PlainGpa, Plain);
        }

        public Kvm Kvm { get; }
        public Vm Vm { get; }
        public HostMemoryGuest Guest { get; }
        public AnonymousMemory Data { get; }
        public MemorySlot DataSlotHandle { get; }
        public AnonymousMemory Plain { get; }
        public MemorySlot PlainSlotHandle { get; }
        public DirtyRing Ring => Guest.Vcpu.DirtyRing;

        /// <summary>Runs to the next OUT to <see cref="Port"/>.</summary>
        public void RunToPort()
        {
            var exit = Guest.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == Port, $"expected KVM_EXIT_IO on port 0x{Port:X}, got {exit.ToString()}");
        }

        public void Dispose()
        {
            PlainSlotHandle.Dispose();
            Plain.Dispose();
            DataSlotHandle.Dispose();
            Data.Dispose();
            Guest.Dispose();
            Vm.Dispose();
            Kvm.Dispose();
        }
    }

    private static void Write(Assembler a, ulong page, byte value, ulong gpaBase = DataGpa) =>
        a.mov(__byte_ptr[HostMemoryGuest.Offset(gpaBase + page * Ps + 8)], value);

    private static DirtyRingEntry At(ulong page) => new(DataSlot, page);

    [ConformanceCase(KvmMain + " kvm_vm_ioctl_check_extension_generic / kvm_vm_ioctl_enable_dirty_log_ring: 1 MiB on /dev/kvm and the VM; the size is a u32 power of two of at least a page (EINVAL), at most 1 MiB (E2BIG), set once (EINVAL); flags ignored; WITH_BITMAP is 0 and EINVAL on x86")]
    public static void dirty_ring_enable_size_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireRing(kvm);
        const long OneMiB = 1 << 20;
        Assert.Equal(OneMiB, kvm.CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING));
        Assert.Equal(OneMiB, kvm.CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL));
        Assert.Equal(0, kvm.CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP));
        using var vm = kvm.CreateVm();
        Assert.Equal(OneMiB, vm.MaxDirtyRingBytes);
        Assert.Equal(0, vm.CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP));
        AssertErrno(Errno.EINVAL, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0), "WITH_BITMAP without a ring");
        foreach (ulong size in new ulong[] { 0, 1000, 1024, 2048, 4095, 1UL << 32 })
            AssertErrno(Errno.EINVAL, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING, size), $"ring of 0x{size:X} bytes");
        foreach (ulong size in new ulong[] { 2 << 20, 4 << 20, 0x8000_0000 })
            AssertErrno(Errno.E2BIG, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL, size), $"ring of 0x{size:X} bytes");
        // A refused call changed nothing: the SDK's own refusal names the rule, then the truncated u32 (4096) with
        // flags = 1 is accepted.
        var ex = AssertErrno(Errno.EINVAL, () => vm.EnableDirtyRing(3000));
        Assert.Contains("power of two", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, vm.DirtyRingBytes);
        Assert.Equal(0, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING, (1UL << 32) | 4096, flags: 1));
        // Once only, whichever cap and size; E2BIG still comes before the "once" check.
        AssertErrno(Errno.EINVAL, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING, 8192), "second ring");
        AssertErrno(Errno.EINVAL, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096), "ACQ_REL after the TSO ring");
        AssertErrno(Errno.E2BIG, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING, 2 << 20), "second ring, too large");
        AssertErrno(Errno.EINVAL, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0), "WITH_BITMAP on x86");
    }

    [ConformanceCase(KvmMain + " kvm_vm_ioctl_enable_dirty_log_ring: EINVAL once kvm->created_vcpus is non-zero, even after the vCPU fd is closed; a KVM_CREATE_VCPU refused by its id check does not count")]
    public static void dirty_ring_enable_before_vcpus_only(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireRing(kvm);
        using (var vm = kvm.CreateVm())
        {
            AssertErrno(Errno.EINVAL, () => vm.CreateVcpu(1 << 20));
            vm.EnableDirtyRing(8192, DirtyRingOrdering.AcquireRelease);
            Assert.Equal(8192, vm.DirtyRingBytes);
            using var vcpu = vm.CreateVcpu();
            Assert.True(vcpu.HasDirtyRing);
            Assert.Equal(512, vcpu.DirtyRing.EntryCount);
            Assert.Equal(0, vcpu.DirtyRing.Pending);
        }
        using (var vm = kvm.CreateVm())
        {
            vm.CreateVcpu().Dispose();
            var ex = AssertErrno(Errno.EINVAL, () => vm.EnableDirtyRing(4096, DirtyRingOrdering.TotalStoreOrder));
            Assert.Equal("KVM_ENABLE_CAP", ex.Operation);
            Assert.Contains("KVM_CAP_DIRTY_LOG_RING", ex.Request, StringComparison.Ordinal);
            AssertErrno(Errno.EINVAL, EnableRaw(ctx, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 3), "a bad size after a vCPU: the size check comes first, same errno");
            // No ring: a new vCPU has none, and KVM_RESET_DIRTY_RINGS is EINVAL.
            using var vcpu = vm.CreateVcpu(1);
            Assert.False(vcpu.HasDirtyRing);
            Assert.Throws<InvalidOperationException>(() => vcpu.DirtyRing);
            var reset = AssertErrno(Errno.EINVAL, () => vm.ResetDirtyRings());
            Assert.Equal("KVM_RESET_DIRTY_RINGS", reset.Operation);
        }
    }

    [ConformanceCase(KvmMain + " kvm_get_dirty_log_protect / kvm_clear_dirty_log_protect: with a ring (no bitmap) ENXIO before the slot checks, after copy_from_user; KVM_RESET_DIRTY_RINGS ignores its argument")]
    public static void dirty_ring_makes_bitmap_ioctls_enxio(CaseContext ctx)
    {
        using var s = new Setup(ctx, a => a.hlt());
        var k = ctx.Kernel;
        var bitmap = new PinnedArray<ulong>(1);
        var log = new kvm_dirty_log { slot = 9999, dirty_bitmap = bitmap.Address };
        AssertErrno(Errno.ENXIO, k.Ioctl(s.Vm.Handle, KvmIoctls.KVM_GET_DIRTY_LOG, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref log, 1))), "GET_DIRTY_LOG slot 9999");
        AssertErrno(Errno.EFAULT, k.Ioctl(s.Vm.Handle, KvmIoctls.KVM_GET_DIRTY_LOG, 8), "GET_DIRTY_LOG struct at address 8");
        var clear = new kvm_clear_dirty_log { slot = 9999, first_page = 3, dirty_bitmap = bitmap.Address };
        AssertErrno(Errno.ENXIO, k.Ioctl(s.Vm.Handle, KvmIoctls.KVM_CLEAR_DIRTY_LOG, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref clear, 1))), "CLEAR_DIRTY_LOG slot 9999 first_page 3");
        AssertErrno(Errno.ENXIO, () => s.DataSlotHandle.GetDirtyLog());
        // Manual protect is still accepted (it only changes the bitmap's protocol).
        s.Vm.EnableManualDirtyLogProtect();
        Assert.Equal(0, s.Vm.ResetDirtyRings());
        Assert.Equal(0, Reset(ctx, s.Vm, 12345));
        GC.KeepAlive(bitmap);
    }

    [ConformanceCase(KvmMain + " kvm_vcpu_mmap: a mapping whose first or last page lies in the ring must be MAP_SHARED and not executable (EINVAL); PROT_EXEC is EPERM anywhere (the anon inode is noexec); pages past the ring, or a mapping around it, are not checked")]
    public static void dirty_ring_mmap_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireRing(kvm);
        using var vm = kvm.CreateVm();
        vm.EnableDirtyRing(8192); // pages 64 and 65
        using var vcpu = vm.CreateVcpu();
        const int R = LinuxConstants.PROT_READ, W = LinuxConstants.PROT_WRITE, X = LinuxConstants.PROT_EXEC;
        const int Shared = LinuxConstants.MAP_SHARED, Private = LinuxConstants.MAP_PRIVATE;
        var cases = new (string What, int Prot, int Flags, ulong Page, ulong Pages, Errno? Expected)[]
        {
            ("shared rw ring", R | W, Shared, 64, 2, null),
            ("shared r ring", R, Shared, 64, 2, null),
            ("shared PROT_NONE ring", 0, Shared, 64, 2, null),
            ("shared rw ring + 1 page", R | W, Shared, 64, 3, null),
            ("private r ring", R, Private, 64, 2, Errno.EINVAL),
            ("private w ring", W, Private, 64, 1, Errno.EINVAL),
            ("private last ring page", R, Private, 65, 1, Errno.EINVAL),
            ("private 63..64", R, Private, 63, 2, Errno.EINVAL),
            ("private 62..63", R, Private, 62, 2, null),
            ("private past the ring", R, Private, 66, 1, null),
            ("private 0..69 around the ring", R, Private, 0, 70, null),
            ("shared rx ring", R | X, Shared, 64, 2, Errno.EPERM),
            ("private rx past the ring", R | X, Private, 66, 1, Errno.EPERM),
            ("shared rx kvm_run", R | X, Shared, 0, 1, Errno.EPERM),
        };
        foreach (var (what, prot, flags, page, pages, expected) in cases)
        {
            long rc = MappedRegion.Map(ctx.Kernel, vcpu.Handle, pages * Ps, prot, flags, (long)(page * Ps), out var region);
            region?.Dispose();
            if (expected is Errno e) AssertErrno(e, rc, what);
            else Assert.True(rc == 0, $"{what}: mmap returned {rc}");
        }
    }

    [ConformanceCase(KvmMain + " mark_page_dirty_in_slot / " + Ring + " kvm_dirty_ring_push: guest writes to a logging slot are pushed in order as (as_id << 16 | id, page offset) with flags DIRTY; reads and slots without logging push nothing; KVM_RESET_DIRTY_RINGS frees the collected entries and returns their count")]
    public static void dirty_ring_guest_writes_are_pushed_in_order(CaseContext ctx)
    {
        using var s = new Setup(ctx, a =>
        {
            Write(a, 0, 1);
            Write(a, 2, 1);
            a.mov(al, __byte_ptr[HostMemoryGuest.Offset(DataGpa + 4 * Ps)]);
            Write(a, 0, 1, PlainGpa);
            Write(a, 1, 1);
            a.@out(Port, al);
        });
        Assert.Equal(256, s.Ring.EntryCount);
        s.RunToPort();
        Assert.Equal(3, s.Ring.Pending);
        // The raw ring, through a mapping of our own: flags DIRTY, slot, offset; the next entry untouched.
        using (var raw = RawRing.Map(ctx, s.Guest.Vcpu, RingBytes))
        {
            Assert.Equal([(1u, DataSlot, 0UL), (1u, DataSlot, 2UL), (1u, DataSlot, 1UL), (0u, 0u, 0UL)], raw.Entries(0, 4));
        }
        Assert.Equal([At(0), At(2), At(1)], s.Ring.HarvestAll());
        Assert.Equal(3u, s.Ring.HarvestIndex);
        Assert.Equal(DataGpa + 2 * Ps, At(2).GuestPhysicalAddress(DataGpa));
        Assert.Empty(s.Ring.HarvestAll());
        using (var raw = RawRing.Map(ctx, s.Guest.Vcpu, RingBytes))
        {
            Assert.Equal([(2u, DataSlot, 0UL), (2u, DataSlot, 2UL), (2u, DataSlot, 1UL)], raw.Entries(0, 3));
            Assert.Equal(3, s.Vm.ResetDirtyRings());
            // kvm_dirty_gfn_set_invalid: flags 0; slot and offset stay.
            Assert.Equal([(0u, DataSlot, 0UL), (0u, DataSlot, 2UL), (0u, DataSlot, 1UL)], raw.Entries(0, 3));
        }
        Assert.Equal(0, s.Vm.ResetDirtyRings());
    }

    [ConformanceCase(Ring + " kvm_dirty_ring_reset / kvm_reset_dirty_gfn: a page is pushed once, then written freely until a reset write-protects it again — collecting alone does not; the next write after the reset is pushed again")]
    public static void dirty_ring_redirty_only_after_reset(CaseContext ctx)
    {
        using var s = new Setup(ctx, a =>
        {
            Write(a, 0, 1);
            Write(a, 2, 1);
            Write(a, 1, 1);
            Write(a, 2, 2); // the same page again
            a.@out(Port, al);
            Write(a, 1, 2); // collected, not reset: still writable
            Write(a, 3, 2);
            a.@out(Port, al);
            Write(a, 1, 3); // reset: write-protected again
            a.@out(Port, al);
        });
        bool everyWrite = HostDeviations.KvmPvmDirtyRingPushesEveryWrite(ctx.Target.IsReal);
        s.RunToPort();
        Assert.Equal(everyWrite ? [At(0), At(2), At(1), At(2)] : [At(0), At(2), At(1)], s.Ring.HarvestAll());
        s.RunToPort();
        Assert.Equal(everyWrite ? [At(1), At(3)] : [At(3)], s.Ring.HarvestAll());
        Assert.Equal(everyWrite ? 6 : 4, s.Vm.ResetDirtyRings());
        s.RunToPort();
        Assert.Equal([At(1)], s.Ring.HarvestAll());
        Assert.Equal(1, s.Vm.ResetDirtyRings());
        Assert.Equal(3, s.Data.Read<byte>(1 * Ps + 8));
    }

    [ConformanceCase(Ring + " kvm_dirty_ring_reset: frees entries from reset_index while their flags have RESET — stopping at the first without, even if later ones have it — and consumes entries KVM never published (no check against dirty_index)")]
    public static void dirty_ring_reset_stops_at_the_first_uncollected_entry(CaseContext ctx)
    {
        using var s = new Setup(ctx, a =>
        {
            Write(a, 0, 1);
            Write(a, 1, 1);
            Write(a, 3, 1);
            a.@out(Port, al);
        });
        s.RunToPort();
        using var raw = RawRing.Map(ctx, s.Guest.Vcpu, RingBytes);
        raw.SetFlags(0, KvmConstants.KVM_DIRTY_GFN_F_RESET);
        raw.SetFlags(2, KvmConstants.KVM_DIRTY_GFN_F_RESET);
        Assert.Equal(1, s.Vm.ResetDirtyRings());
        Assert.Equal([(0u, DataSlot, 0UL), (1u, DataSlot, 1UL), (2u, DataSlot, 3UL)], raw.Entries(0, 3));
        // RESET alone is enough (DIRTY need not be set).
        raw.SetFlags(1, KvmConstants.KVM_DIRTY_GFN_F_RESET);
        Assert.Equal(2, s.Vm.ResetDirtyRings());
        Assert.Equal([(0u, DataSlot, 1UL), (0u, DataSlot, 3UL)], raw.Entries(1, 2));
        // Entries past dirty_index marked RESET are consumed too: the whole ring, once round. (No guest runs after
        // this: reset_index is now ahead of dirty_index, and the next push would find the ring "full".)
        for (int i = 0; i < RingBytes / 16; i++) raw.SetFlags(i, KvmConstants.KVM_DIRTY_GFN_F_RESET);
        Assert.Equal(RingBytes / 16, s.Vm.ResetDirtyRings());
        Assert.Equal(0, s.Vm.ResetDirtyRings());
    }

    [ConformanceCase(KvmMain + " kvm_prepare_memory_region / kvm_reset_dirty_gfn: entries outlive their slot and a reset skips them; a slot that starts logging pushes its next writes; a slot without logging pushes nothing")]
    public static void dirty_ring_entries_outlive_their_slot_and_logging_toggles(CaseContext ctx)
    {
        using var s = new Setup(ctx, a =>
        {
            Write(a, 0, 1);
            Write(a, 5, 1);
            a.@out(Port, al);
        }, dataFlags: MemorySlotFlags.None);
        s.RunToPort();
        Assert.Equal(0, s.Ring.Pending);
        s.DataSlotHandle.SetDirtyLogging(true);
        s.Guest.Vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
        s.RunToPort();
        Assert.Equal(2, s.Ring.Pending);
        s.DataSlotHandle.Dispose(); // deleted: the entries stay, the reset finds no slot and skips them
        Assert.Equal([At(0), At(5)], s.Ring.HarvestAll());
        Assert.Equal(2, s.Vm.ResetDirtyRings());
    }

    [ConformanceCase(KvmMain + " kvm_vm_ioctl_enable_dirty_log_ring: only vCPUs must not exist yet — a logging slot made before the ring keeps working, its writes pushed to the ring and its bitmap ioctls ENXIO")]
    public static void dirty_ring_enabled_after_a_logging_slot(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireRing(kvm);
        using var vm = kvm.CreateVm();
        using var data = vm.AllocateMemory(DataPages * Ps);
        using var slot = vm.AddMemorySlot(DataSlot, DataGpa, data, MemorySlotFlags.LogDirtyPages);
        Assert.Equal(0UL, slot.GetDirtyLog().Count);
        vm.EnableDirtyRing(RingBytes);
        AssertErrno(Errno.ENXIO, () => slot.GetDirtyLog());
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            Write(a, 0, 1);
            Write(a, 2, 1);
            a.@out(Port, al);
        });
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, exit.ToString());
        Assert.Equal([At(0), At(2)], guest.Vcpu.DirtyRing.HarvestAll());
        Assert.Equal(2, vm.ResetDirtyRings());
    }

    [ConformanceCase("arch/x86/kvm/x86.c vcpu_enter_guest → kvm_dirty_ring_check_request: at the soft limit (size - 64 entries) KVM_RUN exits KVM_EXIT_DIRTY_RING_FULL, and again on every KVM_RUN until a reset brings the ring below it; then the guest goes on")]
    public static void dirty_ring_full_exit(CaseContext ctx)
    {
        const ulong BigGpa = 0x20000;
        const int Pages = 200, SoftLimit = RingBytes / 16 - 64;
        using var kvm = ctx.OpenKvm();
        RequireRing(kvm);
        using var vm = kvm.CreateVm();
        vm.EnableDirtyRing(RingBytes);
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ax, (ushort)(BigGpa >> 4));
            a.mov(cx, (ushort)Pages);
            a.Label(ref loop);
            a.mov(ds, ax);
            a.mov(__byte_ptr[0], 1);
            a.add(ax, (ushort)(Ps >> 4));
            a.loop(loop);
            a.@out(Port, al);
            a.hlt();
        });
        using var memory = vm.AllocateMemory(224 * Ps);
        using var slot = vm.AddMemorySlot(3, BigGpa, memory, MemorySlotFlags.LogDirtyPages);
        var vcpu = guest.Vcpu;
        var ring = vcpu.DirtyRing;
        var expected = Enumerable.Range(0, Pages).Select(p => new DirtyRingEntry(3, (ulong)p)).ToArray();
        if (HostDeviations.KvmPvmDirtyRingFullExitIsLate(ctx.Target.IsReal))
        {
            // kvm_pvm: the request is looked at only when KVM_RUN enters the guest again. Usually the whole loop runs
            // (200 entries, past the soft limit of 192) and the exit comes on the next run; a busy host that makes the
            // vCPU re-enter after the limit (an interrupt, a reschedule) gets the exit there, before the loop ends.
            var harvested = new List<DirtyRingEntry>();
            bool exitedEarly = false;
            while (true)
            {
                var exit = vcpu.Run();
                if (!exit.IsDirtyRingFull)
                {
                    Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, exit.ToString());
                    break;
                }
                Assert.True(ring.Pending >= SoftLimit, $"{ring.Pending} entries");
                exitedEarly = true;
                var batch = ring.HarvestAll();
                harvested.AddRange(batch);
                Assert.Equal(batch.Length, vm.ResetDirtyRings());
            }
            if (!exitedEarly)
            {
                Assert.Equal(Pages, ring.Pending);
                Assert.True(vcpu.Run().IsDirtyRingFull);
            }
            int pending = ring.Pending;
            harvested.AddRange(ring.HarvestAll());
            Assert.Equal(expected, harvested);
            Assert.Equal(pending, vm.ResetDirtyRings());
        }
        else
        {
            var exit = vcpu.Run();
            Assert.True(exit.IsDirtyRingFull, exit.ToString());
            Assert.Equal(SoftLimit, ring.Pending);
            ulong rip = vcpu.GetRegs().rip;
            // Not runnable until reset: the same exit, no progress.
            Assert.True(vcpu.Run().IsDirtyRingFull);
            Assert.Equal(rip, vcpu.GetRegs().rip);
            // Collecting alone is not enough.
            Assert.Equal(expected[..SoftLimit], ring.HarvestAll());
            Assert.True(vcpu.Run().IsDirtyRingFull);
            Assert.Equal(SoftLimit, vm.ResetDirtyRings());
            exit = vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, exit.ToString());
            Assert.Equal(expected[SoftLimit..], ring.HarvestAll());
        }
        Assert.Equal(1, memory.Read<byte>((Pages - 1) * Ps));
        Assert.Equal(0, memory.Read<byte>(Pages * Ps));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
    }

    /// <summary>A mapping of a vCPU's ring of the case's own (MAP_SHARED, read/write), to see and set raw flags.</summary>
    private sealed class RawRing : IDisposable
    {
        private readonly MappedRegion _region;

        private RawRing(MappedRegion region) => _region = region;

        public static RawRing Map(CaseContext ctx, Vcpu vcpu, int bytes)
        {
            long rc = MappedRegion.Map(ctx.Kernel, vcpu.Handle, (ulong)bytes, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
                LinuxConstants.MAP_SHARED, KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET * (long)Ps, out var region);
            Assert.True(rc == 0, $"mmap of the dirty ring: {rc}");
            return new RawRing(region!);
        }

        private Span<kvm_dirty_gfn> All => MemoryMarshal.Cast<byte, kvm_dirty_gfn>(_region.GetSpan(0, (int)_region.Length));

        public (uint Flags, uint Slot, ulong Offset)[] Entries(int first, int count) =>
            [.. All.Slice(first, count).ToArray().Select(e => (e.flags, e.slot, e.offset))];

        public void SetFlags(int index, uint flags) => Volatile.Write(ref All[index].flags, flags);

        public void Dispose() => _region.Dispose();
    }
}
