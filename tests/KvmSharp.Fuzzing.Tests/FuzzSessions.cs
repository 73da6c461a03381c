// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>Call sequences as DifferentialFuzzer makes them, for tests that look at what a kind of call does.</summary>
internal static class FuzzSessions
{
    /// <summary>
    /// <paramref name="sessions"/> sessions of 400 calls at seed 1 on fresh kernels: every call's kind, arguments and
    /// outcome. <paramref name="afterSession"/> sees each session's generator when its calls are done.
    /// </summary>
    public static List<(FuzzOp Op, string Outcome)> Generate(Func<IKernel> kernel, int sessions, Action<OpGenerator>? afterSession = null)
    {
        var calls = new List<(FuzzOp, string)>();
        for (int n = 0; n < sessions; n++)
        {
            var generator = new OpGenerator(DifferentialFuzzer.SessionSeed(1, n));
            using var session = new KernelSession(kernel());
            for (int i = 0; i < 400; i++)
            {
                var op = generator.Next();
                string outcome = session.Apply(op);
                generator.Observe(op, outcome);
                calls.Add((op, outcome));
            }
            afterSession?.Invoke(generator);
        }
        return calls;
    }
}
