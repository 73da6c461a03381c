// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The QARMA5 pointer-authentication cipher: Arm ARM (DDI 0487) shared pseudocode ComputePAC with its helpers
/// PACCellShuffle, PACCellInvShuffle, PACSub, PACInvSub, PACMult, TweakShuffle, TweakInvShuffle, written with the
/// 64-bit cell extraction QEMU's target/arm/tcg/pauth_helper.c (pauth_computepac_architected) uses. key0 is K&lt;127:64&gt;
/// (APxxKeyHi_EL1), key1 K&lt;63:0&gt; (APxxKeyLo_EL1). It is QARMA-64 (Avanzi, ToSC 2017(1)) with 5 rounds and the
/// sigma2 S-box, so the paper's test vector checks it (Arm64PointerAuthTests).
/// </summary>
internal static class Arm64PacCipher
{
    private static readonly ulong[] Rc = [0x0000000000000000, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89, 0x452821E638D01377];
    private const ulong Alpha = 0xC0AC29B7C97C50DD;

    /// <summary>PACSub (sigma2) and PACInvSub.</summary>
    private static readonly byte[] Sub = [0xb, 0x6, 0x8, 0xf, 0xc, 0x0, 0x9, 0xe, 0x3, 0x7, 0x4, 0x5, 0xd, 0x2, 0x1, 0xa];
    private static readonly byte[] InvSub = [0x5, 0xe, 0xd, 0x8, 0xa, 0xb, 0x1, 0x9, 0x2, 0x6, 0xf, 0x0, 0x4, 0xc, 0x7, 0x3];

    /// <summary>PACCellShuffle: output cell i (bits 4i+3:4i) takes input cell Shuffle[i].</summary>
    private static readonly int[] Shuffle = [13, 6, 11, 0, 7, 12, 1, 10, 8, 3, 14, 5, 2, 9, 4, 15];
    private static readonly int[] InvShuffle = [3, 6, 12, 9, 14, 11, 1, 4, 8, 13, 7, 2, 5, 0, 10, 15];

    /// <summary>TweakShuffle: output cell i takes input cell TweakSrc[i], rotated (TweakCellRot) where TweakRot[i].</summary>
    private static readonly int[] TweakSrc = [4, 5, 6, 7, 11, 2, 3, 8, 12, 13, 14, 15, 0, 1, 10, 9];
    private static readonly bool[] TweakRot = [false, false, true, false, true, false, false, true, false, false, false, true, true, false, true, true];
    private static readonly int[] TweakInvSrc = [12, 13, 5, 6, 0, 1, 2, 3, 7, 15, 14, 4, 8, 9, 10, 11];
    private static readonly bool[] TweakInvRot = [true, false, false, false, false, false, true, false, true, true, true, true, false, false, false, true];

    private static ulong Cell(ulong x, int i) => (x >> (4 * i)) & 0xf;

    private static ulong Permute(ulong x, int[] src)
    {
        ulong o = 0;
        for (int i = 0; i < 16; i++) o |= Cell(x, src[i]) << (4 * i);
        return o;
    }

    private static ulong Substitute(ulong x, byte[] box)
    {
        ulong o = 0;
        for (int i = 0; i < 16; i++) o |= (ulong)box[Cell(x, i)] << (4 * i);
        return o;
    }

    /// <summary>RotCell: a 4-bit rotate left.</summary>
    private static ulong Rot(ulong cell, int n) => ((cell << n) | (cell >> (4 - n))) & 0xf;

    /// <summary>PACMult: each column (cells i, i+4, i+8, i+12) times the QARMA involutory matrix.</summary>
    private static ulong Mult(ulong x)
    {
        ulong o = 0;
        for (int i = 0; i < 4; i++)
        {
            ulong i0 = Cell(x, i), i4 = Cell(x, i + 4), i8 = Cell(x, i + 8), ic = Cell(x, i + 12);
            ulong t0 = Rot(i8, 1) ^ Rot(i4, 2) ^ Rot(i0, 1);
            ulong t1 = Rot(ic, 1) ^ Rot(i4, 1) ^ Rot(i0, 2);
            ulong t2 = Rot(ic, 2) ^ Rot(i8, 1) ^ Rot(i0, 1);
            ulong t3 = Rot(ic, 1) ^ Rot(i8, 2) ^ Rot(i4, 1);
            o |= (t3 << (4 * i)) | (t2 << (4 * (i + 4))) | (t1 << (4 * (i + 8))) | (t0 << (4 * (i + 12)));
        }
        return o;
    }

    private static ulong Tweak(ulong x, int[] src, bool[] rot, bool inverse)
    {
        ulong o = 0;
        for (int i = 0; i < 16; i++)
        {
            ulong c = Cell(x, src[i]);
            if (rot[i]) c = inverse ? ((c << 1) & 0xf) | ((c & 1) ^ (c >> 3)) : (c >> 1) | (((c ^ (c >> 1)) & 1) << 3);
            o |= c << (4 * i);
        }
        return o;
    }

    /// <summary>ComputePAC(data, modifier, key0, key1) for QARMA5.</summary>
    public static ulong ComputePac(ulong data, ulong modifier, ulong key0, ulong key1)
    {
        ulong modk0 = (key0 << 63) | ((key0 >> 1) ^ (key0 >> 63));
        ulong runningmod = modifier;
        ulong w = data ^ key0;
        for (int i = 0; i <= 4; i++)
        {
            w ^= key1 ^ runningmod ^ Rc[i];
            if (i > 0) w = Mult(Permute(w, Shuffle));
            w = Substitute(w, Sub);
            runningmod = Tweak(runningmod, TweakSrc, TweakRot, inverse: false);
        }
        w ^= modk0 ^ runningmod;
        w = Substitute(Mult(Permute(w, Shuffle)), Sub);
        w = Mult(Permute(w, Shuffle));
        w ^= key1;
        w = Permute(w, InvShuffle);
        w = Permute(Mult(Substitute(w, InvSub)), InvShuffle);
        w ^= key0 ^ runningmod;
        for (int i = 0; i <= 4; i++)
        {
            w = Substitute(w, InvSub);
            if (i < 4) w = Permute(Mult(w), InvShuffle);
            runningmod = Tweak(runningmod, TweakInvSrc, TweakInvRot, inverse: true);
            w ^= Rc[4 - i] ^ key1 ^ runningmod ^ Alpha;
        }
        return w ^ modk0;
    }
}
