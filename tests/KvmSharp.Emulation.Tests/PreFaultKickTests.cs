// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A kick (IKernel.KickThread, the VMM's tgkill) to a thread inside KVM_PRE_FAULT_MEMORY: virt/kvm/kvm_main.c
/// kvm_vcpu_pre_fault_memory checks signal_pending(current) before every page and stops with -EINTR when nothing was
/// mapped yet, else returns 0 with the leftover range written back. The pre-fault runs over a guest_memfd slot, so
/// which pages it reached is visible as their "prepared" state.
/// </summary>
public sealed class PreFaultKickTests : IDisposable
{
    private static readonly ulong Ps = (ulong)Raw.Page;
    private const ulong Gpa = 1UL << 32;
    private const long EINTR = -4; // not among Raw's errnos

    private readonly EmulatedKernel _k = new(EmulatorConfig.X86_64());
    private readonly List<KernelFd> _fds = [];
    private readonly KernelFd _vm;
    private readonly KernelFd _vcpu;

    public PreFaultKickTests()
    {
        var sys = Own(Raw.OpenKvm(_k));
        _vm = Own(Raw.CreateVm(_k, sys));
        // MMAP without INIT_SHARED: a guest_memfd-only slot the host never faults, so page states are exact.
        var gmem = Own(Raw.CreateGmem(_k, _vm, Pages * Ps, KvmConstants.GUEST_MEMFD_FLAG_MMAP));
        Assert.Equal(0, Raw.Region2(_k, _vm, 1, KvmConstants.KVM_MEM_GUEST_MEMFD, Gpa, Pages * Ps, gmemFd: gmem.Number));
        long rc = _k.Ioctl(_vm, KvmIoctls.KVM_CREATE_VCPU, 0UL);
        Assert.True(rc >= 0, $"KVM_CREATE_VCPU: {rc}");
        _vcpu = Own(_k.Adopt((int)rc));
    }

    /// <summary>256 MiB: long enough (tens of milliseconds at least) that a kick lands mid-way.</summary>
    private static ulong Pages => (256UL << 20) / Ps;

    public void Dispose()
    {
        for (int i = _fds.Count - 1; i >= 0; i--) _fds[i].Dispose();
        Assert.Equal(0, _k.OpenFdCount);
        _k.Dispose();
    }

    private KernelFd Own(KernelFd fd)
    {
        _fds.Add(fd);
        return fd;
    }

    private long PreFault(ref kvm_pre_fault_memory range) => _k.Ioctl(_vcpu, KvmIoctls.KVM_PRE_FAULT_MEMORY, Raw.Bytes(ref range));

    /// <summary>Page <paramref name="page"/> of the slot was reached by the guest fault path (zeroed, up to date).</summary>
    private bool Prepared(ulong page)
    {
        lock (_k.SyncRoot)
        {
            var kvm = GuestMemoryPath.VmOf(_k, _vm)!;
            var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, Gpa / Ps)!;
            return GmemPopulate.Prepared(slot.GmemFile!.GmemInode, page);
        }
    }

    /// <summary>How many leading pages are prepared (the pre-fault walks them in order).</summary>
    private ulong PreparedPrefix()
    {
        ulong lo = 0, hi = Pages;
        while (lo < hi)
        {
            ulong mid = (lo + hi) / 2;
            if (Prepared(mid)) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    [Fact]
    public void Kick_mid_way_stops_after_the_page_in_flight_and_writes_the_leftover_range_back()
    {
        var range = new kvm_pre_fault_memory { gpa = Gpa, size = Pages * Ps };
        int tid = 0;
        long rc = 1;
        var worker = new Thread(() =>
        {
            Volatile.Write(ref tid, _k.GetTid());
            rc = PreFault(ref range);
        });
        worker.Start();
        // Under the kernel lock the worker cannot finish another page: read its progress, then kick it. It then
        // completes at most the page it is blocked on and sees the signal before the next one.
        ulong seen;
        while (true)
        {
            lock (_k.SyncRoot)
            {
                seen = PreparedPrefix();
                if (seen >= 16)
                {
                    Assert.Equal(0, _k.KickThread(Volatile.Read(ref tid)));
                    break;
                }
            }
            Assert.True(worker.IsAlive, "the pre-fault finished before it could be kicked");
            Thread.Sleep(1);
        }
        Assert.True(worker.Join(TimeSpan.FromSeconds(30)));

        // At least one page was mapped: success, with the leftover range in the struct.
        Assert.Equal(0, rc);
        ulong done = (range.gpa - Gpa) / Ps;
        Assert.InRange(done, seen, seen + 1);
        Assert.Equal(0UL, range.gpa % Ps);
        Assert.Equal((Pages - done) * Ps, range.size);
        Assert.True(Prepared(done - 1));
        Assert.False(Prepared(done));
        Assert.Equal(done, PreparedPrefix());

        // The signal was consumed when the ioctl returned: the next call runs to the end of its range.
        var next = new kvm_pre_fault_memory { gpa = range.gpa, size = 4 * Ps };
        Assert.Equal(0, PreFault(ref next));
        Assert.Equal(0UL, next.size);
        Assert.Equal(range.gpa + 4 * Ps, next.gpa);
    }

    [Fact]
    public void Kick_before_the_ioctl_is_lost_like_a_signal_handled_in_user_mode()
    {
        Assert.Equal(0, _k.KickThread(_k.GetTid()));
        var range = new kvm_pre_fault_memory { gpa = Gpa, size = 8 * Ps };
        Assert.Equal(0, PreFault(ref range));
        Assert.Equal(0UL, range.size);
        Assert.Equal(Gpa + 8 * Ps, range.gpa);
    }

    [Fact]
    public void Every_kick_timing_gives_EINTR_with_the_range_untouched_or_success_with_exact_progress()
    {
        var rng = new Random(618);
        ulong start = 0;
        for (int trial = 0; trial < 20; trial++)
        {
            const ulong Chunk = 256;
            var range = new kvm_pre_fault_memory { gpa = Gpa + start * Ps, size = Chunk * Ps };
            var given = range;
            int tid = 0;
            long rc = 1;
            using var entered = new ManualResetEventSlim();
            var worker = new Thread(() =>
            {
                Volatile.Write(ref tid, _k.GetTid());
                entered.Set();
                rc = PreFault(ref range);
            });
            worker.Start();
            entered.Wait();
            Thread.SpinWait(rng.Next(0, 20_000));
            Assert.Equal(0, _k.KickThread(Volatile.Read(ref tid)));
            Assert.True(worker.Join(TimeSpan.FromSeconds(30)));

            ulong done = (range.gpa - given.gpa) / Ps;
            if (rc == EINTR)
            {
                // Nothing mapped: -EINTR, and the struct copied back unchanged.
                Assert.Equal(given.gpa, range.gpa);
                Assert.Equal(given.size, range.size);
                Assert.False(Prepared(start));
            }
            else
            {
                Assert.Equal(0, rc);
                Assert.InRange(done, 1UL, Chunk);
                Assert.Equal(given.gpa + given.size, range.gpa + range.size);
                Assert.True(Prepared(start + done - 1));
                if (done < Chunk) Assert.False(Prepared(start + done));
            }
            start += Chunk;
        }
    }
}
