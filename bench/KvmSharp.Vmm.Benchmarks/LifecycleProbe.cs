// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// <c>-- lifecycle-probe [rounds]</c>: (a), (c) and (d) timed interleaved, like <see cref="ExitProbe"/> and for the
/// same reason (on this host the cost of KVM_CREATE_VM and of first-touch faults drifts within seconds, and
/// BenchmarkDotNet times one side after the other), in two parts:
/// <list type="number">
/// <item>cold — no other vCPU of this process alive: C and C# setup + teardown, C and C# create + one call +
/// teardown. Every create and teardown then flips the host's kvm_has_noapic_vcpu static key
/// (<see cref="WarmVcpuHold"/>), unless another process on the host holds such a vCPU;</item>
/// <item>warm — a <see cref="WarmVcpuHold"/> held: C and C# create + one call + teardown again, and a pooled call
/// (a pool's micro-VMs hold vCPUs too, so a pool is always warm).</item>
/// </list>
/// One of each per round, order alternating every round. Prints per-operation medians, the median of per-round ratios
/// to C's create + call + teardown, then C#'s ratios to C.
/// </summary>
internal static class LifecycleProbe
{
    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 150;
        using var kvm = Kvm.Open();
        var image = BenchGuest.Image();
        CReferenceVmm.Check(CReferenceVmm.Open(), "open");
        try
        {
            (string Name, Func<long> Body) c = ("C create+call+teardown", () => CReferenceVmm.Check(
                CReferenceVmm.CreateCallDestroy(BenchGuest.Code, Trampoline.Bytes, BenchGuest.MemorySize, BenchGuest.Entry, 1, 0), "create+call"));
            (string Name, Func<long> Body) cs = ("C# create+call+teardown", () =>
            {
                using var vm = MicroVm.Create(image, BenchGuest.Options(kvm));
                return Checked(vm.Call("spin_io", 1));
            });
            var cold = new (string Name, Func<long> Body)[]
            {
                c,
                cs,
                ("C setup+teardown", () => CReferenceVmm.Check(CReferenceVmm.SetupTeardown(BenchGuest.MemorySize), "setup")),
                ("C# setup+teardown", () =>
                {
                    using var vm = kvm.CreateVm();
                    using var memory = GuestMemory.Create(vm, BenchGuest.MemorySize, BenchGuest.Memory);
                    using var vcpu = vm.CreateVcpu(0);
                    return vcpu.Id;
                }),
            };
            var coldSamples = Interleaved.Sample([.. cold.Select(v => v.Body)], rounds, warmups: 20);
            // Report prints "per exit" and ns: here each sample is one whole operation (in µs, shown ×1000 as ns).
            ExitProbe.Report($"lifecycle, cold (no vCPU held), {rounds} interleaved rounds, per operation", [.. cold.Select(v => v.Name)], coldSamples);

            using var hold = WarmVcpuHold.Acquire(kvm);
            using var pool = new MicroVmPool(image, BenchGuest.Options(kvm), size: 2);
            var warm = new (string Name, Func<long> Body)[]
            {
                (c.Name + ", warm", c.Body),
                (cs.Name + ", warm", cs.Body),
                ("C# pool rent+call+reset", () =>
                {
                    var vm = pool.Rent();
                    long value = Checked(vm.Call("spin_io", 1));
                    pool.Return(vm);
                    return value;
                }),
            };
            var warmSamples = Interleaved.Sample([.. warm.Select(v => v.Body)], rounds, warmups: 20);
            ExitProbe.Report($"lifecycle, warm (a WarmVcpuHold held), {rounds} interleaved rounds, per operation", [.. warm.Select(v => v.Name)], warmSamples);

            Console.WriteLine($"(a) setup+teardown C#/C, median of per-round ratios: {MedianRatio(coldSamples[3], coldSamples[2]):F3}");
            Console.WriteLine($"(c) create+call+teardown C#/C, median of per-round ratios: cold {MedianRatio(coldSamples[1], coldSamples[0]):F3}, warm {MedianRatio(warmSamples[1], warmSamples[0]):F3}");
            Console.WriteLine($"(c) C# create+call+teardown median: cold {Median(coldSamples[1]):F0} µs, warm {Median(warmSamples[1]):F0} µs (C: {Median(coldSamples[0]):F0} / {Median(warmSamples[0]):F0} µs)");
            Console.WriteLine($"(d) pool / C# create+call+teardown (warm), median of per-round ratios: {MedianRatio(warmSamples[2], warmSamples[1]):F3}");
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20; i++) cs.Body();
            long create = (GC.GetAllocatedBytesForCurrentThread() - before) / 20;
            before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20; i++) warm[2].Body();
            long pooled = (GC.GetAllocatedBytesForCurrentThread() - before) / 20;
            Console.WriteLine($"managed allocation: {create} B per create+call+teardown, {pooled} B per pooled call");
            return 0;
        }
        finally
        {
            CReferenceVmm.Close();
        }
    }

    private static double Median(List<double> a) => a.Order().ElementAt(a.Count / 2);

    private static double MedianRatio(List<double> a, List<double> b)
    {
        var ratios = a.Zip(b, (x, y) => x / y).Order().ToList();
        return ratios[ratios.Count / 2];
    }

    private static long Checked(CallResult r) => r.Value == 42 ? 42 : throw new InvalidOperationException($"unexpected: {r}");
}
