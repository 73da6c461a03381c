// SPDX-License-Identifier: MIT
namespace KvmSharp.Testing;

/// <summary>
/// A fact that needs a usable /dev/kvm: skipped, with the reason printed, when it cannot be opened. A body that
/// calls <c>Skip.If</c> (a capability the kernel lacks) is reported as skipped, not passed.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmFactAttribute : SkippableFactAttribute
{
    public KvmFactAttribute()
    {
        if (KvmHost.UnavailableReason is string reason) Skip = reason;
    }
}

/// <summary>A theory that needs a usable /dev/kvm; skipped like <see cref="KvmFactAttribute"/>.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmTheoryAttribute : SkippableTheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (KvmHost.UnavailableReason is string reason) Skip = reason;
    }
}
