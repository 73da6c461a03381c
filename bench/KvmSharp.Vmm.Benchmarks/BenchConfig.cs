// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// The shared short in-process job (bench/Shared/BenchConfig.cs) with 15 measured iterations: the exit round trip is
/// short and noisy. Ratio = C# time / C time: C is the baseline of every class.
/// </summary>
public sealed class VmmBenchConfig : BenchConfig
{
    public VmmBenchConfig()
        : base(iterationCount: 15)
    {
    }
}
