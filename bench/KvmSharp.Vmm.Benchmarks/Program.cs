// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Running;
using KvmSharp.Vmm.Benchmarks;

//   dotnet run -c Release --project bench/KvmSharp.Vmm.Benchmarks --artifacts-path /tmp/kvmsharp-vmm-bench -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(BenchConfig).Assembly).Run(args, BenchConfig.Global);
