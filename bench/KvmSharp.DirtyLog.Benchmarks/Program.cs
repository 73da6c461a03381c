// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Running;

//   dotnet run -c Release --project bench/KvmSharp.DirtyLog.Benchmarks --artifacts-path /tmp/kvmsharp-dirtylog -- --filter '*'
//   .../KvmSharp.DirtyLog.Benchmarks probe [rounds]   (the same scenarios, C and SDK interleaved: see DirtyLogProbe)
//   .../KvmSharp.DirtyLog.Benchmarks ring [rounds]   (the dirty ring's scenarios, C and SDK interleaved: see DirtyRingProbe)
//   .../KvmSharp.DirtyLog.Benchmarks alignment [rounds]   (GET/CLEAR cost by the bitmap's page offset: see AlignmentProbe)
Console.WriteLine($"dirty-log benchmarks: {KvmSharp.DirtyLog.Benchmarks.DirtyLogVm.MemorySize >> 30} GiB logging slot of anonymous host memory, " +
    $"{Environment.SystemPageSize} B pages; load {File.ReadAllText("/proc/loadavg").Trim()}");
if (args.Length > 0 && args[0] == "alignment") return KvmSharp.DirtyLog.Benchmarks.AlignmentProbe.Run(args);
if (args.Length > 0 && args[0] == "probe") return KvmSharp.DirtyLog.Benchmarks.DirtyLogProbe.Run(args);
if (args.Length > 0 && args[0] == "ring") return KvmSharp.DirtyLog.Benchmarks.DirtyRingProbe.Run(args);
BenchmarkSwitcher.FromAssembly(typeof(BenchConfig).Assembly).Run(args, BenchConfig.Global);
return 0;
