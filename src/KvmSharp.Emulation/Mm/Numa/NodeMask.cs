// SPDX-License-Identifier: MIT
using System.Numerics;

namespace KvmSharp.Emulation.Mm.Numa;

/// <summary>A <c>nodemask_t</c>: MAX_NUMNODES bits, as include/linux/nodemask.h. Immutable once built.</summary>
internal sealed class NodeMask : IEquatable<NodeMask>
{
    private readonly ulong[] _words;

    public NodeMask(int maxNumNodes) => _words = new ulong[(maxNumNodes + 63) / 64];

    private NodeMask(ulong[] words) => _words = words;

    /// <summary>The mask's 64-bit words, lowest nodes first (as the kernel lays out an unsigned long bitmap).</summary>
    public ReadOnlySpan<ulong> Words => _words;

    public int Capacity => _words.Length * 64;

    public bool IsEmpty => Array.TrueForAll(_words, w => w == 0);

    /// <summary>nodes_weight.</summary>
    public int Weight => _words.Sum(w => BitOperations.PopCount(w));

    public bool Contains(int node) => node >= 0 && node < Capacity && (_words[node / 64] & (1UL << (node % 64))) != 0;

    /// <summary>first_node: the lowest node set, or <see cref="Capacity"/> (MAX_NUMNODES) when empty.</summary>
    public int First => Next(-1);

    /// <summary>next_node: the lowest set node above <paramref name="node"/>, or <see cref="Capacity"/>.</summary>
    public int Next(int node)
    {
        for (int n = node + 1; n < Capacity; n++)
        {
            if (Contains(n)) return n;
        }
        return Capacity;
    }

    /// <summary>next_node_in: like <see cref="Next"/>, wrapping to <see cref="First"/>; Capacity only when empty.</summary>
    public int NextIn(int node)
    {
        int next = Next(node);
        return next < Capacity ? next : First;
    }

    public IEnumerable<int> Nodes()
    {
        for (int n = First; n < Capacity; n = Next(n)) yield return n;
    }

    public static NodeMask FromWords(int maxNumNodes, ReadOnlySpan<ulong> words)
    {
        var mask = new NodeMask(maxNumNodes);
        words[..Math.Min(words.Length, mask._words.Length)].CopyTo(mask._words);
        return mask;
    }

    public static NodeMask Of(int maxNumNodes, IEnumerable<int> nodes)
    {
        var mask = new NodeMask(maxNumNodes);
        foreach (int n in nodes) mask._words[n / 64] |= 1UL << (n % 64);
        return mask;
    }

    /// <summary>nodes_and.</summary>
    public NodeMask And(NodeMask other)
    {
        var words = new ulong[_words.Length];
        for (int i = 0; i < words.Length; i++) words[i] = _words[i] & (i < other._words.Length ? other._words[i] : 0);
        return new NodeMask(words);
    }

    /// <summary>
    /// mm/mempolicy.c mpol_relative_nodemask: nodes_fold(tmp, *this, nodes_weight(*rel)) then nodes_onto(ret, tmp,
    /// *rel) — user node n means the (n mod weight)-th node of <paramref name="rel"/>.
    /// </summary>
    public NodeMask RelativeTo(NodeMask rel)
    {
        int weight = rel.Weight;
        var relNodes = rel.Nodes().ToArray();
        var result = new NodeMask(Capacity);
        if (weight == 0) return result;
        foreach (int n in Nodes())
        {
            int target = relNodes[n % weight];
            result._words[target / 64] |= 1UL << (target % 64);
        }
        return result;
    }

    public bool Equals(NodeMask? other) => other is not null && _words.AsSpan().SequenceEqual(other._words);

    public override bool Equals(object? obj) => Equals(obj as NodeMask);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (ulong w in _words) h.Add(w);
        return h.ToHashCode();
    }
}
