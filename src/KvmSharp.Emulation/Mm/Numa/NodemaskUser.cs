// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Mm.Numa;

/// <summary>The user-space node bitmaps of mm/mempolicy.c: get_nodes/get_bitmap in, copy_nodes_to_user out.</summary>
internal static class NodemaskUser
{
    private const ulong BitsPerLong = 64;

    /// <summary>
    /// get_nodes(nodes, nmask, maxnode): maxnode - 1 usable bits; none when that is 0 or nmask is NULL; more than a
    /// page of bits is EINVAL; bits at or above MAX_NUMNODES are read one word at a time from the end and must be 0
    /// (EINVAL), a fault is EFAULT; then get_bitmap reads the rest and masks the last word.
    /// </summary>
    public static long GetNodes(EmulatorConfig config, ulong nmask, ulong maxnode, out NodeMask nodes)
    {
        int max = config.MaxNumNodes;
        nodes = new NodeMask(max);
        // --maxnode (unsigned: 0 becomes ULONG_MAX, which the PAGE_SIZE check refuses).
        maxnode--;
        if (maxnode == 0 || nmask == 0) return 0;
        if (maxnode > (ulong)EmulatorConfig.PageSize * 8) return Err.EINVAL;
        while (maxnode > (ulong)max)
        {
            ulong bits = Math.Min(maxnode, BitsPerLong);
            if (!GetBitmap(config, nmask + (maxnode - 1) / BitsPerLong * 8, bits, out ulong[] t)) return Err.EFAULT;
            ulong word = t[0];
            if (maxnode - bits >= (ulong)max)
            {
                maxnode -= bits;
            }
            else
            {
                maxnode = (ulong)max;
                word &= ~((1UL << (max % 64)) - 1);
            }
            if (word != 0) return Err.EINVAL;
        }
        if (!GetBitmap(config, nmask, maxnode, out ulong[] words)) return Err.EFAULT;
        nodes = NodeMask.FromWords(max, words);
        return 0;
    }

    /// <summary>get_bitmap: BITS_TO_LONGS(maxnode) longs, the last one masked to maxnode % BITS_PER_LONG bits.</summary>
    private static bool GetBitmap(EmulatorConfig config, ulong address, ulong maxnode, out ulong[] words)
    {
        words = new ulong[(maxnode + BitsPerLong - 1) / BitsPerLong];
        if (!UserMemory.CopyFromUser(config, address, MemoryMarshal.AsBytes(words.AsSpan()))) return false;
        if (maxnode % BitsPerLong != 0) words[^1] &= (1UL << (int)(maxnode % BitsPerLong)) - 1;
        return true;
    }

    /// <summary>
    /// copy_nodes_to_user(mask, maxnode, nodes): ALIGN(maxnode - 1, 64) / 8 bytes; beyond BITS_TO_LONGS(nr_node_ids)
    /// longs the rest is cleared (clear_user, EFAULT), unless that is more than a page (EINVAL); then the mask words.
    /// </summary>
    public static long CopyNodesToUser(EmulatorConfig config, int nrNodeIds, ulong mask, ulong maxnode, NodeMask nodes)
    {
        ulong copy = ((maxnode - 1 + 63) & ~63UL) / 8;
        ulong nbytes = (ulong)((nrNodeIds + 63) / 64) * 8;
        if (copy > nbytes)
        {
            if (copy > (ulong)EmulatorConfig.PageSize) return Err.EINVAL;
            if (!UserMemory.CopyToUser(config, mask + nbytes, new byte[copy - nbytes])) return Err.EFAULT;
            copy = nbytes;
        }
        var bytes = MemoryMarshal.AsBytes(nodes.Words)[..(int)Math.Min(copy, (ulong)nodes.Words.Length * 8)];
        return UserMemory.CopyToUser(config, mask, bytes) ? 0 : Err.EFAULT;
    }
}
