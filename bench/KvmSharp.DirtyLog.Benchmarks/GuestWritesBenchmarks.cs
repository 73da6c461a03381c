// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// (b) A polling round with dirty pages: KVM_RUN (the guest writes one byte to each of <see cref="Pages"/> pages of
/// the 1 GiB slot and halts), then KVM_GET_DIRTY_LOG, and with manual protect KVM_CLEAR_DIRTY_LOG of exactly the
/// pages it reported. Every round dirties the same pages again because GET (or CLEAR) write-protected them. The
/// guest's write faults dominate a round on kvm_pvm (≈3 µs a page); the empty poll (<see cref="EmptyPollBenchmarks"/>)
/// and the probe's run-only row say how much of it the log calls are.
/// </summary>
[Config(typeof(BenchConfig))]
[MemoryDiagnoser]
public class GuestWritesBenchmarks
{
    private DirtyLogVm _sdk = null!;

    [Params(false, true)]
    public bool ManualProtect { get; set; }

    [Params(8, 128)]
    public int Pages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _sdk = DirtyLogVm.Create(ManualProtect, Pages);
        CReferenceDirtyLog.Open(DirtyLogVm.MemorySize, ManualProtect, DirtyLogVm.Code(Pages), DirtyLogVm.CodeGpa);
        // One round each: both logs must report exactly the pages the guest wrote.
        CReferenceDirtyLog.Check(CReferenceDirtyLog.Round(ManualProtect ? 1 : 0), "round");
        SdkReused();
        long c = CReferenceDirtyLog.Count();
        ulong sdk = _sdk.Log.Count;
        bool firstIsRight = _sdk.Log.IsDirty(DirtyLogVm.FirstPage) && !_sdk.Log.IsDirty(DirtyLogVm.FirstPage - 1);
        if (c != Pages || sdk != (ulong)Pages || !firstIsRight)
            throw new InvalidOperationException($"expected {Pages} dirty pages from page {DirtyLogVm.FirstPage}, got C {c}, SDK {sdk}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CReferenceDirtyLog.Close();
        _sdk.Dispose();
    }

    [Benchmark(Baseline = true, Description = "C: run + ioctl(s), one bitmap")]
    public long C() => CReferenceDirtyLog.Check(CReferenceDirtyLog.Round(ManualProtect ? 1 : 0), "round");

    [Benchmark(Description = "SDK: run + GetDirtyLog(log), reused")]
    public int SdkReused()
    {
        _sdk.Run();
        MemorySlot slot = _sdk.Slot;
        DirtyPageLog log = _sdk.Log;
        slot.GetDirtyLog(log);
        if (ManualProtect) slot.ClearDirtyLog(log);
        return log.Words.Length;
    }

    [Benchmark(Description = "SDK: run + GetDirtyLog(), new log")]
    public int SdkAllocating()
    {
        _sdk.Run();
        MemorySlot slot = _sdk.Slot;
        DirtyPageLog log = slot.GetDirtyLog();
        if (ManualProtect) slot.ClearDirtyLog(log);
        return log.Words.Length;
    }
}
