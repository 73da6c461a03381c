// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>The accesses an <see cref="MsrFilterRange"/> applies to (KVM_MSR_FILTER_READ / _WRITE).</summary>
[Flags]
public enum MsrFilterAccess : uint
{
    /// <summary>RDMSR.</summary>
    Read = KvmMsrFilter.KVM_MSR_FILTER_READ,

    /// <summary>WRMSR.</summary>
    Write = KvmMsrFilter.KVM_MSR_FILTER_WRITE,

    /// <summary>Both.</summary>
    ReadWrite = Read | Write,
}

/// <summary>What an MSR filter does with an MSR none of its ranges covers (kvm_msr_filter.flags).</summary>
public enum MsrFilterDefault
{
    /// <summary>KVM_MSR_FILTER_DEFAULT_ALLOW: the access goes on as without a filter.</summary>
    Allow,

    /// <summary>KVM_MSR_FILTER_DEFAULT_DENY: the access is denied (needs at least one range).</summary>
    Deny,
}

/// <summary>
/// One range of a KVM_X86_SET_MSR_FILTER (struct kvm_msr_filter_range): for <see cref="Access"/>, MSR
/// <see cref="Base"/> + n (n &lt; <see cref="Count"/>) is allowed when bit n of <see cref="Bitmap"/> is set (byte n / 8,
/// bit n % 8), denied otherwise. The kernel reads BITS_TO_LONGS(Count) 64-bit words of bitmap (at most
/// KVM_MSR_FILTER_MAX_BITMAP_SIZE bytes, i.e. 12 288 MSRs); bytes the bitmap lacks are sent as 0 (denied).
/// </summary>
public sealed record MsrFilterRange(MsrFilterAccess Access, uint Base, uint Count, byte[] Bitmap)
{
    /// <summary>Denies <paramref name="count"/> MSRs from <paramref name="base"/> for <paramref name="access"/>.</summary>
    public static MsrFilterRange Deny(MsrFilterAccess access, uint @base, uint count = 1) =>
        new(access, @base, count, new byte[(count + 7) / 8]);

    /// <summary>Allows <paramref name="count"/> MSRs from <paramref name="base"/> for <paramref name="access"/>.</summary>
    public static MsrFilterRange Allow(MsrFilterAccess access, uint @base, uint count = 1)
    {
        var bitmap = new byte[(count + 7) / 8];
        for (uint n = 0; n < count; n++) bitmap[n / 8] |= (byte)(1 << (int)(n % 8));
        return new(access, @base, count, bitmap);
    }

    /// <summary>Whether the range's bit for <paramref name="msr"/> is set (false outside the range).</summary>
    public bool Allows(uint msr)
    {
        uint n = unchecked(msr - Base);
        return msr >= Base && n < Count && n / 8 < (uint)Bitmap.Length && (Bitmap[n / 8] & (1 << (int)(n % 8))) != 0;
    }

    /// <summary>
    /// The bitmap as the kernel reads it: <c>BITS_TO_LONGS(Count)</c> words, <see cref="Bitmap"/> copied in and the
    /// rest 0. Capped at one word more than KVM_MSR_FILTER_MAX_BITMAP_SIZE allows, so an oversized range still
    /// reaches the kernel's check instead of a huge allocation.
    /// </summary>
    internal ulong[] KernelBitmap()
    {
        long words = Math.Min(((long)Count + 63) / 64, KvmMsrFilter.KVM_MSR_FILTER_MAX_BITMAP_SIZE / 8 + 1);
        var result = new ulong[words];
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan());
        Bitmap.AsSpan(0, Math.Min(Bitmap.Length, bytes.Length)).CopyTo(bytes);
        return result;
    }
}
