// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// Shared by the MSR filter, coalesced MMIO and kvmclock fuzzing tests: what the generator draws of one kind on the
/// emulator, and a short run of ops on both kernels side by side (a VM with two vCPUs, then the ops).
/// </summary>
internal static class NewUapiOps
{
    public static IKernel Emulator() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false));

    /// <summary>The calls of <paramref name="kinds"/> in <paramref name="sessions"/> generated sessions on the emulator.</summary>
    public static List<(FuzzOp Op, string Outcome)> Drawn(int sessions, params OpKind[] kinds) =>
        FuzzSessions.Generate(Emulator, sessions).Where(c => kinds.Contains(c.Op.Kind)).ToList();

    /// <summary>h0 = /dev/kvm, h1 = a VM, h2 and h3 = its vCPUs 0 and 1.</summary>
    public static readonly FuzzOp[] Prefix =
    [
        new(OpKind.OpenKvm, Result: 0),
        new(OpKind.CreateVm, Target: 0, Result: 1),
        new(OpKind.CreateVcpu, Target: 1, A: 0, Result: 2),
        new(OpKind.CreateVcpu, Target: 1, A: 1, Result: 3),
    ];

    /// <summary>Applies <see cref="Prefix"/> and <paramref name="ops"/> to the real kernel and the emulator; every answer must match.</summary>
    public static void AssertAgree(Action<string> log, IEnumerable<FuzzOp> ops)
    {
        using var real = new KernelSession(FuzzKernels.Real());
        using var emulated = new KernelSession(Emulator());
        foreach (var op in Prefix.Concat(ops))
        {
            string expected = real.Apply(op), actual = emulated.Apply(op);
            log($"{op}: {expected}");
            Assert.True(expected == actual, $"{op}\n  linux:    {expected}\n  emulated: {actual}");
        }
    }
}
