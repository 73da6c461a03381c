// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// FMA3's alternating forms (Intel SDM Vol. 2C VFMADDSUB132PS/PD … VFMADDSUB231PS/PD, VFMSUBADD132PS/PD …
/// VFMSUBADD231PS/PD; CPUID.1:ECX.FMA[12]), VEX.128 and VEX.256: the 132/213/231 operand orders of
/// <see cref="TryFma"/>, VFMADDSUB subtracting the addend in the even elements and adding it in the odd ones,
/// VFMSUBADD the reverse; each element one rounding of the exact sum, with <see cref="FusedElement"/>'s NaN, IE, DE
/// and MXCSR rules. Faults as <see cref="TryFma"/>.
/// </summary>
internal sealed partial class X86Emulator
{
    private bool TryFmaAddSub(in Instruction i)
    {
        string name = i.Mnemonic.ToString(); // Vfmaddsub132ps, Vfmsubadd231pd …
        bool addSub = name.StartsWith("Vfmaddsub", StringComparison.Ordinal);
        if (!addSub && !name.StartsWith("Vfmsubadd", StringComparison.Ordinal)) return false;
        string order = name[9..12];
        var fmt = name[^1] == 's' ? FloatFormat.Single : FloatFormat.Double;
        RequireAvx(avx2: false);
        if (!GuestFeatures.Fma(_cpu)) throw new GuestFault(UD_VECTOR);
        int size = fmt.Bits / 8, bytes = i.Op0Register.IsYMM() ? 32 : 16, dest = VectorIndex(i.Op0Register);
        Span<byte> d = stackalloc byte[32], s2 = stackalloc byte[32], s3 = stackalloc byte[32];
        VectorRegisters.Read(Vec, dest, d[..bytes]);
        VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), s2[..bytes]);
        ReadVector(i, 2, s3[..bytes], alignment: 1);
        var math = new SseArithmetic(Vec.Fpu.mxcsr);
        bool roundDown = (Vec.Fpu.mxcsr >> 13 & 3) == 1;
        uint flags = 0;
        for (int k = 0; k < bytes / size; k++)
        {
            ulong x = VectorLane(d, k, size), y = VectorLane(s2, k, size), z = VectorLane(s3, k, size);
            var (m1, m2, add) = order switch { "132" => (x, z, y), "213" => (y, x, z), _ => (y, z, x) };
            bool subtract = (k % 2 == 0) == addSub; // SDM: VFMADDSUB even elements "… - SRC", odd "… + SRC"
            SetVectorLane(d, k, size, FusedElement(math, x, y, z, m1, m2, add, negate: false, subtract, fmt, roundDown, ref flags));
        }
        CommitFlags(flags | math.Flags);
        VectorRegisters.WriteVex(Vec, dest, d[..bytes]);
        return true;
    }
}
