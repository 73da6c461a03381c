// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (f) Snapshots ("initialise once, run from a copy many times"): one use of the counter guest (<see cref="Counter"/>),
/// whose init(rounds) builds an 8 KiB table (1 024 stores, then <c>rounds</c> xorshift steps per entry) before the
/// call the user wants, <c>increment()</c>. Baseline: create + init + call + teardown, what a user without snapshots
/// does. Against it, in the same run: create from a snapshot taken after init + call + teardown; a pool of the
/// snapshot (rent + call + restore); and a pool of the image (rent + init + call + reset), the best without snapshots.
/// C has no snapshot: it is not part of this class. Ratio = row / baseline.
/// </summary>
[Config(typeof(VmmBenchConfig))]
[MemoryDiagnoser]
public class SnapshotBenchmarks
{
    private Kvm _kvm = null!;
    private MicroVmOptions _options = null!;
    private Loader.GuestImage _image = null!;
    private MicroVmSnapshot _snapshot = null!;
    private MicroVmPool _snapshotPool = null!;
    private MicroVmPool _imagePool = null!;

    /// <summary>xorshift steps per table entry in init: 0 = the stores alone, 4 ≈ a start-up five times as long.</summary>
    [Params(0UL, 4UL)]
    public ulong Rounds { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _kvm = Kvm.Open();
        _options = BenchGuest.Options(_kvm);
        _image = Counter.Image();
        using (var vm = MicroVm.Create(_image, _options))
        {
            Check(vm.Call("init", Rounds));
            _snapshot = vm.Snapshot();
        }
        _snapshotPool = new MicroVmPool(_snapshot, _options, size: 1);
        _imagePool = new MicroVmPool(_image, _options, size: 1);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _snapshotPool.Dispose();
        _imagePool.Dispose();
        _kvm.Dispose();
    }

    [Benchmark(Baseline = true, Description = "create+init+call+teardown")]
    public ulong CreateInitCall()
    {
        using var vm = MicroVm.Create(_image, _options);
        Check(vm.Call("init", Rounds));
        return Check(vm.Call("increment"));
    }

    [Benchmark(Description = "create from snapshot+call+teardown")]
    public ulong CreateFromSnapshotCall()
    {
        using var vm = MicroVm.Create(_snapshot, _options);
        return Check(vm.Call("increment"));
    }

    [Benchmark(Description = "snapshot pool: rent+call+restore")]
    public ulong SnapshotPoolCall()
    {
        MicroVm vm = _snapshotPool.Rent();
        ulong value = Check(vm.Call("increment"));
        _snapshotPool.Return(vm);
        return value;
    }

    [Benchmark(Description = "image pool: rent+init+call+reset")]
    public ulong ImagePoolInitCall()
    {
        MicroVm vm = _imagePool.Rent();
        Check(vm.Call("init", Rounds));
        ulong value = Check(vm.Call("increment"));
        _imagePool.Return(vm);
        return value;
    }

    private static ulong Check(CallResult result) =>
        result.Value ?? throw new InvalidOperationException($"the counter guest did not return: {result}");
}
