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
    /// <summary>Runs <paramref name="case"/> on <paramref name="target"/>.</summary>
    /// <param name="case">The case.</param>
    /// <param name="target">The kernel.</param>
    /// <param name="enforceRequirement">
    /// False runs the body even when the kernel does not meet the case's <see cref="ConformanceCase.Requires"/>: to show
    /// that the requirement is needed (the case then fails or skips itself).
    /// </param>
    public static CaseResult Run(ConformanceCase @case, KernelTarget target, bool enforceRequirement = true)
    {
        ArgumentNullException.ThrowIfNull(@case);
        ArgumentNullException.ThrowIfNull(target);
        if (target.UnavailableReason is string unavailable)
            return new(@case.Name, target.Name, CaseOutcome.Skipped, unavailable);
        var before = FdSnapshot.Take();
        IKernel? kernel = null;
        try
        {
            kernel = target.CreateKernel(@case.Profile);
            // Decided before the case runs, from what the kernel reports, not from how the case fails.
            if (enforceRequirement && KernelRequirements.Unmet(@case.Requires, kernel) is string unmet)
            {
                return target.SkipsUnmetRequirements
                    ? new(@case.Name, target.Name, CaseOutcome.Skipped, unmet)
                    : new(@case.Name, target.Name, CaseOutcome.Failed, $"the emulator profile {@case.Profile} does not meet the case's requirement ({@case.Requires}): {unmet}");
            }
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
