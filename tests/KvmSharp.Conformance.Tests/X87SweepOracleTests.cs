// SPDX-License-Identifier: MIT
using KvmSharp.Conformance.Cases;

namespace KvmSharp.Conformance.Tests;

/// <summary>The x87 sweep's oracle, beside the SSE ones (the same probe runner: build with gcc, run, compare every digest).</summary>
public sealed partial class SseSweepOracleTests
{
    /// <summary>Oracles/x87_sweep.c: the x87 loads, stores, arithmetic and compares of <see cref="X87ArithmeticCases"/>.</summary>
    [SkippableFact]
    public void The_x87_sweep_digests_are_what_this_cpu_computes() =>
        AssertProbePrints("x87_sweep", X87ArithmeticCases.SweepOracleDigests);
}
