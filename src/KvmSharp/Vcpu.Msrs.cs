// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>x86.c MAX_IO_MSRS: one KVM_GET/SET_MSRS call takes fewer than this many entries (else E2BIG).</summary>
    public const int MaxMsrsPerCall = 255;

    /// <summary>
    /// KVM_GET_MSRS (x86): reads the MSRs named by <paramref name="entries"/>' indices into their values, in order.
    /// The kernel stops at the first MSR it cannot read and returns how many it read: entries from that one on are
    /// not read (the refused one's value is 0). Compare the result with the length, or use <see cref="GetMsr"/>.
    /// </summary>
    /// <returns>How many entries, from the start, were read.</returns>
    /// <exception cref="KvmException">The ioctl failed (E2BIG: more than <see cref="MaxMsrsPerCall"/> entries).</exception>
    public int GetMsrs(Span<MsrEntry> entries)
    {
        int size = PackedSize(entries.Length);
        Span<byte> buffer = size <= StackPackLimit ? stackalloc byte[size] : new byte[size];
        Pack(entries, buffer);
        long rc = KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_MSRS, buffer), "KVM_GET_MSRS",
            $"vcpu={Id} nmsrs={entries.Length}");
        var native = MemoryMarshal.Cast<byte, kvm_msr_entry>(buffer[Marshal.SizeOf<kvm_msrs>()..]);
        for (int i = 0; i < entries.Length; i++) entries[i] = MsrEntry.FromNative(native[i]);
        return (int)rc;
    }

    /// <summary>
    /// KVM_SET_MSRS (x86): writes the MSRs in order. The kernel stops at the first MSR it does not know or whose
    /// value it refuses (e.g. a reserved EFER bit, a non-canonical LSTAR) and returns how many it wrote; those before
    /// it stay written. Compare the result with the length, or use <see cref="SetMsr"/>.
    /// </summary>
    /// <returns>How many entries, from the start, were written.</returns>
    /// <exception cref="KvmException">The ioctl failed (E2BIG: more than <see cref="MaxMsrsPerCall"/> entries).</exception>
    public int SetMsrs(ReadOnlySpan<MsrEntry> entries)
    {
        int size = PackedSize(entries.Length);
        Span<byte> buffer = size <= StackPackLimit ? stackalloc byte[size] : new byte[size];
        Pack(entries, buffer);
        return (int)KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_MSRS, buffer), "KVM_SET_MSRS",
            $"vcpu={Id} nmsrs={entries.Length}");
    }

    /// <summary>KVM_GET_MSRS of one MSR.</summary>
    /// <exception cref="MsrAccessException">The kernel does not let userspace read this MSR.</exception>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public ulong GetMsr(uint index)
    {
        Span<MsrEntry> one = [new MsrEntry(index, 0)];
        if (GetMsrs(one) != 1) throw new MsrAccessException("KVM_GET_MSRS", index, null, $"vcpu={Id}");
        return one[0].Value;
    }

    /// <summary>KVM_SET_MSRS of one MSR.</summary>
    /// <exception cref="MsrAccessException">The kernel refused the MSR or the value.</exception>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void SetMsr(uint index, ulong value)
    {
        if (SetMsrs([new MsrEntry(index, value)]) != 1)
            throw new MsrAccessException("KVM_SET_MSRS", index, value, $"vcpu={Id}");
    }

    /// <summary>
    /// Packed requests up to this size (256 entries, KVM's MAX_IO_MSRS: 4 KiB) live on the stack: a micro-VM reset sets
    /// ≈200 MSRs (the listed ones, the MTRRs and the machine-check banks).
    /// </summary>
    private const int StackPackLimit = 8 + 256 * 16;

    private static int PackedSize(int count) => Marshal.SizeOf<kvm_msrs>() + count * Marshal.SizeOf<kvm_msr_entry>();

    /// <summary>struct kvm_msrs (nmsrs, pad 0) followed by the entries, into <paramref name="buffer"/> (of <see cref="PackedSize"/>).</summary>
    private static void Pack(ReadOnlySpan<MsrEntry> entries, Span<byte> buffer)
    {
        int header = Marshal.SizeOf<kvm_msrs>();
        var h = new kvm_msrs { nmsrs = (uint)entries.Length };
        MemoryMarshal.Write(buffer, in h);
        var native = MemoryMarshal.Cast<byte, kvm_msr_entry>(buffer[header..]);
        for (int i = 0; i < entries.Length; i++) native[i] = entries[i].ToNative();
    }
}
