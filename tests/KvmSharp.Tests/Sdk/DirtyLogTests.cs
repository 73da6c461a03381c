// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using KvmSharp.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// What the SDK adds to dirty logging: a typed log, refusals before the kernel is asked, and errors that say what
/// is missing. (The kernel rules, with guests writing pages, are the DirtyLogRules conformance cases.)
/// </summary>
public class DirtyLogTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_fresh_log_is_empty_and_bounds_checked(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(70 * ps);
        using var slot = vm.AddMemorySlot(1, 0x100000, memory, MemorySlotFlags.LogDirtyPages);
        var log = slot.GetDirtyLog();
        Assert.Same(slot, log.Slot);
        Assert.Equal(70UL, log.PageCount);
        Assert.Equal(2, log.Words.Length);
        Assert.Equal(0UL, log.Count);
        Assert.Empty(log.DirtyPages);
        Assert.False(log.IsDirty(69));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.IsDirty(70));
        Assert.Equal(0x100000 + 69 * ps, log.GuestPhysicalAddressOf(69));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.GuestPhysicalAddressOf(70));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Initially_set_logs_count_every_page_and_clear_takes_whole_words_or_the_tail(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableManualDirtyLogProtect(initiallySet: true);
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(70 * ps);
        using var slot = vm.AddMemorySlot(1, 0x100000, memory, MemorySlotFlags.LogDirtyPages);
        Assert.Equal(70UL, slot.GetDirtyLog().Count);
        // A partial word that stops before the end: the kernel's EINVAL, with the slot's size in the message.
        var ex = AssertErrno(Errno.EINVAL, () => slot.ClearDirtyLog(0, 10));
        Assert.Contains("slot has 70 pages", ex.Message, StringComparison.Ordinal);
        slot.ClearDirtyLog(64, 6);
        Assert.Equal(Enumerable.Range(0, 64).Select(i => (ulong)i), slot.GetDirtyLog().DirtyPages);
        slot.ClearDirtyLog(slot.GetDirtyLog());
        Assert.Equal(0UL, slot.GetDirtyLog().Count);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_log_only_clears_its_own_slot_and_a_deleted_slot_has_none(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableManualDirtyLogProtect();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(2 * ps);
        using var a = vm.AddMemorySlot(1, 0x100000, memory, 0, ps, MemorySlotFlags.LogDirtyPages);
        using var b = vm.AddMemorySlot(2, 0x200000, memory, ps, ps, MemorySlotFlags.LogDirtyPages);
        var fromA = a.GetDirtyLog();
        Assert.Throws<ArgumentException>(() => b.ClearDirtyLog(fromA));
        a.Delete();
        Assert.Throws<ObjectDisposedException>(() => a.GetDirtyLog());
        Assert.Equal(0UL, b.GetDirtyLog().Count);
    }

    private const ulong DataGpa = 0x14000;
    private const ulong DataPages = 8;

    /// <summary>
    /// A real-mode guest over an 8-page logging slot at <see cref="DataGpa"/>: its first run writes pages 1, 3 and 6,
    /// its second run page 2, each ending in HLT (the next KVM_RUN continues after it).
    /// </summary>
    private static HostMemoryGuest TwoRunGuest(Vm vm) => HostMemoryGuest.Create(vm, a =>
    {
        ulong ps = (ulong)PageSize;
        foreach (ulong page in new ulong[] { 1, 3, 6 }) a.mov(__byte_ptr[HostMemoryGuest.Offset(DataGpa + page * ps + 8)], (byte)page);
        a.hlt();
        a.mov(__byte_ptr[HostMemoryGuest.Offset(DataGpa + 2 * ps + 8)], (byte)2);
        a.hlt();
        Label spin = a.CreateLabel();
        a.Label(ref spin);
        a.hlt();
        a.jmp(spin);
    });

    private static void RunToHalt(HostMemoryGuest guest)
    {
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"expected KVM_EXIT_HLT, got {exit.ToString()}");
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_reused_log_holds_exactly_the_latest_state(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var guest = TwoRunGuest(vm);
        using var memory = vm.AllocateMemory(DataPages * (ulong)PageSize);
        using var slot = vm.AddMemorySlot(1, DataGpa, memory, MemorySlotFlags.LogDirtyPages);
        var log = slot.AllocateDirtyLog();
        Assert.Same(slot, log.Slot);
        Assert.Equal(DataPages, log.PageCount);
        Assert.Equal(1, log.Words.Length);
        Assert.Empty(log.DirtyPages);

        RunToHalt(guest);
        slot.GetDirtyLog(log);
        Assert.Equal(new ulong[] { 1, 3, 6 }, log.DirtyPages);
        // A snapshot is its own bitmap: refilling the buffer does not touch it, nor it the buffer.
        var snapshot = slot.GetDirtyLog();
        Assert.Empty(snapshot.DirtyPages);
        Assert.Equal(new ulong[] { 1, 3, 6 }, log.DirtyPages);
        // Read again with nothing written: the kernel overwrites every word, so the old bits are gone.
        slot.GetDirtyLog(log);
        Assert.Equal(0UL, log.Count);
        RunToHalt(guest);
        slot.GetDirtyLog(log);
        Assert.Equal(new ulong[] { 2 }, log.DirtyPages);
        Assert.True(log.IsDirty(2));
        Assert.False(log.IsDirty(1));
        // A log GetDirtyLog() returned is a buffer of the slot too.
        RunToHalt(guest);
        slot.GetDirtyLog(snapshot);
        Assert.Empty(snapshot.DirtyPages);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Manual_protect_clears_exactly_what_the_reused_log_reported(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableManualDirtyLogProtect();
        using var guest = TwoRunGuest(vm);
        using var memory = vm.AllocateMemory(DataPages * (ulong)PageSize);
        using var slot = vm.AddMemorySlot(1, DataGpa, memory, MemorySlotFlags.LogDirtyPages);
        var log = slot.AllocateDirtyLog();
        RunToHalt(guest);
        slot.GetDirtyLog(log);
        Assert.Equal(new ulong[] { 1, 3, 6 }, log.DirtyPages);
        // The guest writes page 2 after the read: clearing what the log reported leaves page 2 dirty.
        RunToHalt(guest);
        slot.ClearDirtyLog(log);
        slot.GetDirtyLog(log);
        Assert.Equal(new ulong[] { 2 }, log.DirtyPages);
        slot.ClearDirtyLog(log);
        slot.GetDirtyLog(log);
        Assert.Equal(0UL, log.Count);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_log_of_another_slot_or_a_deleted_slot_is_refused_before_the_kernel_is_asked(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableManualDirtyLogProtect(initiallySet: true);
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(270 * ps);
        using var a = vm.AddMemorySlot(1, 0x100000, memory, 0, 70 * ps, MemorySlotFlags.LogDirtyPages);
        using var sameSize = vm.AddMemorySlot(2, 0x200000, memory, 70 * ps, 70 * ps, MemorySlotFlags.LogDirtyPages);
        using var bigger = vm.AddMemorySlot(3, 0x300000, memory, 140 * ps, 130 * ps, MemorySlotFlags.LogDirtyPages);
        var fromA = a.GetDirtyLog();
        Assert.Equal(70UL, fromA.Count);
        foreach (var other in new[] { sameSize, bigger })
        {
            var get = Assert.Throws<ArgumentException>(() => other.GetDirtyLog(fromA));
            Assert.Equal("into", get.ParamName);
            Assert.Contains($"belongs to memory slot 1 (70 pages), not to slot {other.Slot}", get.Message, StringComparison.Ordinal);
            var clear = Assert.Throws<ArgumentException>(() => other.ClearDirtyLog(fromA));
            Assert.Equal("pages", clear.ParamName);
            // Refused before the ioctl: the other slot's bits (all set) are still there, and fromA is untouched.
            Assert.Equal(other.Size / ps, other.GetDirtyLog().Count);
            Assert.Equal(70UL, fromA.Count);
        }
        Assert.Throws<ArgumentNullException>(() => a.GetDirtyLog(null!));
        Assert.Throws<ArgumentNullException>(() => a.ClearDirtyLog(null!));
        // A range beyond the slot is the SDK's refusal too; the kernel's alignment rules stay the kernel's (EINVAL).
        Assert.Throws<ArgumentOutOfRangeException>(() => a.ClearDirtyLog(0, 71));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.ClearDirtyLog(128, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.ClearDirtyLog(64, ulong.MaxValue));
        AssertErrno(Errno.EINVAL, () => a.ClearDirtyLog(1, 69));
        Assert.Equal(70UL, a.GetDirtyLog().Count);
        a.Delete();
        Assert.Throws<ObjectDisposedException>(() => a.GetDirtyLog(fromA));
        Assert.Throws<ObjectDisposedException>(() => a.ClearDirtyLog(fromA));
        Assert.Throws<ObjectDisposedException>(() => a.AllocateDirtyLog());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Polling_and_clearing_with_a_reused_log_allocates_nothing_beyond_the_kernel(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableManualDirtyLogProtect(initiallySet: true);
        ulong ps = (ulong)PageSize;
        const ulong pages = 4096 + 17;
        using var memory = vm.AllocateMemory(pages * ps);
        using var slot = vm.AddMemorySlot(1, 0x100000, memory, MemorySlotFlags.LogDirtyPages);
        var log = slot.AllocateDirtyLog();
        slot.GetDirtyLog(log);
        Assert.Equal(pages, log.Count);

        // Enumerating dirty pages allocates nothing (pages 4096..4112 of the initially-set log are still dirty).
        slot.ClearDirtyLog(0, 4096);
        slot.GetDirtyLog(log);
        ulong sum = 0;
        long enumerate = AllocatedPerCall(() =>
        {
            sum = 0;
            foreach (ulong page in log.DirtyPages) sum += page;
        });
        Assert.Equal(0, enumerate);
        Assert.Equal(17 * 4096UL + 16 * 17 / 2, sum);
        Assert.Equal(Enumerable.Range(4096, 17).Select(i => (ulong)i), log.DirtyPages);

        // The same ioctls made directly on the kernel: whatever the kernel itself allocates (the emulator is
        // managed code) is the floor; the SDK may add nothing to it.
        var raw = new PinnedArray<ulong>(log.Words.Length);
        var get = new kvm_dirty_log { slot = 1, dirty_bitmap = raw.Address };
        var clear = new kvm_clear_dirty_log { slot = 1, first_page = 0, num_pages = (uint)pages, dirty_bitmap = raw.Address };
        void RawGet()
        {
            if (kvm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_DIRTY_LOG, MemoryMarshal.AsBytes(new Span<kvm_dirty_log>(ref get))) != 0)
                throw new InvalidOperationException("KVM_GET_DIRTY_LOG failed");
        }
        void RawClear()
        {
            if (kvm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CLEAR_DIRTY_LOG, MemoryMarshal.AsBytes(new Span<kvm_clear_dirty_log>(ref clear))) != 0)
                throw new InvalidOperationException("KVM_CLEAR_DIRTY_LOG failed");
        }
        long kernelGet = AllocatedPerCall(RawGet);
        long kernelClear = AllocatedPerCall(RawClear);
        GC.KeepAlive(raw);

        Assert.Equal(kernelGet, AllocatedPerCall(() => slot.GetDirtyLog(log)));
        Assert.Equal(kernelClear, AllocatedPerCall(() => slot.ClearDirtyLog(log)));
        Assert.Equal(kernelClear, AllocatedPerCall(() => slot.ClearDirtyLog(0, pages)));
        if (kvm.Kernel is LinuxKernel)
        {
            Assert.Equal(0, kernelGet);
            Assert.Equal(0, kernelClear);
        }
        // The allocating API for comparison: a new bitmap per call, which the measurement does see.
        Assert.True(AllocatedPerCall(() => slot.GetDirtyLog()) >= kernelGet + 8 * log.Words.Length);
    }

    /// <summary>Bytes <paramref name="call"/> allocates on this thread, per call (after one call that warms it up).</summary>
    private static long AllocatedPerCall(Action call)
    {
        const int calls = 16;
        call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < calls; i++) call();
        return (GC.GetAllocatedBytesForCurrentThread() - before) / calls;
    }

    [Fact]
    public void Aligned_pinned_arrays_start_on_the_boundary_inside_their_backing_array()
    {
        // The dirty bitmaps' storage: the kernel writes at Address, the SDK reads Span; they must be the same memory.
        var random = new Random(7);
        foreach (int alignment in new[] { 8, 64, 4096 })
        {
            var offsets = new HashSet<int>();
            for (int i = 0; i < 64; i++)
            {
                int length = random.Next(0, 600);
                var a = new PinnedArray<ulong>(length, alignment);
                Assert.Equal(length, a.Length);
                Assert.Equal(length, a.Span.Length);
                Assert.InRange(a.Offset + a.Length, a.Length, a.Items.Length);
                offsets.Add(a.Offset);
                if (length == 0)
                {
                    Assert.Equal(0UL, a.Address);
                    continue;
                }
                Assert.Equal(0UL, a.Address % (ulong)alignment);
                Assert.Equal((ulong)Marshal.UnsafeAddrOfPinnedArrayElement(a.Items, a.Offset), a.Address);
                a.Span[^1] = 0x5A;
                Assert.Equal(0x5AUL, a.Items[a.Offset + length - 1]);
            }
            // The pinned heap places arrays at any multiple of 8, so a real alignment needs a non-zero offset at times.
            if (alignment > 8) Assert.True(offsets.Count > 1, $"all {alignment}-byte aligned arrays had the same offset {string.Join(", ", offsets)}");
        }
        var bytes = new PinnedArray<byte>(3, 4096);
        Assert.Equal(0UL, bytes.Address % 4096);
        var plain = new PinnedArray<ulong>(5);
        Assert.Equal(0, plain.Offset);
        Assert.Equal(5, plain.Items.Length);
        Assert.Equal((ulong)Marshal.UnsafeAddrOfPinnedArrayElement(plain.Items, 0), plain.Address);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PinnedArray<ulong>(4, 48));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PinnedArray<ulong>(4, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PinnedArray<ulong>(-1, 64));
        Assert.Throws<ArgumentException>(() => new PinnedArray<Guid>(4, 64));
    }
}
