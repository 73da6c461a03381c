// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// CPrograms/kvm_transcript.c — ~370 uAPI steps, valid and invalid, each printed with its result and what it read
/// back — on the real kernel and, through <c>kvmsharp exec</c>, on the emulated kernel like this host: the same
/// transcript, step for step, but for the differences named below, each with its reason. The C program sees the
/// emulated kernel through the preload bridge, so this checks the bridge (descriptors, struct copies, EFAULT paths,
/// fcntl/dup/poll on the descriptors) and the emulator's "like this host" preset together.
/// </summary>
public sealed class KvmTranscriptTests
{
    private static readonly CProgram Transcript = CProgram.Get("kvm_transcript.c");

    /// <summary>A step (a line at column 0, up to its ": ") or a line inside one (indented) that may differ, and why.</summary>
    private sealed record Known(string Prefix, string Reason);

    private static readonly Known[] KnownDifferences =
    [
        new("readlink(/proc/self/fd/",
            "the bridge's descriptors are a /dev/null and eventfds the library reserved; /proc/self/fd names them so (docs/exec.md, Limits)"),
        new("  cpuid 00000001.0",
            "KVM_GET_SUPPORTED_CPUID: the emulator offers the SSE3–SSE4.2/AVX/F16C/FMA bits its interpreter runs, which a VMM copies into its guests' CPUID (X86CpuModel.FromSupportedCpuid); kvm_pvm lists fewer and adds them back at KVM_SET_CPUID2"),
        new("  cpuid 00000007.0",
            "KVM_GET_SUPPORTED_CPUID: the BMI1/AVX2/BMI2 bits the interpreter runs (as leaf 1)"),
        new("  cpuid 80000001.0",
            "KVM_GET_SUPPORTED_CPUID: ABM/LZCNT, which the interpreter runs (as leaf 1)"),
        new("KVM_GET_CPUID2(nent=supported+8)",
            "kvm_pvm rewrites leaves 1, 7.0, 7.1 and 0xD.1 at KVM_SET_CPUID2 with host features the interpreter does not run (AES, the AVX-512 family, SHA …): HostDeviations.KvmPvmSetCpuidRewritesLeaves"),
    ];

    [KvmFact]
    public void The_emulated_kernel_like_this_host_answers_every_step_as_the_real_one()
    {
        Skip.If(Transcript.Unavailable is not null, Transcript.Unavailable);
        var real = ExecRun.Of(["--kernel", "linux"], Transcript.Executable!);
        var emulated = ExecRun.Of(["--kernel", "emulated"], Transcript.Executable!);
        Assert.True(real.ExitCode == 0 && real.Stderr.Length == 0, real.ToString());
        Assert.True(emulated.ExitCode == 0 && emulated.Stderr.Length == 0, emulated.ToString());
        var realSteps = Steps(real.Stdout);
        var emulatedSteps = Steps(emulated.Stdout);
        Assert.True(realSteps.Count > 250, $"only {realSteps.Count} steps ran\n{real}");
        Assert.Equal(realSteps.Select(s => s.Key), emulatedSteps.Select(s => s.Key));
        var unexplained = new List<string>();
        for (int i = 0; i < realSteps.Count; i++)
        {
            var (r, e) = (realSteps[i], emulatedSteps[i]);
            if (r.Lines.SequenceEqual(e.Lines) || IsKnown(r.Lines[0])) continue;
            if (r.Lines.Length != e.Lines.Length)
            {
                unexplained.Add($"{r.Key}: real\n  {string.Join("\n  ", r.Lines)}\nemulated\n  {string.Join("\n  ", e.Lines)}");
                continue;
            }
            for (int j = 0; j < r.Lines.Length; j++)
                if (r.Lines[j] != e.Lines[j] && !IsKnown(r.Lines[j])) unexplained.Add($"real:     {r.Lines[j]}\nemulated: {e.Lines[j]}");
        }
        Assert.True(unexplained.Count == 0, $"{unexplained.Count} unexplained difference(s):\n{string.Join("\n", unexplained)}");
        // A known difference whose step is gone from the program would excuse nothing: drop it.
        string[] realLines = real.Lines;
        Assert.All(KnownDifferences, k => Assert.True(realLines.Any(l => l.StartsWith(k.Prefix, StringComparison.Ordinal)),
            $"no step '{k.Prefix}' in the transcript any more ({k.Reason})"));
    }

    [KvmFact]
    public void Tracing_the_real_kernel_shows_its_calls_and_changes_none_of_its_answers()
    {
        Skip.If(Transcript.Unavailable is not null, Transcript.Unavailable);
        var plain = ExecRun.Of(["--kernel", "linux"], Transcript.Executable!);
        var traced = ExecRun.Of(["--kernel", "linux", "--trace"], Transcript.Executable!);
        Assert.True(traced.ExitCode == 0, traced.ToString());
        // Through the bridge the real kernel gets the program's own pointers: every answer is the same.
        Assert.Equal(plain.Stdout, traced.Stdout);
        string[] trace = traced.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(trace, l => l.StartsWith("open(\"/dev/kvm\"", StringComparison.Ordinal));
        Assert.Contains(trace, l => l.Contains("KVM_CREATE_VM", StringComparison.Ordinal) && l.EndsWith("vm#1", StringComparison.Ordinal));
        // Descriptors the program duplicates or gets in a struct are traced too.
        Assert.Contains(trace, l => l.StartsWith("dup(vm#", StringComparison.Ordinal));
        Assert.Contains(trace, l => l.StartsWith("ioctl(dup(vm#", StringComparison.Ordinal) && l.Contains("KVM_CHECK_EXTENSION", StringComparison.Ordinal));
        Assert.Contains(trace, l => l.Contains(", KVM_CREATE_DEVICE, ", StringComparison.Ordinal) && l.EndsWith("device#1", StringComparison.Ordinal));
        Assert.Contains(trace, l => l.StartsWith("ioctl(device#1, KVM_HAS_DEVICE_ATTR, ", StringComparison.Ordinal));
        Assert.Contains(trace, l => l.StartsWith("close(device#1)", StringComparison.Ordinal));
        // A struct the program passed half-unmapped goes to the kernel as its pointer, and the kernel refuses it.
        Assert.Contains(trace, l => l.StartsWith("ioctl(vcpu#1, KVM_SET_REGS, ", StringComparison.Ordinal) && l.EndsWith("EFAULT (Bad address)", StringComparison.Ordinal));
    }

    private static bool IsKnown(string line) => KnownDifferences.Any(k => line.StartsWith(k.Prefix, StringComparison.Ordinal));

    /// <summary>The transcript as steps: a line at column 0 (its key is the text before ": ") and the indented lines after it.</summary>
    private static List<(string Key, string[] Lines)> Steps(string transcript)
    {
        var steps = new List<(string Key, string[] Lines)>();
        var lines = new List<string>();
        foreach (string line in transcript.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!line.StartsWith(' ') && lines.Count > 0)
            {
                steps.Add(Step(lines));
                lines.Clear();
            }
            lines.Add(line);
        }
        if (lines.Count > 0) steps.Add(Step(lines));
        return steps;

        static (string, string[]) Step(List<string> lines)
        {
            int colon = lines[0].IndexOf(": ", StringComparison.Ordinal);
            return (colon < 0 ? lines[0] : lines[0][..colon], [.. lines]);
        }
    }
}
