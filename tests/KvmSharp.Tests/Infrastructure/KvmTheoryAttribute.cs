// SPDX-License-Identifier: MIT
namespace KvmSharp.Tests.Infrastructure;

/// <summary>
/// A theory over kernels. Skipped, with the reason printed, when /dev/kvm is unusable on this machine; a body that
/// calls <c>Skip.If</c> (a capability the kernel lacks) is reported as skipped, not passed.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmTheoryAttribute : SkippableTheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (Kernels.LinuxUnavailableReason is string reason) Skip = reason;
    }
}
