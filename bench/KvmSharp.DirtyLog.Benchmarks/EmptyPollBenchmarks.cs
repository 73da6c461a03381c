// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;

namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// (a) Polling the log of a 1 GiB logging slot when the guest wrote nothing: the fixed cost of one poll, i.e. what
/// a VMM pays per iteration on top of copying pages. Without manual protect one KVM_GET_DIRTY_LOG (the kernel walks
/// and clears 4 096 bitmap words and copies 32 KiB out); with manual protect KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG
/// of what it reported (copy out, copy the 32 KiB back in). C: one bitmap, allocated once. SDK: the reusable
/// <see cref="DirtyPageLog"/> (<c>GetDirtyLog(log)</c>), and the allocating <c>GetDirtyLog()</c> for comparison.
/// </summary>
[Config(typeof(BenchConfig))]
[MemoryDiagnoser]
public class EmptyPollBenchmarks
{
    private DirtyLogVm _sdk = null!;

    [Params(false, true)]
    public bool ManualProtect { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _sdk = DirtyLogVm.Create(ManualProtect, pages: 1);
        CReferenceDirtyLog.Open(DirtyLogVm.MemorySize, ManualProtect, DirtyLogVm.Code(1), DirtyLogVm.CodeGpa);
        // Both logs are empty (the host's write of the code is not a guest write).
        CReferenceDirtyLog.Check(CReferenceDirtyLog.Get(), "get");
        _sdk.Slot.GetDirtyLog(_sdk.Log);
        if (CReferenceDirtyLog.Count() != 0 || _sdk.Log.Count != 0)
            throw new InvalidOperationException($"expected empty logs, got C {CReferenceDirtyLog.Count()}, SDK {_sdk.Log.Count}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CReferenceDirtyLog.Close();
        _sdk.Dispose();
    }

    [Benchmark(Baseline = true, Description = "C: ioctl, one bitmap")]
    public long C() => CReferenceDirtyLog.Check(ManualProtect ? CReferenceDirtyLog.GetClear() : CReferenceDirtyLog.Get(), "poll");

    [Benchmark(Description = "SDK: GetDirtyLog(log), reused")]
    public int SdkReused()
    {
        MemorySlot slot = _sdk.Slot;
        DirtyPageLog log = _sdk.Log;
        slot.GetDirtyLog(log);
        if (ManualProtect) slot.ClearDirtyLog(log);
        return log.Words.Length;
    }

    [Benchmark(Description = "SDK: GetDirtyLog(), new log")]
    public int SdkAllocating()
    {
        MemorySlot slot = _sdk.Slot;
        DirtyPageLog log = slot.GetDirtyLog();
        if (ManualProtect) slot.ClearDirtyLog(log);
        return log.Words.Length;
    }
}
