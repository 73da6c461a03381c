// SPDX-License-Identifier: MIT

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// <c>-- hostcall-probe [rounds]</c>: (e) timed interleaved, like <see cref="ExitProbe"/> and for the same reason
/// (the exit cost drifts within seconds on this host): C's exit, C#'s exit and C#'s guest → host call, call by call,
/// order alternating every round; prints per-call medians and the median of per-round ratios to C.
/// </summary>
internal static class HostCallRoundTripProbe
{
    private const int Calls = 1000;

    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 100;
        using var kvm = Kvm.Open();
        using var vm = MicroVm.Create(BenchGuest.Image(), BenchGuest.Options(kvm));
        using var reference = CReferenceVm.Create();
        var variants = new (string Name, Func<long> Body)[]
        {
            ("C port-I/O exit", () => CReferenceVmm.Check(CReferenceVmm.VmCall(BenchGuest.Entry, Calls, 0), "call")),
            ("C# port-I/O exit", () => Checked(vm.Call("spin_io", Calls), 0)),
            ("C# guest→host call", () => Checked(vm.Call("spin_hostcall", Calls), Calls)),
            ("C# store + port-I/O exit", () => Checked(vm.Call("spin_store_io", Calls), 0)),
        };
        var samples = Interleaved.Sample([.. variants.Select(v => v.Body)], rounds, warmups: 20, perSample: Calls);
        ExitProbe.Report($"guest→host call vs port-I/O exit, {rounds} interleaved rounds of {Calls}", variants.Select(v => v.Name).ToArray(), samples);
        var perRound = samples[2].Zip(samples[1], (h, e) => h / e).Order().ToList();
        Console.WriteLine($"host call / C# exit, median of per-round ratios: {perRound[perRound.Count / 2]:F3}");
        var perRoundStore = samples[2].Zip(samples[3], (h, e) => h / e).Order().ToList();
        Console.WriteLine($"host call / C# store + exit, median of per-round ratios: {perRoundStore[perRoundStore.Count / 2]:F3}");

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) vm.Call("spin_hostcall", Calls);
        long perCall = (GC.GetAllocatedBytesForCurrentThread() - before) / 10;
        Console.WriteLine($"managed allocation per MicroVm.Call of {Calls} host calls: {perCall} B");
        return 0;
    }

    private static long Checked(CallResult r, long hostCalls) =>
        r.Value == 42 && r.HostCalls == hostCalls ? 42 : throw new InvalidOperationException($"unexpected: {r}");
}
