// SPDX-License-Identifier: MIT
namespace KvmSharp.Testing;

/// <summary>
/// Snapshots of this process's descriptors (<c>/proc/self/fd</c> entries as "fd -> target") and mappings, to find
/// what a test left open. Exact only while no other test opens kernel objects at the same time.
/// </summary>
public static class KvmFds
{
    /// <summary>The KVM descriptors: /dev/kvm, anon_inode:kvm-vm / kvm-vcpu / [kvm-gmem]…, guest_memfd.</summary>
    public static HashSet<string> Kvm() => Snapshot(IsKvm);

    /// <summary>
    /// Every descriptor a kernel object could be, real or emulated: /dev/kvm, any anon inode, any memfd.
    /// Descriptors the runtime opens (lazily loaded assemblies and the like) are regular files and not listed.
    /// </summary>
    public static HashSet<string> KernelObjects() => Snapshot(IsKernelObject);

    /// <summary>The number of mappings of this process that belong to KVM objects (kvm_run pages, guest_memfd).</summary>
    public static int KvmMappings() => File.ReadLines("/proc/self/maps").Count(l => IsKvmMapping(MappedPath(l)));

    // kvm_run pages (anon_inode:kvm-vcpu:N, or the emulator's /memfd:kvm-vcpu), guest_memfd ([kvm-gmem], the emulator's
    // gmem backing), /dev/kvm; never a file on disk that merely has "kvm" in its folder's name.
    private static bool IsKvmMapping(string path) =>
        path == KvmHost.DevicePath || IsKernelObject(path) && IsKvmOrGmem(path, "kvm");

    /// <summary>
    /// The pathname column of a /proc/self/maps line (after address, perms, offset, dev and inode), so a library
    /// loaded from a folder named like "kvmsharp-…" is not taken for a KVM object.
    /// </summary>
    private static string MappedPath(string line)
    {
        int field = 0, i = 0;
        while (i < line.Length && field < 5)
        {
            while (i < line.Length && line[i] != ' ') i++;
            while (i < line.Length && line[i] == ' ') i++;
            field++;
        }
        return line[i..];
    }

    /// <summary>The entries of <paramref name="after"/> that <paramref name="before"/> did not have.</summary>
    public static List<string> LeakedSince(HashSet<string> before, HashSet<string> after) => after.Except(before).ToList();

    // Only anon inodes and memfds: a file on disk whose path merely contains "gmem" or "kvm" (an artifacts folder
    // such as /tmp/kvmsharp-gmemwrite, where the runtime loads assemblies from) is not a KVM object.
    private static bool IsKvm(string target) =>
        target == KvmHost.DevicePath || target.StartsWith("anon_inode:kvm", StringComparison.Ordinal)
        || target.StartsWith("anon_inode:[kvm", StringComparison.Ordinal) || IsKernelObject(target) && IsKvmOrGmem(target, null);

    /// <summary>guest_memfd (anon_inode:[kvm-gmem], the emulator's gmem backing memfd), or <paramref name="also"/> in the name.</summary>
    private static bool IsKvmOrGmem(string target, string? also) =>
        target.Contains("gmem", StringComparison.Ordinal) || also is not null && target.Contains(also, StringComparison.Ordinal);

    private static bool IsKernelObject(string target) =>
        target == KvmHost.DevicePath || target.StartsWith("anon_inode:", StringComparison.Ordinal) || target.StartsWith("/memfd:", StringComparison.Ordinal);

    private static HashSet<string> Snapshot(Func<string, bool> include)
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
            if (target is not null && include(target)) set.Add($"{Path.GetFileName(path)} -> {target}");
        }
        return set;
    }
}
