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
    private readonly HashSet<string> _fdsBefore = KvmFds.KernelObjects();

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

    /// <summary>
    /// Skips the test, saying why, when <paramref name="kvm"/>'s kernel has no guest_memfd, or only the 6.8–6.17 kind
    /// (no GUEST_MEMFD_FLAG_MMAP): the SDK's guest_memfd tests map the file.
    /// </summary>
    protected static void RequireGuestMemfd(Kvm kvm)
    {
        Skip.IfNot(kvm.SupportsGuestMemfd, Kvm.NoGuestMemfdReason);
        Skip.IfNot(kvm.SupportedGuestMemfdFlags.HasFlag(GuestMemfdFlags.Mmap),
            "this kernel's guest_memfd predates the mmap series (KVM_CAP_GUEST_MEMFD_FLAGS has no MMAP: 6.8–6.17 rules)");
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
        // Only anon inodes, memfds and /dev/kvm, which is what kernel objects are: descriptors opened by the runtime
        // itself (e.g. lazily loaded assemblies) are not ours.
        var ours = KvmFds.LeakedSince(_fdsBefore, KvmFds.KernelObjects());
        Assert.True(ours.Count == 0, "file descriptors leaked: " + string.Join(", ", ours));
    }
}
