// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// <c>-- lifecycle-probe [rounds]</c>: (a), (c) and (d) timed interleaved, like <see cref="ExitProbe"/> and for the
/// same reason (on this host the cost of KVM_CREATE_VM and of first-touch faults drifts within seconds, and
/// BenchmarkDotNet times one side after the other): C and C# setup + teardown, C and C# create + one call + teardown,
/// and a pooled call, one of each per round, order alternating every round. Prints per-operation medians and the
/// median of per-round ratios to C's create + call + teardown, then C#'s ratios to C for (a) and (c).
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
            using var pool = new MicroVmPool(image, BenchGuest.Options(kvm), size: 2);
            var variants = new (string Name, Func<long> Body)[]
            {
                ("C create+call+teardown", () => CReferenceVmm.Check(
                    CReferenceVmm.CreateCallDestroy(BenchGuest.Code, Trampoline.Bytes, BenchGuest.MemorySize, BenchGuest.Entry, 1, 0), "create+call")),
                ("C# create+call+teardown", () =>
                {
                    using var vm = MicroVm.Create(image, BenchGuest.Options(kvm));
                    return Checked(vm.Call("spin_io", 1));
                }),
                ("C setup+teardown", () => CReferenceVmm.Check(CReferenceVmm.SetupTeardown(BenchGuest.MemorySize), "setup")),
                ("C# setup+teardown", () =>
                {
                    using var vm = kvm.CreateVm();
                    using var memory = GuestMemory.Create(vm, BenchGuest.MemorySize, BenchGuest.Memory);
                    using var vcpu = vm.CreateVcpu(0);
                    return vcpu.Id;
                }),
                ("C# pool rent+call+reset", () =>
                {
                    var vm = pool.Rent();
                    long value = Checked(vm.Call("spin_io", 1));
                    pool.Return(vm);
                    return value;
                }),
            };
            var samples = Interleaved.Sample([.. variants.Select(v => v.Body)], rounds, warmups: 20);
            // Report prints "per exit" and ns: here each sample is one whole operation (in µs, shown ×1000 as ns).
            ExitProbe.Report($"lifecycle, {rounds} interleaved rounds, per operation", variants.Select(v => v.Name).ToArray(), samples);
            Console.WriteLine($"(a) setup+teardown C#/C, median of per-round ratios: {MedianRatio(samples[3], samples[2]):F3}");
            Console.WriteLine($"(c) create+call+teardown C#/C, median of per-round ratios: {MedianRatio(samples[1], samples[0]):F3}");
            Console.WriteLine($"(d) pool / C# create+call+teardown, median of per-round ratios: {MedianRatio(samples[4], samples[1]):F3}");
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20; i++) variants[1].Body();
            long create = (GC.GetAllocatedBytesForCurrentThread() - before) / 20;
            before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20; i++) variants[4].Body();
            long pooled = (GC.GetAllocatedBytesForCurrentThread() - before) / 20;
            Console.WriteLine($"managed allocation: {create} B per create+call+teardown, {pooled} B per pooled call");
            return 0;
        }
        finally
        {
            CReferenceVmm.Close();
        }
    }

    private static double MedianRatio(List<double> a, List<double> b)
    {
        var ratios = a.Zip(b, (x, y) => x / y).Order().ToList();
        return ratios[ratios.Count / 2];
    }

    private static long Checked(CallResult r) => r.Value == 42 ? 42 : throw new InvalidOperationException($"unexpected: {r}");
}
