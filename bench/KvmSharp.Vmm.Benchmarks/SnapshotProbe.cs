// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// <c>-- snapshot-probe [rounds] [init-rounds]</c>: (f) timed interleaved, like <see cref="LifecycleProbe"/> and for
/// the same reason (KVM_CREATE_VM and page faults drift within seconds on this host, while BenchmarkDotNet times one
/// row after the other): create + init + call + teardown, create from the snapshot + call + teardown, the snapshot
/// pool (rent + call + restore), create + call + teardown without init (what a snapshot's create costs beyond a plain
/// one) and the image pool (rent + init + call + reset), one of each per round, order alternating. Prints per-operation medians and the median of per-round ratios to create + init + call + teardown.
/// </summary>
internal static class SnapshotProbe
{
    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100;
        ulong initRounds = args.Length > 2 ? ulong.Parse(args[2], CultureInfo.InvariantCulture) : 0;
        using var kvm = Kvm.Open();
        MicroVmOptions options = BenchGuest.Options(kvm);
        var image = Counter.Image();
        Snapshots.MicroVmSnapshot snapshot;
        using (var source = MicroVm.Create(image, options))
        {
            Checked(source.Call("init", initRounds));
            snapshot = source.Snapshot();
        }
        using var snapshotPool = new MicroVmPool(snapshot, options, size: 1);
        using var imagePool = new MicroVmPool(image, options, size: 1);
        var variants = new (string Name, Func<ulong> Body)[]
        {
            ("create+init+call+teardown", () =>
            {
                using var vm = MicroVm.Create(image, options);
                Checked(vm.Call("init", initRounds));
                return Checked(vm.Call("increment"));
            }),
            ("create from snapshot+call+teardown", () =>
            {
                using var vm = MicroVm.Create(snapshot, options);
                return Checked(vm.Call("increment"));
            }),
            ("snapshot pool rent+call+restore", () =>
            {
                MicroVm vm = snapshotPool.Rent();
                ulong value = Checked(vm.Call("increment"));
                snapshotPool.Return(vm);
                return value;
            }),
            ("create+call+teardown (no init)", () =>
            {
                using var vm = MicroVm.Create(image, options);
                return Checked(vm.Call("increment"));
            }),
            ("image pool rent+init+call+reset", () =>
            {
                MicroVm vm = imagePool.Rent();
                Checked(vm.Call("init", initRounds));
                ulong value = Checked(vm.Call("increment"));
                imagePool.Return(vm);
                return value;
            }),
        };
        var samples = Interleaved.Sample([.. variants.Select(v => v.Body)], rounds, warmups: 5);
        Console.WriteLine($"snapshot: {snapshot.PageCount} pages ({snapshot.StoredBytes} B) of {snapshot.MemorySize} B; init({initRounds}); {rounds} interleaved rounds");
        for (int i = 0; i < variants.Length; i++)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {variants[i].Name,-36} median {Median(samples[i]),9:F1} µs   vs create+init+call+teardown {MedianRatio(samples[i], samples[0]):F3}"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  snapshot pool / image pool, median of per-round ratios: {MedianRatio(samples[2], samples[4]):F3}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  create from snapshot / create without init, median of per-round ratios: {MedianRatio(samples[1], samples[3]):F3}"));
        return 0;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    private static double MedianRatio(List<double> a, List<double> b) => Median(a.Zip(b, (x, y) => x / y).ToList());

    private static ulong Checked(CallResult r) => r.Value ?? throw new InvalidOperationException($"the counter guest did not return: {r}");
}
