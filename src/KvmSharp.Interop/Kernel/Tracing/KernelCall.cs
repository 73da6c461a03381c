// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel.Tracing;

/// <summary>
/// One call through a <see cref="TracingKernel"/>, strace-style: what was asked (<see cref="Call"/>, with descriptors
/// named by what created them and ioctl structs decoded), the raw result and, for a failure, the errno's name.
/// </summary>
/// <param name="Call">E.g. <c>ioctl(vm#1, KVM_CREATE_GUEST_MEMFD, {size=0x200000, flags=MMAP|INIT_SHARED})</c>.</param>
/// <param name="Result">The raw syscall result: &gt;= 0, or -errno.</param>
/// <param name="Outcome">What the result means, e.g. <c>gmem#1</c> for a new descriptor, an exit reason after KVM_RUN,
/// a struct the kernel wrote back; empty when the number says it all.</param>
/// <param name="Elapsed">Wall time of the call.</param>
public sealed record KernelCall(string Call, long Result, string Outcome, TimeSpan Elapsed)
{
    /// <summary>True when the call failed (<see cref="Result"/> is -errno).</summary>
    public bool Failed => Result is < 0 and >= -4095;

    /// <summary>The errno's name when <see cref="Failed"/>, else null.</summary>
    public string? ErrnoName => Failed ? ErrnoInfo.NameOf((int)-Result) : null;

    /// <summary>The result is a new descriptor whose number is left out of <see cref="ToString"/> (its name stays).</summary>
    public bool HidesResult { get; init; }

    /// <summary>The call as one line: <c>call = result</c>, then the errno or the outcome.</summary>
    public override string ToString()
    {
        string result = Failed ? $"-1 {ErrnoName} ({ErrnoInfo.Describe((int)-Result)})" : HidesResult ? "fd" : $"{Result}";
        return Outcome.Length == 0 ? $"{Call} = {result}" : $"{Call} = {result} {Outcome}";
    }
}
