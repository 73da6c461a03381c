// SPDX-License-Identifier: MIT

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// <c>-- async-probe [rounds]</c>: (g) interleaved, call by call: C's short call, C#'s blocking Call and C#'s CallAsync
/// (the vCPU-thread hand-off), order alternating every round; per-call medians and the median of per-round ratios.
/// </summary>
internal static class AsyncCallProbe
{
    private const int Calls = 200;

    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 100;
        using var kvm = Kvm.Open();
        using var vm = MicroVm.Create(BenchGuest.Image(), BenchGuest.Options(kvm));
        using var reference = CReferenceVm.Create();
        var variants = new (string Name, Func<long> Body)[]
        {
            ("C short call", () => Repeat(() => CReferenceVmm.Check(CReferenceVmm.VmCall(BenchGuest.Entry, 1, 0), "call"))),
            ("C# Call", () => Repeat(() => Checked(vm.Call("spin_io", 1)))),
            ("C# CallAsync", () => Repeat(() => Checked(vm.CallAsync("spin_io", 1).GetAwaiter().GetResult()))),
        };
        var samples = Interleaved.Sample([.. variants.Select(v => v.Body)], rounds, warmups: 10, perSample: Calls);
        ExitProbe.Report($"short calls, {rounds} interleaved rounds of {Calls}", variants.Select(v => v.Name).ToArray(), samples);
        var perRound = samples[2].Zip(samples[1], (a, s) => a / s).Order().ToList();
        Console.WriteLine($"CallAsync / Call, median of per-round ratios: {perRound[perRound.Count / 2]:F3}");
        return 0;
    }

    private static long Repeat(Func<long> call)
    {
        long last = 0;
        for (int i = 0; i < Calls; i++) last = call();
        return last;
    }

    private static long Checked(CallResult r) => r.Value == 42 ? 42 : throw new InvalidOperationException($"unexpected: {r}");
}
