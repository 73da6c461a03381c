// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// <c>-- density-probe [n] [rounds]</c>: what a live micro-VM costs the host in memory, the way Firecracker publishes
/// its VMM overhead (the VMM process's resident memory per microVM), beside the C reference holding the same number
/// of micro-VMs made with the same KVM calls. Each round: n C micro-VMs created, booted and called once, all alive
/// at once → measured → torn down; then the same with n <see cref="MicroVm"/>s. Per micro-VM it prints the process's
/// resident set (anonymous, file and shmem parts: guest memory here is host memory or a guest_memfd mapping), the
/// managed heap after a full collection, the open fds and the kernel memory charged to this cgroup (cgroup v1
/// memory.kmem.usage_in_bytes: KVM's per-VM and per-vCPU allocations and page tables are GFP_KERNEL_ACCOUNT; the
/// counter is shared with every process of the cgroup, so read it only on a quiet machine), and after the teardown
/// what is left (a leak shows up there).
/// </summary>
internal static class DensityProbe
{
    private const string KmemPath = "/sys/fs/cgroup/memory/memory.kmem.usage_in_bytes";

    public static int Run(string[] args)
    {
        int n = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100;
        int rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
        using var kvm = Kvm.Open();
        var image = BenchGuest.Image();
        CReferenceVmm.Check(CReferenceVmm.Open(), "open");
        try
        {
            Console.WriteLine($"density: {n} micro-VMs alive at once ({BenchGuest.MemorySize >> 20} MiB guest memory each, one call made), {rounds} rounds, C then C# in each");
            Console.WriteLine($"{"",-22}{"RSS",10}{"anon",10}{"file",10}{"shmem",10}{"heap",10}{"fds",7}{"kmem",10}   (KiB per micro-VM; fds per micro-VM)");
            var c = new List<Sample>();
            var cs = new List<Sample>();
            for (int round = 0; round < rounds; round++)
            {
                c.Add(Measure($"C, round {round + 1}", n,
                    () => CReferenceVmm.Check(CReferenceVmm.DensityCreate(n, BenchGuest.Code, Trampoline.Bytes, BenchGuest.MemorySize, BenchGuest.Entry, 1), "density"),
                    CReferenceVmm.DensityDestroy));
                var vms = new List<MicroVm>(n);
                cs.Add(Measure($"C#, round {round + 1}", n,
                    () =>
                    {
                        for (int i = 0; i < n; i++)
                        {
                            var vm = MicroVm.Create(image, BenchGuest.Options(kvm));
                            vms.Add(vm);
                            var r = vm.Call("spin_io", 1);
                            if (r.Value != 42) throw new InvalidOperationException($"unexpected: {r}");
                        }
                    },
                    () =>
                    {
                        foreach (var vm in vms) vm.Dispose();
                        vms.Clear();
                    }));
            }
            Sample cm = Sample.Median(c), csm = Sample.Median(cs);
            Console.WriteLine();
            Print("C, median", cm);
            Print("C#, median", csm);
            Console.WriteLine($"C# - C per micro-VM: RSS {csm.Rss - cm.Rss:F0} KiB, managed heap {csm.Heap:F0} KiB, kmem {csm.Kmem - cm.Kmem:F0} KiB; C#/C RSS {csm.Rss / cm.Rss:F2}");
            return 0;
        }
        finally
        {
            CReferenceVmm.Close();
        }
    }

    private static Sample Measure(string name, int n, Action create, Action destroy)
    {
        var before = Snapshot.Take();
        create();
        var alive = Snapshot.Take();
        destroy();
        var after = Snapshot.Take();
        var sample = Sample.Per(alive, before, n);
        Print(name, sample);
        var left = Sample.Per(after, before, 1);
        Console.WriteLine($"{"  left after teardown",-22}{left.Rss,10:F0}{left.Anon,10:F0}{left.File,10:F0}{left.Shmem,10:F0}{left.Heap,10:F0}{left.Fds,7:F0}{left.Kmem,10:F0}   (KiB in all)");
        return sample;
    }

    private static void Print(string name, Sample s) =>
        Console.WriteLine($"{name,-22}{s.Rss,10:F1}{s.Anon,10:F1}{s.File,10:F1}{s.Shmem,10:F1}{s.Heap,10:F1}{s.Fds,7:F2}{s.Kmem,10:F1}");

    private readonly record struct Snapshot(long Rss, long Anon, long File, long Shmem, long Heap, long Fds, long Kmem)
    {
        public static Snapshot Take()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            long heap = GC.GetTotalMemory(forceFullCollection: true);
            var status = System.IO.File.ReadAllLines("/proc/self/status")
                .Select(l => l.Split(':', 2))
                .Where(p => p.Length == 2)
                .ToDictionary(p => p[0], p => p[1].Trim());
            long Kib(string key) => status.TryGetValue(key, out var v) ? long.Parse(v.Split(' ')[0], CultureInfo.InvariantCulture) * 1024 : 0;
            long kmem = System.IO.File.Exists(KmemPath) ? long.Parse(System.IO.File.ReadAllText(KmemPath).Trim(), CultureInfo.InvariantCulture) : 0;
            return new(Kib("VmRSS"), Kib("RssAnon"), Kib("RssFile"), Kib("RssShmem"), heap,
                Directory.GetFiles("/proc/self/fd").Length, kmem);
        }
    }

    // Per micro-VM, in KiB (fds as a count).
    private readonly record struct Sample(double Rss, double Anon, double File, double Shmem, double Heap, double Fds, double Kmem)
    {
        public static Sample Per(Snapshot after, Snapshot before, int n) => new(
            (after.Rss - before.Rss) / 1024.0 / n, (after.Anon - before.Anon) / 1024.0 / n,
            (after.File - before.File) / 1024.0 / n, (after.Shmem - before.Shmem) / 1024.0 / n,
            (after.Heap - before.Heap) / 1024.0 / n, (after.Fds - before.Fds) / (double)n,
            (after.Kmem - before.Kmem) / 1024.0 / n);

        public static Sample Median(List<Sample> s)
        {
            static double M(IEnumerable<double> v) { var o = v.Order().ToList(); return o[o.Count / 2]; }
            return new(M(s.Select(x => x.Rss)), M(s.Select(x => x.Anon)), M(s.Select(x => x.File)), M(s.Select(x => x.Shmem)),
                M(s.Select(x => x.Heap)), M(s.Select(x => x.Fds)), M(s.Select(x => x.Kmem)));
        }
    }
}
