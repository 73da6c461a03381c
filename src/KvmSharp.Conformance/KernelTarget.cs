// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Conformance;

/// <summary>A kernel the suite runs on: the real one, or the emulator configured per case.</summary>
public sealed class KernelTarget
{
    private readonly Func<EmulatedProfile, IKernel> _create;

    private KernelTarget(string name, bool isReal, Func<EmulatedProfile, IKernel> create)
    {
        Name = name;
        IsReal = isReal;
        _create = create;
    }

    public string Name { get; }

    /// <summary>True for the host kernel (the truth), false for the emulator.</summary>
    public bool IsReal { get; }

    public static KernelTarget Linux { get; } = new("linux", isReal: true, _ => LinuxKernel.Instance);

    public static KernelTarget Emulated { get; } = new("emulated", isReal: false, EmulatedKernels.Create);

    public static IReadOnlyList<KernelTarget> All { get; } = [Linux, Emulated];

    public static KernelTarget Parse(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"unknown kernel '{name}' (linux, emulated)", nameof(name));

    /// <summary>A kernel for one case (a fresh emulator each time; the one real kernel).</summary>
    public IKernel CreateKernel(EmulatedProfile profile) => _create(profile);

    /// <summary>Why this target cannot run at all here (null when it can).</summary>
    public string? UnavailableReason => IsReal ? LinuxAvailability.Reason : null;

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
