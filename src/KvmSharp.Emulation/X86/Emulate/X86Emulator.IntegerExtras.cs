// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Numerics;
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The integer instructions gcc -O2 code uses beyond the base set: XADD, CMPXCHG, CMPXCHG8B/16B, BSF/BSR,
/// TZCNT/LZCNT/POPCNT, BSWAP, SHLD/SHRD, RCL/RCR, LAHF/SAHF, MOVBE, XLAT (Intel SDM Vol. 2, AMD APM Vol. 3 per
/// instruction; arch/x86/kvm/emulate.c em_xadd/em_cmpxchg/em_cmpxchg8b/em_bsf/em_bsr/em_bswap/em_movbe/em_lahf/em_sahf
/// run the host's instruction for the flags).
/// <para>
/// Flags the manuals leave undefined take what this project's AMD EPYC hosts do, probed natively with pushfq in a host
/// process (kvm_pvm runs a guest's instructions through KVM's emulator, whose fastops run the same host instruction
/// on the guest's flags): see <see cref="Alu"/>'s BitScanFlags, CountZerosFlags, DoubleShift and RotateCarry. A LOCK
/// prefix is accepted on the memory forms (Iced refuses it elsewhere, so it decodes as INVALID and the fetch raises
/// #UD): the interpreter runs one vCPU's instruction without another vCPU's access in between its read and write
/// of guest memory as far as this vCPU can tell; no cross-vCPU atomicity is modelled.
/// </para>
/// <para>
/// CPUID gating: none. Upstream KVM intercepts none of these, so the guest's KVM_SET_CPUID2 table gates nothing
/// and only the CPU decides (#UD without POPCNT, MOVBE or CX16; LZCNT/TZCNT run as BSR/BSF without ABM/BMI1).
/// Both CPUs this project runs on (<see cref="X86CpuModel.EpycMilan"/>, <see cref="X86CpuModel.EpycGenoa"/>;
/// /proc/cpuinfo: popcnt abm bmi1 movbe cx16 lahf_lm) have all of them, so the interpreter runs them always, as
/// upstream does. kvm_pvm's leaves 1 and 0x80000001 list neither POPCNT, MOVBE nor ABM; the emulator's CPU models add
/// them (since session 20, for the x86-64-v2/v3 guests), but a guest's table still gates nothing here, as upstream.
/// kvm_pvm itself differs (HostDeviations.KvmPvmPopcntAndCmpxchg16bFail,
/// KvmPvmMovbeIsUndefined, KvmPvmTzcntLzcntRunAsBsfBsr: KVM's emulator has no POPCNT or CMPXCHG16B, refuses MOVBE
/// without the guest capability and ignores the F3 of TZCNT/LZCNT); the conformance cases assert both.
/// </para>
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The integer extras; false for any other instruction.</summary>
    private bool TryIntegerExtras(in Instruction i, ref ulong f)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Xadd:
                ExchangeAdd(i, ref f);
                return true;
            case Mnemonic.Cmpxchg:
                CompareExchange(i, ref f);
                return true;
            case Mnemonic.Cmpxchg8b:
            case Mnemonic.Cmpxchg16b:
                CompareExchangeWide(i, ref f);
                return true;
            case Mnemonic.Rdrand:
            case Mnemonic.Rdseed:
                RandomNumber(i, ref f); // X86Emulator.RandomNumbers.cs
                return true;
            case Mnemonic.Bsf:
            case Mnemonic.Bsr:
            case Mnemonic.Tzcnt:
            case Mnemonic.Lzcnt:
            case Mnemonic.Popcnt:
                BitCount(i, ref f);
                return true;
            case Mnemonic.Bswap:
            {
                // SDM BSWAP: "When the BSWAP instruction references a 16-bit register, the result is undefined";
                // AMD EPYC clears the low 16 bits (probed: 66 0F C8 on 0x12345678 gives 0x12340000). No flags.
                var reg = i.Op0Register;
                int size = reg.GetSize();
                ulong v = ReadReg(reg);
                WriteReg(reg, size switch { 8 => BinaryPrimitives.ReverseEndianness(v), 4 => BinaryPrimitives.ReverseEndianness((uint)v), _ => 0 });
                return true;
            }
            case Mnemonic.Shld:
            case Mnemonic.Shrd:
            {
                int size = OpSize(i, 0);
                ulong count = ReadOp(i, 2, 1);
                ulong src = ReadOp(i, 1, size);
                WriteOp(i, 0, size, Alu.DoubleShift(i.Mnemonic == Mnemonic.Shld, ReadOp(i, 0, size), src, count, size, ref f));
                return true;
            }
            case Mnemonic.Rcl:
            case Mnemonic.Rcr:
            {
                int size = OpSize(i, 0);
                ulong count = i.OpCount > 1 ? ReadOp(i, 1, 1) : 1;
                WriteOp(i, 0, size, Alu.RotateCarry(i.Mnemonic == Mnemonic.Rcl, ReadOp(i, 0, size), count, size, ref f));
                return true;
            }
            case Mnemonic.Lahf:
            case Mnemonic.Sahf:
                // SDM LAHF/SAHF: in 64-bit mode valid only with CPUID.80000001H:ECX.LAHF-SAHF[0], which the CPUs
                // modelled have. AH = SF:ZF:0:AF:0:PF:1:CF; SAHF loads those five flags.
                const ulong Loaded = RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF | RFLAGS_CF;
                if (i.Mnemonic == Mnemonic.Lahf) WriteReg(Register.AH, (f & Loaded) | RFLAGS_FIXED);
                else f = (f & ~Loaded) | (ReadReg(Register.AH) & Loaded);
                return true;
            case Mnemonic.Movbe:
            {
                // SDM MOVBE (0F 38 F0/F1; CPUID.01H:ECX.MOVBE[22], present on the CPUs modelled; emulate.c em_movbe):
                // a load or a store, bytes reversed.
                int size = OpSize(i, 0);
                ulong v = ReadOp(i, 1, size);
                WriteOp(i, 0, size, size switch
                {
                    8 => BinaryPrimitives.ReverseEndianness(v),
                    4 => BinaryPrimitives.ReverseEndianness((uint)v),
                    _ => BinaryPrimitives.ReverseEndianness((ushort)v),
                });
                return true;
            }
            case Mnemonic.Xlatb:
                // SDM XLAT: AL = [seg:rBX + ZeroExtend(AL)] (Iced's memory operand is base rBX, index AL, at the
                // instruction's address size). No flags.
                WriteReg(Register.AL, ReadMemory(i.MemorySegment, EffectiveAddress(i), 1));
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// SDM XADD: TEMP ← SRC + DEST; SRC ← DEST; DEST ← TEMP (so xadd r, r leaves the sum); flags as ADD.
    /// </summary>
    private void ExchangeAdd(in Instruction i, ref ulong f)
    {
        int size = OpSize(i, 0);
        ulong dest = ReadOp(i, 0, size);
        ulong src = ReadOp(i, 1, size);
        ulong sum = Alu.Add(dest, src, 0, size, ref f);
        WriteOp(i, 1, size, dest);
        WriteOp(i, 0, size, sum);
    }

    /// <summary>
    /// SDM CMPXCHG: compare the accumulator with DEST (flags as CMP accumulator, DEST); equal → DEST ← SRC, else the
    /// accumulator ← DEST. SDM: "the destination operand is written back if the comparison fails" — memory or
    /// register, so a 32-bit register destination is zero-extended (emulate.c em_cmpxchg: "Create write-cycle to dest
    /// by writing the same value"; observed on kvm_pvm, which runs the guest through that emulator: cmpxchg ecx, edx
    /// failing clears RCX[63:32]. AMD EPYC silicon run natively keeps them — probed in a host process). On success
    /// the accumulator is not written (RAX[63:32] kept).
    /// </summary>
    private void CompareExchange(in Instruction i, ref ulong f)
    {
        int size = OpSize(i, 0);
        bool memory = i.GetOpKind(0) == OpKind.Memory;
        ulong ea = memory ? EffectiveAddress(i) : 0;
        ulong dest = memory ? ReadMemory(i.MemorySegment, ea, size) : ReadOp(i, 0, size);
        Register acc = Accumulator(size);
        Alu.Sub(ReadReg(acc), dest, 0, size, ref f);
        if ((f & RFLAGS_ZF) != 0)
        {
            ulong src = ReadOp(i, 1, size);
            if (memory) WriteMemory(i.MemorySegment, ea, size, src);
            else WriteOp(i, 0, size, src);
            return;
        }
        if (memory) WriteMemory(i.MemorySegment, ea, size, dest);
        else WriteOp(i, 0, size, dest);
        WriteReg(acc, dest);
    }

    /// <summary>
    /// SDM CMPXCHG8B/CMPXCHG16B: compare EDX:EAX (RDX:RAX) with m64 (m128); equal → ZF = 1 and the memory takes
    /// ECX:EBX (RCX:RBX), else ZF = 0 and EDX:EAX (RDX:RAX) take the memory, which is written back with its own value.
    /// CF, PF, AF, SF and OF are unaffected. CMPXCHG16B: #GP(0) if the operand is not 16-byte aligned, #UD without
    /// CPUID.01H:ECX.CX16[13] (present on the CPUs modelled). The register forms are invalid encodings (#UD at decode).
    /// </summary>
    private void CompareExchangeWide(in Instruction i, ref ulong f)
    {
        bool wide = i.Mnemonic == Mnemonic.Cmpxchg16b;
        ulong ea = EffectiveAddress(i);
        // The alignment is of the effective address (FS/GS bases are page aligned in practice; the SDM speaks of
        // the memory operand, checked here on the linear address).
        if (wide && (Linear(i.MemorySegment, ea) & 15) != 0) throw new GuestFault(GP_VECTOR, 0);
        if (!wide)
        {
            // One 8-byte access each way, so a read-only slot or MMIO sees one 8-byte write (emulate.c em_cmpxchg8b
            // writes back the whole operand through emulator_cmpxchg_emulated, which falls back to one write).
            ulong m = ReadMemory(i.MemorySegment, ea, 8);
            ulong expected = (ReadReg(Register.EDX) << 32) | ReadReg(Register.EAX);
            if (m == expected)
            {
                WriteMemory(i.MemorySegment, ea, 8, (ReadReg(Register.ECX) << 32) | ReadReg(Register.EBX));
                f |= RFLAGS_ZF;
                return;
            }
            WriteMemory(i.MemorySegment, ea, 8, m);
            WriteReg(Register.EAX, m & 0xffff_ffff);
            WriteReg(Register.EDX, m >> 32);
            f &= ~RFLAGS_ZF;
            return;
        }
        ulong lo = ReadMemory(i.MemorySegment, ea, 8);
        ulong hi = ReadMemory(i.MemorySegment, ea + 8, 8);
        if (lo == ReadReg(Register.RAX) && hi == ReadReg(Register.RDX))
        {
            WriteMemory(i.MemorySegment, ea, 8, ReadReg(Register.RBX));
            WriteMemory(i.MemorySegment, ea + 8, 8, ReadReg(Register.RCX));
            f |= RFLAGS_ZF;
            return;
        }
        WriteMemory(i.MemorySegment, ea, 8, lo);
        WriteMemory(i.MemorySegment, ea + 8, 8, hi);
        WriteReg(Register.RAX, lo);
        WriteReg(Register.RDX, hi);
        f &= ~RFLAGS_ZF;
    }

    /// <summary>
    /// BSF/BSR (SDM: a zero source sets ZF and leaves the destination undefined — AMD APM: unchanged, not even
    /// zero-extended, as probed), TZCNT/LZCNT (BMI1 / ABM: the count, operand-size bits for a zero source; CF =
    /// source was zero, ZF = result is zero) and POPCNT (SDM: ZF = source was zero, OF SF AF CF PF cleared).
    /// </summary>
    private void BitCount(in Instruction i, ref ulong f)
    {
        var m = i.Mnemonic;
        int size = OpSize(i, 0);
        int bits = size * 8;
        ulong src = ReadOp(i, 1, size);
        switch (m)
        {
            case Mnemonic.Popcnt:
                f = (f & ~RFLAGS_ARITH) | (src == 0 ? RFLAGS_ZF : 0);
                WriteOp(i, 0, size, (ulong)BitOperations.PopCount(src));
                return;
            case Mnemonic.Tzcnt:
            case Mnemonic.Lzcnt:
            {
                int n = src == 0 ? bits
                    : m == Mnemonic.Tzcnt ? BitOperations.TrailingZeroCount(src)
                    : BitOperations.LeadingZeroCount(src) - (64 - bits);
                Alu.CountZerosFlags((ulong)n, src == 0, ref f);
                WriteOp(i, 0, size, (ulong)n);
                return;
            }
            default:
            {
                ulong index = src == 0 ? 0
                    : m == Mnemonic.Bsf ? (ulong)BitOperations.TrailingZeroCount(src) : (ulong)BitOperations.Log2(src);
                Alu.BitScanFlags(index, src == 0, ref f);
                if (src != 0) WriteOp(i, 0, size, index);
                return;
            }
        }
    }
}
