// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Conformance;

/// <summary>A kernel the suite runs on: the real one, or the emulator configured per case.</summary>
public sealed class KernelTarget
{
    private readonly Func<EmulatedProfile, IKernel> _create;
    private readonly Func<string?> _unavailable;

    private KernelTarget(string name, bool isReal, bool skipsUnmetRequirements, Func<EmulatedProfile, IKernel> create, Func<string?> unavailable)
    {
        Name = name;
        IsReal = isReal;
        SkipsUnmetRequirements = skipsUnmetRequirements;
        _create = create;
        _unavailable = unavailable;
    }

    public string Name { get; }

    /// <summary>True for the host kernel (the truth), false for the emulator.</summary>
    public bool IsReal { get; }

    /// <summary>
    /// True when a case whose <see cref="KernelRequirement"/> this kernel does not meet is skipped (the real kernel is
    /// what it is); false when that is a failure (the emulator's profile was chosen for the case).
    /// </summary>
    public bool SkipsUnmetRequirements { get; }

    public static KernelTarget Linux { get; } = new("linux", isReal: true, skipsUnmetRequirements: true, _ => LinuxKernel.Instance, () => LinuxAvailability.Reason);

    public static KernelTarget Emulated { get; } = new("emulated", isReal: false, skipsUnmetRequirements: false, EmulatedKernels.Create, () => null);

    public static IReadOnlyList<KernelTarget> All { get; } = [Linux, Emulated];

    /// <summary>
    /// The emulator standing in for a host kernel, e.g. this host built without CONFIG_KVM_GUEST_MEMFD on a machine
    /// that has it: like the real kernel it skips cases whose requirement it does not meet, but it is not the truth
    /// (<see cref="IsReal"/> is false, so no host deviation applies). For tests of the suite itself.
    /// </summary>
    public static KernelTarget EmulatedHost(string name, Func<EmulatedProfile, IKernel> create) =>
        new(name, isReal: false, skipsUnmetRequirements: true, create, () => null);

    /// <summary>
    /// The emulator standing in for a host of an older release (<see cref="EmulatedKernels.Create(EmulatedProfile, KernelGeneration)"/>):
    /// what the suite says on such a host, cases that do not apply there skipped with the reason.
    /// </summary>
    public static KernelTarget EmulatedRelease(KernelGeneration generation) =>
        EmulatedHost($"emulated (Linux {generation.Release()})", profile => EmulatedKernels.Create(profile, generation));

    public static KernelTarget Parse(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"unknown kernel '{name}' (linux, emulated)", nameof(name));

    /// <summary>A kernel for one case (a fresh emulator each time; the one real kernel).</summary>
    public IKernel CreateKernel(EmulatedProfile profile) => _create(profile);

    /// <summary>Why this target cannot run at all here (null when it can).</summary>
    public string? UnavailableReason => _unavailable();

    public override string ToString() => Name;
}

/// <summary>Whether /dev/kvm can be opened on this machine.</summary>
internal static class LinuxAvailability
{
    public static string? Reason { get; } = Probe();

    private static string? Probe()
    {
        long rc = LinuxKernel.Instance.Open(Kvm.DefaultPath, LinuxConstants.O_RDWR, out KernelFd? fd);
        fd?.Dispose();
        return rc < 0 ? $"{Kvm.DefaultPath} cannot be opened: {ErrnoInfo.NameOf((int)-rc)} ({ErrnoInfo.Describe((int)-rc)})" : null;
    }
}
