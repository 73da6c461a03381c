// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

internal enum X87Order { Greater, Less, Equal, Unordered }

/// <summary>
/// Comparison and classification (SDM Vol. 2A FCOM/FUCOM/FCOMI/FTST/FXAM; Vol. 1 8.1.4, Table 8-6 and 8-7): −0 = +0;
/// any NaN is unordered; FCOM-style compares raise #IA for every NaN, FUCOM-style ones only for an SNaN; an
/// unsupported encoding is always #IA; a denormal operand of an ordered compare is #D.
/// </summary>
internal static partial class X87Math
{
    public static X87Order Compare(Extended80 a, Extended80 b, bool quiet, ref X87Env env, bool bDenormal = false)
    {
        if (a.IsUnsupported || b.IsUnsupported)
        {
            env.Flags |= X87Env.IE;
            return X87Order.Unordered;
        }
        if (a.IsNaN || b.IsNaN)
        {
            if (!quiet || a.IsSignalingNaN || b.IsSignalingNaN) env.Flags |= X87Env.IE;
            return X87Order.Unordered;
        }
        Denormals(a, b, bDenormal, ref env);
        if (a.IsZero && b.IsZero) return X87Order.Equal;
        if (a.IsZero) return b.Sign ? X87Order.Greater : X87Order.Less;
        if (b.IsZero || a.Sign != b.Sign) return a.Sign ? X87Order.Less : X87Order.Greater;
        int magnitude = CompareMagnitude(a, b);
        return magnitude == 0 ? X87Order.Equal : (magnitude > 0) != a.Sign ? X87Order.Greater : X87Order.Less;
    }

    private static int CompareMagnitude(Extended80 a, Extended80 b)
    {
        var (ea, ma) = a.Normalized();
        var (eb, mb) = b.Normalized();
        return ea != eb ? ea.CompareTo(eb) : ma.CompareTo(mb);
    }

    /// <summary>
    /// FXAM's class in C3:C2:C0 (SDM Vol. 2A FXAM: unsupported 000, NaN 001, normal 010, infinity 011,
    /// zero 100, empty 101, denormal 110), as FSW bits C3 (14), C2 (10), C0 (8).
    /// </summary>
    public static ushort Classify(Extended80 x, bool empty)
    {
        const ushort C0 = 1 << 8, C2 = 1 << 10, C3 = 1 << 14;
        if (empty) return C3 | C0;
        if (x.IsUnsupported) return 0;
        if (x.IsNaN) return C0;
        if (x.IsInfinity) return C2 | C0;
        if (x.Exp == Extended80.MaxExp) return 0; // a pseudo-NaN/infinity with the integer bit set cannot occur: NaN above
        if (x.IsZero) return C3;
        if (x.IsDenormal) return C3 | C2;
        return C2;
    }
}
