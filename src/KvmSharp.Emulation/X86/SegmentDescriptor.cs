// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86;

/// <summary>Unpacks an 8-byte code/data segment descriptor into the cached form (Intel SDM Vol. 3A 3.4.5, Figure 3-8).</summary>
internal static class SegmentDescriptor
{
    public const ulong AccessedBit = 1UL << 40;

    public static kvm_segment Decode(ulong raw, ushort selector)
    {
        uint limit = (uint)(raw & 0xffff) | (uint)((raw >> 32) & 0xf_0000);
        bool g = (raw & (1UL << 55)) != 0;
        return new kvm_segment
        {
            @base = ((raw >> 16) & 0xff_ffff) | (((raw >> 56) & 0xff) << 24),
            // G: the limit counts 4 KiB units, the low 12 bits read as ones.
            limit = g ? (limit << 12) | 0xfff : limit,
            selector = selector,
            type = (byte)((raw >> 40) & 0xf),
            s = (byte)((raw >> 44) & 1),
            dpl = (byte)((raw >> 45) & 3),
            present = (byte)((raw >> 47) & 1),
            avl = (byte)((raw >> 52) & 1),
            l = (byte)((raw >> 53) & 1),
            db = (byte)((raw >> 54) & 1),
            g = g ? (byte)1 : (byte)0,
        };
    }
}
