// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/KvmSharp.Emulation.Benchmarks --artifacts-path /tmp/kvmsharp-bench -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(BenchConfig).Assembly).Run(args, BenchConfig.Global);
