// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_RUN with a wall-clock limit for tests: a guest that never exits (a program that runs on past its end once an
/// instruction it stopped on starts to execute, an exception loop) fails its test with a message after
/// <see cref="Limit"/> instead of hanging the whole run. The limit is far above any test's real run time (the slowest
/// guests here run for a few seconds under load), so it never decides a passing test.
/// </summary>
internal static class BoundedRun
{
    /// <summary>How long one KVM_RUN of a test may take unless the test says otherwise.</summary>
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    /// <summary>
    /// <see cref="KvmSharp.Vcpu.Run"/>, stopped by <see cref="KvmSharp.Vcpu.Kick"/> after <paramref name="limit"/>
    /// (<see cref="Limit"/> when null) and then failed. An interruption the test caused itself (its own Kick or signal)
    /// comes back as the exit it is.
    /// </summary>
    public static VcpuExit RunBounded(this KvmSharp.Vcpu vcpu, TimeSpan? limit = null)
    {
        var within = limit ?? Limit;
        var gate = new Lock();
        bool returned = false, fired = false;
        // The callback kicks only while Run has not returned (checked under the lock), so a late timer cannot leave
        // immediate_exit set behind the test's back.
        using var timer = new Timer(_ =>
        {
            lock (gate)
            {
                if (returned) return;
                fired = true;
                vcpu.Kick();
            }
        }, null, within, Timeout.InfiniteTimeSpan);
        var exit = vcpu.Run();
        lock (gate) returned = true;
        if (!fired) return exit;
        vcpu.ImmediateExit = false;
        if (!exit.Interrupted) return exit; // finished just as the limit struck: the run was within it
        Assert.Fail($"vCPU {vcpu.Id}: KVM_RUN did not return within {within.TotalSeconds:0.###} s (a guest without an exit path?)");
        return exit;
    }
}
