// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The emulator's dirty ring where the real kernel here cannot show upstream's behaviour (kvm_pvm emulates real mode and
/// pushes every write: HostDeviations.KvmPvmDirtyRingPushesEveryWrite) or where only the emulator's own state can be
/// looked at (invariants, the soft-full exit's RIP). The rules both kernels show are DirtyRingRules.
/// </summary>
public sealed class DirtyRingTests
{
    private const ulong DataGpa = 0x12000;
    private static ulong Ps => (ulong)Environment.SystemPageSize;

    private sealed class Setup : IDisposable
    {
        public Setup(Action<Iced.Intel.Assembler> program, EmulatorConfig? config = null)
        {
            Kernel = new EmulatedKernel(config ?? EmulatorConfig.LikeThisHost());
            Kvm = Kvm.Open(Kernel);
            Vm = Kvm.CreateVm();
            Vm.EnableDirtyRing(4096);
            Guest = HostMemoryGuest.Create(Vm, program);
            Memory = Vm.AllocateMemory(8 * Ps);
            Slot = Vm.AddMemorySlot(1, DataGpa, Memory, MemorySlotFlags.LogDirtyPages);
        }

        public EmulatedKernel Kernel { get; }
        public Kvm Kvm { get; }
        public Vm Vm { get; }
        public HostMemoryGuest Guest { get; }
        public AnonymousMemory Memory { get; }
        public MemorySlot Slot { get; }

        public void Run()
        {
            Guest.Vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
            var exit = Guest.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        }

        /// <summary>The ring as raw entries, through a mapping of the test's own.</summary>
        public void WithRawRing(Action<Span<kvm_dirty_gfn>> use)
        {
            Assert.Equal(0, MappedRegion.Map(Kernel, Guest.Vcpu.Handle, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
                KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET * (long)Ps, out var region));
            using (region) use(MemoryMarshal.Cast<byte, kvm_dirty_gfn>(region!.GetSpan(0, 4096)));
        }

        public void Dispose()
        {
            Slot.Dispose();
            Memory.Dispose();
            Guest.Dispose();
            Vm.Dispose();
            Kvm.Dispose();
            Kernel.Dispose();
        }
    }

    private static void WritePages(Iced.Intel.Assembler a, params ulong[] pages)
    {
        foreach (ulong page in pages) a.mov(__byte_ptr[HostMemoryGuest.Offset(DataGpa + page * Ps)], 1);
        a.hlt();
    }

    [Fact]
    public void A_page_written_twice_between_resets_is_pushed_once_and_again_after_a_reset()
    {
        using var s = new Setup(a => WritePages(a, 0, 2, 0, 2));
        var ring = s.Guest.Vcpu.DirtyRing;
        s.Run();
        Assert.Equal([new DirtyRingEntry(1, 0), new DirtyRingEntry(1, 2)], ring.HarvestAll());
        s.Run();
        Assert.Empty(ring.HarvestAll());
        Assert.Equal(2, s.Vm.ResetDirtyRings());
        s.Run();
        Assert.Equal(2, ring.HarvestAll().Length);
    }

    [Fact]
    public void A_reset_batch_holding_an_offset_past_the_slot_reprotects_none_of_its_pages()
    {
        // kvm_reset_dirty_gfn: "if (!memslot || (offset + __fls(mask)) >= memslot->npages) return;" — entries of one
        // slot within 64 pages of each other are one batch, so one bad offset (rewritten by userspace) costs the batch.
        using var s = new Setup(a => WritePages(a, 0, 1));
        var ring = s.Guest.Vcpu.DirtyRing;
        s.Run();
        s.WithRawRing(entries =>
        {
            entries[1].offset = 10; // the slot has 8 pages
            entries[0].flags = entries[1].flags = KvmConstants.KVM_DIRTY_GFN_F_RESET;
        });
        Assert.Equal(2, s.Vm.ResetDirtyRings());
        s.Run();
        Assert.Equal(0, ring.Pending); // pages 0 and 1 stayed writable
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void The_soft_full_exit_comes_after_the_write_that_reached_the_limit()
    {
        // 256 entries, soft limit 192: write 192 distinct pages in a loop; the emulator completes the instruction whose
        // write made the 192nd push and exits before the next one (hardware would exit before retrying the write).
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableDirtyRing(4096);
        // mov ax, imm16 (3); mov cx, imm16 (3); mov ds, ax (2); mov byte [0], imm8 (5): the next instruction is at 13.
        const ulong AfterWrite = 13;
        using var guest = HostMemoryGuest.Create(vm, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ax, (ushort)(0x20000 >> 4));
            a.mov(cx, 200);
            a.Label(ref loop);
            a.mov(ds, ax);
            a.mov(__byte_ptr[0], 1);
            a.add(ax, (ushort)(Ps >> 4));
            a.loop(loop);
            a.hlt();
        });
        using var memory = vm.AllocateMemory(200 * Ps);
        using var slot = vm.AddMemorySlot(1, 0x20000, memory, MemorySlotFlags.LogDirtyPages);
        var exit = guest.Vcpu.Run();
        Assert.True(exit.IsDirtyRingFull, exit.ToString());
        var regs = guest.Vcpu.GetRegs();
        Assert.Equal(AfterWrite, regs.rip);
        Assert.Equal(200UL - 191, regs.rcx & 0xffff);
        Assert.Equal(1, memory.Read<byte>(191 * Ps));
        Assert.Equal(192, guest.Vcpu.DirtyRing.Pending);
        Assert.Empty(EmulatorInvariants.Check(kernel));
    }

    [Fact]
    public void Ring_state_keeps_the_invariants_through_slot_changes()
    {
        using var s = new Setup(a => WritePages(a, 0, 3, 7));
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
        s.Run();
        s.Slot.SetDirtyLogging(false);
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
        s.Slot.SetDirtyLogging(true);
        s.Run();
        s.Slot.Move(DataGpa + 0x10000);
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
        s.Guest.Vcpu.DirtyRing.HarvestAll();
        Assert.Equal(6, s.Vm.ResetDirtyRings());
        Assert.Empty(EmulatorInvariants.Check(s.Kernel));
    }

    [Fact]
    public void Garbage_ring_arguments_get_errno_never_an_exception_and_change_nothing()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(kernel);
        using var vm = Raw.CreateVm(kernel, sys);
        var rng = new Random(7);
        for (int i = 0; i < 2000; i++)
        {
            var cap = new kvm_enable_cap
            {
                cap = (uint)rng.Next(3) switch { 0 => KvmCaps.KVM_CAP_DIRTY_LOG_RING, 1 => KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL, _ => KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP },
                flags = (uint)rng.Next(),
            };
            // Never a valid size: not a power of two, or below a page, or above 1 MiB.
            ulong size = rng.Next(3) switch
            {
                0 => (ulong)rng.Next(1, 4096),
                1 => (2UL << 20) << rng.Next(0, 40),
                _ => ((ulong)rng.Next(2, 1 << 20) | 1) << rng.Next(1, 20),
            };
            if (ulong.IsPow2((uint)size) && (uint)size is >= 4096 and <= 1 << 20) size |= 3;
            cap.args[0] = size;
            long rc = kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Raw.Bytes(ref cap));
            Assert.True(rc == -(long)Errno.EINVAL || rc == -(long)Errno.E2BIG, $"size 0x{size:X}: {rc}");
            Assert.Equal(-(long)Errno.EINVAL, kernel.Ioctl(vm, KvmIoctls.KVM_RESET_DIRTY_RINGS, (ulong)rng.NextInt64()));
        }
        // Nothing was enabled by any of them.
        var ok = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_DIRTY_LOG_RING };
        ok.args[0] = 4096;
        Assert.Equal(0, kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Raw.Bytes(ref ok)));
        Assert.Empty(EmulatorInvariants.Check(kernel));
    }

    [Fact]
    public void Arm64_offers_only_the_acquire_release_ring_with_a_bitmap_option()
    {
        // kvm_vm_ioctl_check_extension_generic: arm64 selects HAVE_KVM_DIRTY_RING_ACQ_REL and
        // NEED_KVM_DIRTY_RING_WITH_BITMAP, not the TSO ring; WITH_BITMAP needs a ring first and no memslot yet.
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using var sys = Raw.OpenKvm(kernel);
        using var vm = Raw.CreateVm(kernel, sys);
        Assert.Equal(0, Raw.Cap(kernel, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING));
        Assert.Equal(1 << 20, Raw.Cap(kernel, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL));
        Assert.Equal(1, Raw.Cap(kernel, vm, KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP));
        long Enable(int capNr, ulong arg, uint flags = 0)
        {
            var cap = new kvm_enable_cap { cap = (uint)capNr, flags = flags };
            cap.args[0] = arg;
            return kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Raw.Bytes(ref cap));
        }
        Assert.Equal(-(long)Errno.EINVAL, Enable(KvmCaps.KVM_CAP_DIRTY_LOG_RING, 4096));
        Assert.Equal(-(long)Errno.EINVAL, Enable(KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0));
        Assert.Equal(0, Enable(KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096));
        Assert.Equal(-(long)Errno.EINVAL, Enable(KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0, flags: 1));
        Assert.Equal(0, Enable(KvmCaps.KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0));
        Assert.Empty(EmulatorInvariants.Check(kernel));
    }
}
