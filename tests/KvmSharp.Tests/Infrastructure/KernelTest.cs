// SPDX-License-Identifier: MIT
using KvmSharp.Conformance;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Infrastructure;

/// <summary>
/// Base of tests that open kernel objects: fails the test when it leaves a file descriptor open in this process
/// (every fd must be a disposed SafeHandle by the end).
/// </summary>
public abstract class KernelTest : IDisposable
{
    private readonly HashSet<string> _fdsBefore = OpenFds();

    protected static int PageSize => Environment.SystemPageSize;

    /// <summary>Opens /dev/kvm of <paramref name="kernel"/>; a kernel that cannot run here skips the test with its reason.</summary>
    protected static Kvm Open(string kernel)
    {
        try
        {
            return Kvm.Open(Kernels.Create(kernel));
        }
        catch (SkipCaseException skip)
        {
            throw new SkipException(skip.Message);
        }
    }

    /// <summary>Asserts that <paramref name="action"/> throws a KvmException with <paramref name="errno"/>.</summary>
    protected static KvmException AssertErrno(Errno errno, Action action)
    {
        var ex = Assert.ThrowsAny<KvmException>(action);
        Assert.True(ex.Errno == errno, $"expected {errno}, got {ex.ErrnoName}: {ex.Message}");
        return ex;
    }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        var leaked = OpenFds();
        leaked.ExceptWith(_fdsBefore);
        // Descriptors opened by the runtime itself (e.g. lazily loaded assemblies) are not ours: only count
        // anon inodes and /dev/kvm, which is what KVM objects are.
        var ours = leaked.Where(l => l.Contains("-> anon_inode:", StringComparison.Ordinal) || l.EndsWith("-> /dev/kvm", StringComparison.Ordinal) || l.Contains("-> /memfd:", StringComparison.Ordinal)).ToList();
        Assert.True(ours.Count == 0, "file descriptors leaked: " + string.Join(", ", ours));
    }

    private static HashSet<string> OpenFds()
    {
        var set = new HashSet<string>();
        foreach (string path in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                string? target = new FileInfo(path).LinkTarget;
                set.Add($"{Path.GetFileName(path)} -> {target}");
            }
            catch (IOException)
            {
                // The descriptor used to enumerate the directory is gone by now.
            }
        }
        return set;
    }
}
