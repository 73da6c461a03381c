// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// <c>-- probe [rounds]</c>: the port-I/O exit round trip measured interleaved (C, C#, C, C#, …, one call of
/// spin_io(1000) each, order alternating every round), because on this host the cost of an exit drifts by 2–5× within
/// seconds and BenchmarkDotNet times one side after the other. Beside the full C# run loop it times layers of it, to
/// say where a gap comes from:
/// <list type="bullet">
/// <item>raw libc: KVM_RUN through a bare P/Invoke on the micro-VM's vCPU fd, decoding kvm_run by hand (the floor for
/// any C# caller: the P/Invoke transition only);</item>
/// <item>SDK: <see cref="Vcpu.Run"/> + <see cref="VcpuExit"/> in a minimal loop (adds the SDK: IKernel, SafeHandle
/// lease, span decoding);</item>
/// <item>MicroVm.Call: the whole sandbox (run loop, bus, devices, watchdog, call setup and result).</item>
/// </list>
/// Prints the median per-exit time of each and its ratio to C.
/// </summary>
internal static unsafe partial class ExitProbe
{
    private const int Exits = 1000;
#pragma warning disable IDE0044 // assigned through an out argument
    private static MappedRegion? s_runPage;
#pragma warning restore IDE0044

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int RawIoctl(int fd, nuint request, nuint arg);

    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200;
        using var kvm = Kvm.Open();
        using var vm = MicroVm.Create(BenchGuest.Image(), BenchGuest.Options(kvm));
        // A second mapping of the vCPU's kvm_run area for the raw loop (the SDK keeps its own private).
        long mapped = MappedRegion.Map(vm.Vcpu.Vm.Kernel, vm.Vcpu.Handle, (ulong)kvm.VcpuMmapSize,
            LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, 0, out s_runPage);
        if (mapped < 0) throw new InvalidOperationException($"mmap of kvm_run failed: {mapped}");
        using MappedRegion runPage = s_runPage!;
        using var reference = CReferenceVm.Create();
        var variants = new (string Name, Func<long> Body)[]
        {
            ("C (vmm_ref_vm_call)", () => CReferenceVmm.Check(CReferenceVmm.VmCall(BenchGuest.Entry, Exits, 0), "call")),
            ("C# raw libc ioctl loop", () => RawLoop(vm)),
            ("C# SDK Vcpu.Run loop", () => SdkLoop(vm)),
            ("C# MicroVm.Call", () => (long)(vm.Call("spin_io", Exits).Value ?? throw new InvalidOperationException("no return"))),
        };
        foreach (var v in variants) for (int i = 0; i < 20; i++) Check(v.Body());
        var samples = variants.Select(_ => new List<double>(rounds)).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < variants.Length; k++)
            {
                int i = (r & 1) == 0 ? k : variants.Length - 1 - k;
                long start = Stopwatch.GetTimestamp();
                Check(variants[i].Body());
                samples[i].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds / Exits);
            }
        }
        Report($"port-I/O exit round trip, {rounds} interleaved rounds of spin_io({Exits})", variants.Select(v => v.Name).ToArray(), samples);

        // The same without entering the guest: immediate_exit set, every KVM_RUN returns EINTR at once. What is
        // left is the syscall and whatever each caller does around it, so managed overhead stands out.
        var eintr = new (string Name, Func<long> Body)[]
        {
            ("C KVM_RUN→EINTR", () => CReferenceVmm.Check(CReferenceVmm.VmEintr(Exits), "eintr")),
            ("C# raw libc KVM_RUN→EINTR", () => RawEintr(vm)),
            ("C# Vcpu.Run→Interrupted", () => SdkEintr(vm)),
        };
        foreach (var v in eintr) for (int i = 0; i < 20; i++) v.Body();
        var eintrSamples = eintr.Select(_ => new List<double>(rounds)).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < eintr.Length; k++)
            {
                int i = (r & 1) == 0 ? k : eintr.Length - 1 - k;
                long start = Stopwatch.GetTimestamp();
                eintr[i].Body();
                eintrSamples[i].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds / Exits);
            }
        }
        Report($"KVM_RUN with immediate_exit (no guest entry), {rounds} interleaved rounds of {Exits}", eintr.Select(v => v.Name).ToArray(), eintrSamples);

        // A whole call with a single exit besides the return: the per-call cost (registers, header, watchdog,
        // result) next to C's.
        var single = new (string Name, Func<long> Body)[]
        {
            ("C call spin_io(1)", () => CReferenceVmm.Check(CReferenceVmm.VmCall(BenchGuest.Entry, 1, 0), "call")),
            ("C# MicroVm.Call spin_io(1)", () => (long)(vm.Call("spin_io", 1).Value ?? throw new InvalidOperationException("no return"))),
        };
        foreach (var v in single) for (int i = 0; i < 200; i++) Check(v.Body());
        var singleSamples = single.Select(_ => new List<double>(rounds * 10)).ToArray();
        for (int r = 0; r < rounds * 10; r++)
        {
            for (int k = 0; k < single.Length; k++)
            {
                int i = (r & 1) == 0 ? k : single.Length - 1 - k;
                long start = Stopwatch.GetTimestamp();
                Check(single[i].Body());
                singleSamples[i].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }
        }
        Report($"one call with 2 exits (spin_io(1) + return), {rounds * 10} interleaved rounds, per call", single.Select(v => v.Name).ToArray(), singleSamples);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) vm.Call("spin_io", Exits);
        long perLongCall = (GC.GetAllocatedBytesForCurrentThread() - before) / 10;
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) vm.Call("spin_io", 1);
        long perShortCall = (GC.GetAllocatedBytesForCurrentThread() - before) / 10;
        Console.WriteLine($"managed allocation per MicroVm.Call: {perShortCall} B with 2 exits, {perLongCall} B with {Exits + 1} exits " +
            $"(per extra exit: {(perLongCall - perShortCall) / (double)(Exits - 1):F2} B)");
        return 0;
    }

    internal static void Report(string title, string[] names, List<double>[] samples)
    {
        {
            {
            double c = Median(samples[0]);
            Console.WriteLine($"{title}; load {File.ReadAllText("/proc/loadavg").Trim()}");
            Console.WriteLine($"{"variant",-26} {"median per exit",16} {"p25",8} {"p75",8} {"ratio vs C (medians)",21} {"median of per-round ratios",27}");
            for (int i = 0; i < names.Length; i++)
            {
                var s = samples[i];
                var perRound = s.Zip(samples[0], (x, y) => x / y).ToList();
                Console.WriteLine($"{names[i],-26} {Median(s) * 1000,13:F0} ns {Quantile(s, 0.25) * 1000,8:F0} {Quantile(s, 0.75) * 1000,8:F0} {Median(s) / c,21:F3} {Median(perRound),27:F3}");
            }
            Console.WriteLine();
            }
        }
    }

    private static long RawEintr(MicroVm vm)
    {
        int fd = vm.Vcpu.Handle.Number;
        vm.Vcpu.ImmediateExit = true;
        for (int i = 0; i < Exits; i++)
        {
            if (RawIoctl(fd, KvmIoctls.KVM_RUN, 0) == 0 || Marshal.GetLastPInvokeError() != 4) throw new InvalidOperationException("not EINTR");
        }
        vm.Vcpu.ImmediateExit = false;
        return 0;
    }

    private static long SdkEintr(MicroVm vm)
    {
        Vcpu vcpu = vm.Vcpu;
        vcpu.ImmediateExit = true;
        for (int i = 0; i < Exits; i++)
        {
            if (!vcpu.Run().Interrupted) throw new InvalidOperationException("not EINTR");
        }
        vcpu.ImmediateExit = false;
        return 0;
    }

    private static void Check(long result)
    {
        if (result != 42) throw new InvalidOperationException($"spin_io returned {result}");
    }

    private static void Prepare(MicroVm vm)
    {
        ulong rsp = Layout.StackTop - sizeof(ulong);
        vm.Memory.Write(rsp, Layout.Trampoline);
        vm.Vcpu.SetRegs(LongMode.EntryRegs(BenchGuest.Entry, rsp, [Exits]));
        vm.Vcpu.ImmediateExit = false;
    }

    private static long SdkLoop(MicroVm vm)
    {
        Prepare(vm);
        Vcpu vcpu = vm.Vcpu;
        while (true)
        {
            VcpuExit exit = vcpu.Run();
            if (exit.Interrupted) continue;
            if (exit.Reason != KvmExitReason.KVM_EXIT_IO) throw new InvalidOperationException(exit.ToString());
            if (exit.IoPort == Ports.Return) return (long)vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Result));
        }
    }

    private static long RawLoop(MicroVm vm)
    {
        Prepare(vm);
        Vcpu vcpu = vm.Vcpu;
        int fd = vcpu.Handle.Number;
        Span<byte> run = s_runPage!.GetSpan(0, (int)s_runPage.Length);
        while (true)
        {
            if (RawIoctl(fd, KvmIoctls.KVM_RUN, 0) < 0)
            {
                if (Marshal.GetLastPInvokeError() == 4) continue;
                throw new InvalidOperationException($"KVM_RUN errno {Marshal.GetLastPInvokeError()}");
            }
            uint reason = MemoryMarshal.Read<uint>(run[KvmRunLayout.exit_reason..]);
            if (reason != (uint)KvmExitReason.KVM_EXIT_IO) throw new InvalidOperationException($"exit {reason}");
            if (MemoryMarshal.Read<ushort>(run[KvmRunLayout.io_port..]) == Ports.Return)
                return (long)vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Result));
        }
    }

    private static double Median(List<double> s) => Quantile(s, 0.5);

    private static double Quantile(List<double> s, double q)
    {
        var sorted = s.Order().ToArray();
        return sorted[(int)Math.Round(q * (sorted.Length - 1))];
    }
}
