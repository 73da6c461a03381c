// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Infrastructure;

/// <summary>
/// The kernels a test body runs on. Every test that takes a kernel name runs once per kernel, so the same body
/// checks the real kernel and keeps the emulator honest.
/// </summary>
public static class Kernels
{
    public const string Linux = "linux";

    /// <summary>Theory data: one row per kernel.</summary>
    public static TheoryData<string> All => new() { Linux };

    public static IKernel Create(string name) => name switch
    {
        Linux => LinuxKernel.Instance,
        _ => throw new ArgumentException($"unknown kernel '{name}'", nameof(name)),
    };

    /// <summary>Why the real kernel cannot be tested here, or null when /dev/kvm opens.</summary>
    public static string? LinuxUnavailableReason { get; } = ProbeLinux();

    private static string? ProbeLinux()
    {
        long rc = LinuxKernel.Instance.Open("/dev/kvm", LinuxConstants.O_RDWR, out KernelFd? fd);
        fd?.Dispose();
        return rc < 0 ? $"/dev/kvm cannot be opened: {ErrnoInfo.NameOf((int)-rc)}" : null;
    }
}
