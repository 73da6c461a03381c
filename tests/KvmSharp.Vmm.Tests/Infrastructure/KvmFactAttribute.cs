// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>A fact that needs a usable /dev/kvm; skipped, with the reason, when it cannot be opened.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (Host.KvmUnavailableReason is string reason) Skip = reason;
    }
}

/// <summary>A theory that needs a usable /dev/kvm.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (Host.KvmUnavailableReason is string reason) Skip = reason;
    }
}

public static class Host
{
    public static string? KvmUnavailableReason { get; } = Probe();

    /// <summary>/dev/kvm is kvm_pvm (software nested KVM, "PVM"), whose answers to invalid vCPU state differ from VMX/SVM.</summary>
    public static bool IsKvmPvm { get; } = Directory.Exists("/sys/module/kvm_pvm");

    private static string? Probe()
    {
        try
        {
            using var kvm = Kvm.Open();
            return null;
        }
        catch (KvmException e)
        {
            return $"/dev/kvm cannot be opened: {e.ErrnoName}";
        }
    }

    /// <summary>The KVM-related descriptors of this process: /dev/kvm, anon_inode:kvm-vm / kvm-vcpu / [kvm-gmem]…</summary>
    public static HashSet<string> KvmFds()
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (string path in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(path).LinkTarget;
            }
            catch (IOException)
            {
                continue; // the descriptor that listed the directory is gone by now
            }
            if (target is not null && (target == "/dev/kvm" || target.StartsWith("anon_inode:kvm", StringComparison.Ordinal)
                || target.StartsWith("anon_inode:[kvm", StringComparison.Ordinal) || target.Contains("gmem", StringComparison.Ordinal)))
                set.Add($"{Path.GetFileName(path)} -> {target}");
        }
        return set;
    }

    /// <summary>The number of mappings of this process that belong to KVM objects (kvm_run pages, guest_memfd).</summary>
    public static int KvmMappings() =>
        File.ReadLines("/proc/self/maps").Count(l => l.Contains("kvm", StringComparison.Ordinal) || l.Contains("gmem", StringComparison.Ordinal));
}
