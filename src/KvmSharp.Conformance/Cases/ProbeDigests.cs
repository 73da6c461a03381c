// SPDX-License-Identifier: MIT
using KvmSharp.Conformance.Guests;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// What the SIMD cases share with the C probes in tests/KvmSharp.Conformance.Tests/Oracles (v3_gather_maskmov.c,
/// v3_vtest.c): the probes' xorshift64 input draw, and their digest — FNV-1a over each variant's output blocks, round
/// after round — compared with the digests the host CPU gave.
/// </summary>
internal static class ProbeDigests
{
    /// <summary>The probes' xorshift64, and its sparse draw: a value ANDed with <c>round % 5</c> more.</summary>
    internal sealed class Xorshift(ulong seed)
    {
        private ulong _s = seed;

        public ulong Next()
        {
            _s ^= _s << 13;
            _s ^= _s >> 7;
            _s ^= _s << 17;
            return _s;
        }

        public ulong Sparse(int round)
        {
            ulong x = Next();
            for (int k = 0; k < round % 5; k++) x &= Next();
            return x;
        }
    }

    /// <summary>
    /// Digests the first <paramref name="digested"/> bytes of every <paramref name="outBytes"/>-byte output block at
    /// <paramref name="output"/> (variant after variant, <paramref name="rounds"/> blocks each) and asserts each is the
    /// CPU's (<paramref name="oracle"/>, in the variants' order, names checked), naming every variant that differs.
    /// </summary>
    internal static void AssertMatch(IdtGuest g, ulong output, int outBytes, int digested, int rounds,
        IReadOnlyList<string> variants, IReadOnlyList<(string Name, ulong Digest)> oracle)
    {
        var wrong = new List<string>();
        byte[] o = new byte[digested];
        for (int v = 0; v < variants.Count; v++)
        {
            ulong h = 0xcbf29ce484222325UL;
            for (int r = 0; r < rounds; r++)
            {
                g.Guest.Memory.Read(output + (ulong)((v * rounds + r) * outBytes), o);
                foreach (byte x in o) h = (h ^ x) * 0x100000001b3UL;
            }
            var (name, digest) = oracle[v];
            Assert.Equal(name, variants[v]);
            if (h != digest) wrong.Add($"{name}: 0x{h:X16}, the CPU's 0x{digest:X16}");
        }
        Assert.True(wrong.Count == 0, string.Join("; ", wrong));
    }
}
