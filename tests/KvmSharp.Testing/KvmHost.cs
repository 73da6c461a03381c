// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Testing;

/// <summary>What this machine's KVM can do for the tests: whether /dev/kvm opens, and which flavour it is.</summary>
public static class KvmHost
{
    public const string DevicePath = "/dev/kvm";

    /// <summary>Why /dev/kvm cannot be opened here (errno name and description), or null when it can.</summary>
    public static string? UnavailableReason { get; } = Probe();

    /// <summary>True when this machine has a usable /dev/kvm.</summary>
    public static bool IsAvailable => UnavailableReason is null;

    /// <summary>/dev/kvm is kvm_pvm (software nested KVM, "PVM"), whose answers to invalid vCPU state differ from VMX/SVM.</summary>
    public static bool IsKvmPvm { get; } = Directory.Exists("/sys/module/kvm_pvm");

    private static string? Probe()
    {
        long rc = LinuxKernel.Instance.Open(DevicePath, LinuxConstants.O_RDWR, out KernelFd? fd);
        fd?.Dispose();
        return rc < 0 ? $"{DevicePath} cannot be opened: {ErrnoInfo.NameOf((int)-rc)} ({ErrnoInfo.Describe((int)-rc)})" : null;
    }
}
