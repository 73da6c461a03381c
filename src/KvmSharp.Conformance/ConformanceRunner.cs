// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Conformance;

public enum CaseOutcome
{
    Passed,
    Failed,
    Skipped,
}

public sealed record CaseResult(string Name, string Kernel, CaseOutcome Outcome, string? Reason);

/// <summary>Runs cases on a target: skip reasons, failures with their message, and a descriptor-leak check.</summary>
public static class ConformanceRunner
{
    public static CaseResult Run(ConformanceCase @case, KernelTarget target)
    {
        if (target.UnavailableReason is string unavailable)
            return new(@case.Name, target.Name, CaseOutcome.Skipped, unavailable);
        var before = FdSnapshot.Take();
        IKernel? kernel = null;
        try
        {
            kernel = target.CreateKernel(@case.Profile);
            @case.Body(new CaseContext(target, kernel));
            // The emulator's descriptors are its own: they never show in /proc/self/fd.
            if (kernel is EmulatedKernel { OpenFdCount: > 0 } emu)
                return new(@case.Name, target.Name, CaseOutcome.Failed, $"{emu.OpenFdCount} emulated file descriptors leaked");
        }
        catch (SkipCaseException skip)
        {
            return new(@case.Name, target.Name, CaseOutcome.Skipped, skip.Message);
        }
#pragma warning disable CA1031 // a case failure of any kind is reported, never allowed to stop the suite
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return new(@case.Name, target.Name, CaseOutcome.Failed, $"{ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            (kernel as IDisposable)?.Dispose();
        }
        var leaked = FdSnapshot.Take().LeakedSince(before);
        return leaked.Count == 0
            ? new(@case.Name, target.Name, CaseOutcome.Passed, null)
            : new(@case.Name, target.Name, CaseOutcome.Failed, "file descriptors leaked: " + string.Join(", ", leaked));
    }

    public static IEnumerable<CaseResult> RunAll(KernelTarget target, Func<ConformanceCase, bool>? filter = null)
    {
        foreach (var @case in ConformanceSuite.Cases)
        {
            if (filter is null || filter(@case)) yield return Run(@case, target);
        }
    }
}
