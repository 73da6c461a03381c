// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance;

/// <summary>
/// The KVM descriptors of this process (/proc/self/fd entries pointing at /dev/kvm, anon inodes or memfds), to
/// find descriptors a case left open. Cases run one at a time for this to be exact.
/// </summary>
internal sealed class FdSnapshot
{
    private readonly HashSet<string> _entries;

    private FdSnapshot(HashSet<string> entries) => _entries = entries;

    public static FdSnapshot Take()
    {
        var set = new HashSet<string>();
        foreach (string path in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(path).LinkTarget;
            }
            catch (IOException)
            {
                continue; // the descriptor used to read the directory is gone by now
            }
            if (target is null) continue;
            if (target == "/dev/kvm" || target.StartsWith("anon_inode:", StringComparison.Ordinal) || target.StartsWith("/memfd:", StringComparison.Ordinal))
                set.Add($"{Path.GetFileName(path)} -> {target}");
        }
        return new FdSnapshot(set);
    }

    public List<string> LeakedSince(FdSnapshot before) => _entries.Where(e => !before._entries.Contains(e)).ToList();
}
