// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// CPUID feature bits of the vCPU's KVM_SET_CPUID2 table that the interpreter consults (cpuid.h guest_cpu_cap_has in
/// spirit: without a table every feature reads as absent, as every leaf reads zero).
/// </summary>
internal static class GuestFeatures
{
    /// <summary>CPUID.1:ECX.SSE4_1[19]: PTEST, PINSRQ, PEXTRQ.</summary>
    public static bool Sse41(X86Cpu cpu) => Bit(cpu, 1, 0, Reg.Ecx, 19);

    /// <summary>CPUID.1:ECX.SSE3[0]: ADDSUBPx, HADDPx/HSUBPx, MOVSHDUP/MOVSLDUP/MOVDDUP, LDDQU (X86Emulator.Sse41Float.cs).</summary>
    public static bool Sse3(X86Cpu cpu) => Bit(cpu, 1, 0, Reg.Ecx, 0);

    /// <summary>CPUID.1:ECX.SSE4_2[20]: PCMPGTQ, CRC32 (X86Emulator.Sse41.cs, X86Emulator.Sse42.cs).</summary>
    public static bool Sse42(X86Cpu cpu) => Bit(cpu, 1, 0, Reg.Ecx, 20);

    /// <summary>CPUID.1:ECX.SSSE3[bit 9] (PSHUFB, PALIGNR).</summary>
    public static bool Ssse3(X86Cpu cpu) => Bit(cpu, 1, 0, Reg.Ecx, 9);

    /// <summary>CPUID.1:ECX.AVX[28].</summary>
    public static bool Avx(X86Cpu cpu) => Bit(cpu, 1, 0, Reg.Ecx, 28);

    /// <summary>CPUID.(EAX=7,ECX=0):EBX.AVX2[5]: VPXOR ymm, VEXTRACTI128.</summary>
    public static bool Avx2(X86Cpu cpu) => Bit(cpu, 7, 0, Reg.Ebx, 5);

    /// <summary>CPUID.(EAX=7,ECX=0):EBX.BMI1[3]: ANDN, BEXTR, BLSI, BLSMSK, BLSR (X86Emulator.Bmi.cs).</summary>
    public static bool Bmi1(X86Cpu cpu) => Bit(cpu, 7, 0, Reg.Ebx, 3);

    /// <summary>CPUID.(EAX=7,ECX=0):EBX.BMI2[8]: BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX (X86Emulator.Bmi.cs).</summary>
    public static bool Bmi2(X86Cpu cpu) => Bit(cpu, 7, 0, Reg.Ebx, 8);

    /// <summary>CPUID.1:ECX.FMA[12]: VFMADD/VFMSUB/VFNMADD/VFNMSUB (X86Emulator.Fma.cs).</summary>
    public static bool Fma(X86Cpu cpu) => Bit(cpu, 1, 0, Reg.Ecx, 12);

    /// <summary>CPUID.1:ECX.F16C[29]: VCVTPH2PS, VCVTPS2PH.</summary>
    public static bool F16c(X86Cpu cpu) => Bit(cpu, 1, 0, Reg.Ecx, 29);

    /// <summary>CPUID.(EAX=7,ECX=0):EBX.RTM[11] (kvm_dr6_fixed: without it DR6.RTM reads 1).</summary>
    public static bool Rtm(X86Cpu cpu) => Bit(cpu, 7, 0, Reg.Ebx, 11);

    /// <summary>CPUID.(EAX=7,ECX=0):ECX.BUS_LOCK_DETECT[24] (kvm_dr6_fixed: without it DR6.BLD reads 1).</summary>
    public static bool BusLockDetect(X86Cpu cpu) => Bit(cpu, 7, 0, Reg.Ecx, 24);

    /// <summary>CPUID.(EAX=0DH,ECX=1):EAX.XGETBV_ECX_1[2].</summary>
    public static bool XgetbvEcx1(X86Cpu cpu) => Bit(cpu, 0xd, 1, Reg.Eax, 2);

    private enum Reg { Eax, Ebx, Ecx, Edx }

    private static bool Bit(X86Cpu cpu, uint function, uint index, Reg reg, int bit)
    {
        foreach (ref readonly var e in cpu.Cpuid.Entries)
        {
            if (e.function != function) continue;
            if ((e.flags & KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0 && e.index != index) continue;
            uint v = reg switch { Reg.Eax => e.eax, Reg.Ebx => e.ebx, Reg.Ecx => e.ecx, _ => e.edx };
            return (v & (1u << bit)) != 0;
        }
        return false;
    }
}
