// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance;

/// <summary>Marks a static method <c>void Case(CaseContext ctx)</c> as a conformance case.</summary>
/// <param name="source">Where the case comes from: the upstream test file and function, or the rule's source.</param>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ConformanceCaseAttribute(string source) : Attribute
{
    public string Source { get; } = source;

    /// <summary>What the emulated target must be configured with for this case (the real kernel is what it is).</summary>
    public EmulatedProfile Profile { get; init; } = EmulatedProfile.LikeThisHost;
}

/// <summary>Emulator configurations a case can ask for.</summary>
public enum EmulatedProfile
{
    /// <summary>The preset that reproduces this host's kernel: the cases that both kernels can run.</summary>
    LikeThisHost,
    /// <summary>x86_64 with every VM type and the v8 in-place conversion series enabled.</summary>
    X86InPlaceConversion,
    /// <summary>x86_64 with every VM type, 6.18 rules (per-VM memory attributes).</summary>
    X86,
    /// <summary>arm64 (mainline 6.18, EmulatorConfig.Arm64()): the arm64 guest cases.</summary>
    Arm64,
}
