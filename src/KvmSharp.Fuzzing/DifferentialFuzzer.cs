// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>A call on which the two kernels answered differently, with the shortest sequence found that shows it.</summary>
public sealed record Divergence(int OpIndex, string Op, string Reference, string Candidate, IReadOnlyList<string> Reproducer);

public sealed record FuzzReport(int Ops, int Seed, IReadOnlyList<Divergence> Divergences, TimeSpan Elapsed);

/// <summary>
/// Applies one generated sequence to a reference kernel (the truth: the real one) and a candidate (the
/// emulator), compares every answer, and on a divergence reduces the sequence to a short reproducer. After a
/// divergence both sessions restart, so one run can report several.
/// </summary>
public sealed class DifferentialFuzzer(Func<IKernel> reference, Func<IKernel> candidate)
{
    /// <summary>Longest time spent reducing one divergence.</summary>
    public TimeSpan ReductionBudget { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Stop after this many divergences.</summary>
    public int MaxDivergences { get; init; } = 5;

    /// <summary>Also generate values on which a divergence is already reported (<see cref="ReportedDivergences"/>).</summary>
    public bool IncludeReported { get; init; }

    /// <summary>Calls per session before both restart (bounds live objects and replay cost).</summary>
    public int SessionLength { get; init; } = 400;

    public FuzzReport Run(int ops, int seed)
    {
        var clock = Stopwatch.StartNew();
        var divergences = new List<Divergence>();
        int done = 0;
        int session = 0;
        while (done < ops && divergences.Count < MaxDivergences)
        {
            int length = Math.Min(SessionLength, ops - done);
            var generator = new OpGenerator(SessionSeed(seed, session++), IncludeReported);
            var log = new List<FuzzOp>(length);
            using (var a = new KernelSession(reference()))
            using (var b = new KernelSession(candidate()))
            {
                for (int i = 0; i < length; i++, done++)
                {
                    var op = generator.Next();
                    log.Add(op);
                    string ra = a.Apply(op);
                    string rb = b.Apply(op);
                    generator.Observe(op, ra);
                    if (ra == rb) continue;
                    divergences.Add(new Divergence(done, op.ToString(), ra, rb, Reduce(log).Select(o => o.ToString()).ToList()));
                    done++;
                    break;
                }
            }
        }
        return new FuzzReport(done, seed, divergences, clock.Elapsed);
    }

    /// <summary>
    /// The generator seed of one session: a fixed mix of the run's seed and the session number. (It was
    /// HashCode.Combine, which is randomized per process, so `--seed S` did not repeat a run's calls in another process.)
    /// </summary>
    public static int SessionSeed(int seed, int session)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)session) + 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return (int)(z ^ (z >> 31));
    }

    /// <summary>Replays <paramref name="ops"/> on fresh kernels; true when they still disagree somewhere.</summary>
    public bool Diverges(IReadOnlyList<FuzzOp> ops)
    {
        using var a = new KernelSession(reference());
        using var b = new KernelSession(candidate());
        foreach (var op in ops)
        {
            if (a.Apply(op) != b.Apply(op)) return true;
        }
        return false;
    }

    /// <summary>
    /// Replays <paramref name="ops"/> on fresh kernels; true when they agree on every call but the last and disagree on
    /// the last. Reduction keeps to this, so it cannot slip to another divergence on the way (it did: a vCPU call whose
    /// handle the reduction had removed "reduced" to an unrelated mmap on a closed descriptor).
    /// </summary>
    public bool DivergesOnlyAtLast(IReadOnlyList<FuzzOp> ops)
    {
        using var a = new KernelSession(reference());
        using var b = new KernelSession(candidate());
        for (int i = 0; i < ops.Count; i++)
        {
            bool same = a.Apply(ops[i]) == b.Apply(ops[i]);
            if (i < ops.Count - 1 && !same) return false;
            if (i == ops.Count - 1) return !same;
        }
        return false;
    }

    /// <summary>Delta debugging (ddmin): drop chunks of calls while the divergence remains, within the budget.</summary>
    private List<FuzzOp> Reduce(List<FuzzOp> ops)
    {
        var clock = Stopwatch.StartNew();
        var current = new List<FuzzOp>(ops);
        int chunk = Math.Max(1, current.Count / 2);
        while (chunk >= 1 && clock.Elapsed < ReductionBudget)
        {
            bool removed = false;
            // The last call is the divergent one: keep it.
            for (int start = current.Count - 1 - chunk; start >= 0 && clock.Elapsed < ReductionBudget; start -= chunk)
            {
                var candidate = new List<FuzzOp>(current);
                candidate.RemoveRange(start, Math.Min(chunk, current.Count - 1 - start));
                if (DivergesOnlyAtLast(candidate))
                {
                    current = candidate;
                    removed = true;
                }
            }
            if (!removed) chunk /= 2;
        }
        return current;
    }
}
