// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static KvmSharp.Abi.KvmMsrFilter;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.MsrFilter"/> draws: KVM_X86_SET_MSR_FILTER (arch/x86/kvm/x86.c kvm_vm_ioctl_set_msr_filter,
/// kvm_add_msr_filter) with a struct kvm_msr_filter drawn from a seed — unknown filter flags, DEFAULT_DENY with and
/// without ranges, up to all 16 ranges with READ/WRITE/none/unknown flags, nmsrs 0, small, the largest bitmap
/// (0x600 bytes) and one MSR more, bitmaps in this process, at NULL, in the kernel half or running into a PROT_NONE
/// page — a bad pointer for the struct itself, and KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR) with a reason mask
/// valid or not. Only the errno is observable here; what a filter does is what <see cref="OpKind.MsrFilterGuestRun"/>
/// shows.
/// </summary>
internal static class MsrFilterOps
{
    public const int Set = 0, BadPointer = 1, UserSpaceMsr = 2;

    /// <summary>Range bases: the guest runs' MSRs, x2APIC (never filtered), 0, near the top (base + nmsrs wraps).</summary>
    private static readonly uint[] s_bases =
    [
        0, 0x11, 0x12, 0x174, 0x800, 0x808, 0xC000_0080, 0xC000_0081, 0x4B56_4D00, 0x4B56_4D01, 0x1234_5678, 0xFFFF_FFF0,
    ];

    /// <summary>Where a range's bitmap points (the session's pinned buffer or its dirty-log scratch pages).</summary>
    internal enum BitmapAt { Buffer, Null, KernelHalf, ReadOnly, Guard, StraddleGuard }

    /// <summary>The filter of seed <paramref name="seed"/>, bitmaps in <paramref name="buffer"/> (16 × 0x600 bytes) or at <paramref name="scratch"/>.</summary>
    public static kvm_msr_filter Draw(ulong seed, PinnedArray<byte> buffer, DirtyLogScratch? scratch, bool validPointers = false)
    {
        var rng = new Random(unchecked((int)seed ^ (int)(seed >> 32) ^ 0x5F11));
        var filter = new kvm_msr_filter
        {
            flags = rng.Next(10) switch { < 5 => KVM_MSR_FILTER_DEFAULT_ALLOW, < 9 => KVM_MSR_FILTER_DEFAULT_DENY, _ => 1u << rng.Next(1, 32) },
        };
        int used = rng.Next(8) switch { 0 => 0, 1 => KVM_MSR_FILTER_MAX_RANGES, _ => rng.Next(1, 5) };
        rng.NextBytes(buffer.Span);
        for (int n = 0; n < used; n++)
        {
            // Random slots, so unused ones (nmsrs 0) lie between and before used ones.
            int i = used == KVM_MSR_FILTER_MAX_RANGES ? n : rng.Next(KVM_MSR_FILTER_MAX_RANGES);
            ref var r = ref filter.ranges[i];
            r.flags = rng.Next(12) switch
            {
                < 3 => KVM_MSR_FILTER_READ,
                < 6 => KVM_MSR_FILTER_WRITE,
                < 10 => KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
                10 => 0,
                _ => 1u << rng.Next(2, 32) | (uint)rng.Next(4),
            };
            r.nmsrs = rng.Next(10) switch
            {
                0 => 0,
                1 => KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8,             // the largest bitmap
                2 => KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8 + 1,         // one long more: EINVAL
                3 => uint.MaxValue - (uint)rng.Next(64),             // BITS_TO_LONGS in size_t: no wrap, EINVAL
                _ => (uint)rng.Next(1, 130),
            };
            r.@base = rng.Next(6) == 0 ? (uint)rng.Next() : s_bases[rng.Next(s_bases.Length)] - (uint)rng.Next(3);
            var at = validPointers || rng.Next(8) != 0 ? BitmapAt.Buffer : (BitmapAt)rng.Next(1, 6);
            r.bitmap = at switch
            {
                BitmapAt.Buffer => buffer.Address + (ulong)(i * KVM_MSR_FILTER_MAX_BITMAP_SIZE),
                BitmapAt.Null => 0,
                BitmapAt.KernelHalf => 0xFFFF_8000_0000_0000,
                BitmapAt.ReadOnly => scratch?.Address(DirtyBitmapAt.ReadOnly, 0) ?? 0,
                BitmapAt.Guard => scratch?.Address(DirtyBitmapAt.Guard, 0) ?? 0,
                _ => scratch?.Address(DirtyBitmapAt.StraddleGuard, 0) ?? 0,
            };
        }
        return filter;
    }

    /// <summary>A pinned buffer for every range's bitmap (filled by <see cref="Draw"/>).</summary>
    public static PinnedArray<byte> NewBuffer() => new(KVM_MSR_FILTER_MAX_RANGES * KVM_MSR_FILTER_MAX_BITMAP_SIZE, 64);

    /// <summary>A reason mask for KVM_CAP_X86_USER_SPACE_MSR: mostly valid (0..7), now and then with an unknown bit.</summary>
    public static ulong ReasonMask(Random rng) => rng.Next(8) switch
    {
        0 => 1UL << rng.Next(3, 64) | (uint)rng.Next(8),
        1 => (ulong)rng.NextInt64(),
        _ => (ulong)rng.Next(8),
    };

    public static string Apply(IKernel kernel, KernelFd fd, FuzzOp op, Func<DirtyLogScratch> scratch, Func<long, string> describe)
    {
        switch (op.E)
        {
            case BadPointer:
                return describe(kernel.Ioctl(fd, KVM_X86_SET_MSR_FILTER, (op.A & 1) == 0 ? 0UL : 0xFFFF_8000_0000_0000UL));
            case UserSpaceMsr:
            {
                var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X86_USER_SPACE_MSR, flags = (uint)op.B };
                cap.args[0] = op.A;
                cap.args[1] = op.C;
                return describe(kernel.Ioctl(fd, KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap)));
            }
            default:
            {
                var buffer = NewBuffer();
                var filter = Draw(op.A, buffer, scratch());
                long rc = kernel.Ioctl(fd, KVM_X86_SET_MSR_FILTER, Bytes(ref filter));
                GC.KeepAlive(buffer);
                return describe(rc);
            }
        }
    }

    internal static string Describe(FuzzOp op, string target) => op.E switch
    {
        BadPointer => $"KVM_X86_SET_MSR_FILTER({target}, {((op.A & 1) == 0 ? "NULL" : "kernel pointer")})",
        UserSpaceMsr => $"KVM_ENABLE_CAP({target}, KVM_CAP_X86_USER_SPACE_MSR, flags=0x{op.B:X}, args=0x{op.A:X}, 0x{op.C:X})",
        _ => $"KVM_X86_SET_MSR_FILTER({target}, {Text(op.A)})",
    };

    /// <summary>The filter of a seed in words (for reproducers): flags and each used range.</summary>
    internal static string Text(ulong seed)
    {
        var filter = Draw(seed, NewBuffer(), null);
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"seed={seed} flags=0x{filter.flags:X}"));
        for (int i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++)
        {
            var r = filter.ranges[i];
            if (r.flags == 0 && r.nmsrs == 0 && r.@base == 0 && r.bitmap == 0) continue;
            text.Append(CultureInfo.InvariantCulture, $" [{i}] flags=0x{r.flags:X} base=0x{r.@base:X} nmsrs={r.nmsrs}");
        }
        return text.ToString();
    }

    private static Span<byte> Bytes<T>(ref T value) where T : unmanaged => MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1));
}
