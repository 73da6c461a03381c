// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// (c) The dirty ring on the same 1 GiB slot (<see cref="DirtyRingVm"/>, a 64 KiB ACQ_REL ring): with
/// <see cref="Pages"/> = 0 a poll that finds nothing (one acquire load of the next entry's flags, then
/// KVM_RESET_DIRTY_RINGS, which frees nothing) — the fixed cost per poll, the ring's counterpart of
/// <see cref="EmptyPollBenchmarks"/>; with <see cref="Pages"/> &gt; 0 a round: KVM_RUN (the guest writes one byte
/// to each of the pages and halts), harvest every entry (copying slot and offset out, marking each collected), then
/// KVM_RESET_DIRTY_RINGS (which write-protects those pages again, so every round pushes them again). C: the
/// selftest's collect loop over its mmap of the ring into a static array. SDK: <c>vcpu.DirtyRing.Harvest(span)</c>
/// into one reused array + <c>vm.ResetDirtyRings()</c>.
/// </summary>
[Config(typeof(BenchConfig))]
[MemoryDiagnoser]
public class DirtyRingBenchmarks
{
    private DirtyRingVm _sdk = null!;

    [Params(0, 8, 128)]
    public int Pages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        int guestPages = Math.Max(Pages, 1);
        _sdk = DirtyRingVm.Create(guestPages);
        CReferenceDirtyLog.OpenRing(DirtyLogVm.MemorySize, DirtyRingVm.RingBytes, DirtyLogVm.Code(guestPages), DirtyLogVm.CodeGpa);
        // One round each: both rings must report exactly the pages the guest wrote, in order, from page 32.
        long c = CReferenceDirtyLog.Check(CReferenceDirtyLog.RingRound(), "ring round");
        _sdk.Run();
        int sdk = _sdk.Poll();
        bool inOrder = Enumerable.Range(0, guestPages).All(i =>
            _sdk.Entries[i] == new DirtyRingEntry(0, (ulong)(DirtyLogVm.FirstPage + i)) && CReferenceDirtyLog.RingOffset(i) == DirtyLogVm.FirstPage + i);
        if (c != guestPages || sdk != guestPages || !inOrder)
            throw new InvalidOperationException($"expected {guestPages} entries from page {DirtyLogVm.FirstPage}, got C {c}, SDK {sdk}, in order: {inOrder}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CReferenceDirtyLog.Close();
        _sdk.Dispose();
    }

    [Benchmark(Baseline = true, Description = "C: [run +] harvest + reset")]
    public long C() => CReferenceDirtyLog.Check(Pages == 0 ? CReferenceDirtyLog.RingPoll() : CReferenceDirtyLog.RingRound(), "ring");

    [Benchmark(Description = "SDK: [Run() +] Harvest(span) + ResetDirtyRings()")]
    public int Sdk()
    {
        if (Pages != 0) _sdk.Run();
        return _sdk.Poll();
    }
}
