// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The interpreter's view of the vector registers over <see cref="VcpuState"/> (the same bytes KVM_GET/SET_FPU and
/// KVM_GET/SET_XSAVE carry): XMM n is <c>Fpu.xmm[n*16..]</c> (bits 127:0 of YMM n), its bits 255:128 are
/// <c>YmmHigh[n*16..]</c>. A legacy-SSE write of XMM n leaves bits 255:128 alone; a VEX.128 write zeroes them
/// (Intel SDM Vol. 1 14.1.3 / Vol. 2A 2.3.10 "AVX Instructions and the Upper 128-bits of YMM registers").
/// </summary>
internal static class VectorRegisters
{
    public const int XmmBytes = 16;

    /// <summary>Bits 127:0 of YMM <paramref name="n"/>.</summary>
    public static Span<byte> Low(VcpuState s, int n)
    {
        Span<byte> all = s.Fpu.xmm;
        return all.Slice(n * XmmBytes, XmmBytes);
    }

    /// <summary>Bits 255:128 of YMM <paramref name="n"/>.</summary>
    public static Span<byte> High(VcpuState s, int n) => s.YmmHigh.AsSpan(n * XmmBytes, XmmBytes);

    /// <summary>YMM n (32 bytes: low then high) into <paramref name="destination"/>, or only the XMM part for 16 bytes.</summary>
    public static void Read(VcpuState s, int n, Span<byte> destination)
    {
        Low(s, n).CopyTo(destination);
        if (destination.Length > XmmBytes) High(s, n).CopyTo(destination[XmmBytes..]);
    }

    /// <summary>A legacy-SSE write of XMM n: 16 bytes, bits 255:128 unchanged.</summary>
    public static void WriteLegacy(VcpuState s, int n, ReadOnlySpan<byte> value) => value[..XmmBytes].CopyTo(Low(s, n));

    /// <summary>A VEX write: 32 bytes for VEX.256; 16 bytes for VEX.128, with bits 255:128 zeroed.</summary>
    public static void WriteVex(VcpuState s, int n, ReadOnlySpan<byte> value)
    {
        value[..XmmBytes].CopyTo(Low(s, n));
        if (value.Length > XmmBytes) value.Slice(XmmBytes, XmmBytes).CopyTo(High(s, n));
        else High(s, n).Clear();
    }
}
