// SPDX-License-Identifier: MIT
namespace KvmSharp.Tests.Infrastructure;

/// <summary>A theory over kernels; skipped, with the reason printed, when /dev/kvm is unusable on this machine.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (Kernels.LinuxUnavailableReason is string reason) Skip = reason;
    }
}

/// <summary>A fact that needs the real /dev/kvm; skipped with the reason when it is unusable.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (Kernels.LinuxUnavailableReason is string reason) Skip = reason;
    }
}
