// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Running;
using KvmSharp.Benchmarks;

// BenchmarkDotNet (the reference numbers):
//   dotnet run -c Release --project bench/KvmSharp.Benchmarks --artifacts-path /tmp/kvmsharp-bench -- --filter '*'
// Interleaved A/B cross-check on a noisy machine:
//   dotnet run -c Release --project bench/KvmSharp.Benchmarks --artifacts-path /tmp/kvmsharp-bench -- --interleaved [rounds]
if (args.Length > 0 && args[0] == "--interleaved")
    return Interleaved.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, BenchConfig.Global);
return 0;
