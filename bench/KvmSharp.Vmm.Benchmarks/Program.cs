// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Running;

//   dotnet run -c Release --project bench/KvmSharp.Vmm.Benchmarks --artifacts-path /tmp/kvmsharp-vmm-bench -- --filter '*'
//   dotnet run -c Release --project bench/KvmSharp.Vmm.Benchmarks --artifacts-path /tmp/kvmsharp-vmm-bench -- probe [rounds]
//     (the exit round trip timed interleaved, C and C# call by call, with its layers: see ExitProbe)
//   ... -- hostcall-probe [rounds]  (a guest→host call beside the plain exit, interleaved: see HostCallRoundTripProbe)
//   ... -- lifecycle-probe [rounds]  ((a) setup, (c) create+call+teardown and (d) the pool, interleaved: see LifecycleProbe)
//   ... -- async-probe [rounds]  ((g) CallAsync on the vCPU thread beside Call and C, interleaved: see AsyncCallProbe)
//   ... -- snapshot-probe [rounds] [init-rounds]  ((f) snapshots against create+init, interleaved: see SnapshotProbe)
//   ... -- density-probe [n] [rounds]  (host memory per live micro-VM, C beside C#: see DensityProbe)
// Which guest memory both sides use here (a guest_memfd, or host memory on a kernel without guest_memfd).
Console.WriteLine(KvmSharp.Vmm.Benchmarks.BenchGuest.DescribeMemory());
if (args.Length > 0 && args[0] == "hostcall-probe") return KvmSharp.Vmm.Benchmarks.HostCallRoundTripProbe.Run(args);
if (args.Length > 0 && args[0] == "lifecycle-probe") return KvmSharp.Vmm.Benchmarks.LifecycleProbe.Run(args);
if (args.Length > 0 && args[0] == "snapshot-probe") return KvmSharp.Vmm.Benchmarks.SnapshotProbe.Run(args);
if (args.Length > 0 && args[0] == "async-probe") return KvmSharp.Vmm.Benchmarks.AsyncCallProbe.Run(args);
if (args.Length > 0 && args[0] == "density-probe") return KvmSharp.Vmm.Benchmarks.DensityProbe.Run(args);
if (args.Length > 0 && args[0] == "probe") return KvmSharp.Vmm.Benchmarks.ExitProbe.Run(args);
BenchmarkSwitcher.FromAssembly(typeof(BenchConfig).Assembly).Run(args, BenchConfig.Global);
return 0;
