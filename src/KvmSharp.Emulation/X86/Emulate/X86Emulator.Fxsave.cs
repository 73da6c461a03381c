// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// FXSAVE/FXRSTOR (0F AE /0, /1; REX.W for the 64-bit forms) over the vCPU's fxsave image, <see cref="VcpuState.Fpu"/>
/// — the registers KVM_GET_FPU and KVM_GET_XSAVE report. Firmware saves the FPU/SSE state with them around exception
/// handlers (OVMF's CpuExceptionHandlerLib, its #VC handler among them), so a guest that takes an exception in
/// firmware needs them before any x87 arithmetic. SDM Vol. 2A FXSAVE, Table 3-53 (the 64-bit layouts); AMD APM Vol. 5
/// FXSAVE. KVM intercepts neither, so the guest's CPUID does not matter (the host CPU has FXSR). Faults, in the CPU's
/// order: #NM when CR0.TS or CR0.EM is set, #GP(0) for an
/// operand not 16-byte aligned, then the page walk; FXRSTOR #GP(0) for an MXCSR bit outside MXCSR_MASK. The whole
/// 512-byte operand is translated before the first byte moves, so a fault leaves memory and registers unchanged.
/// Not modelled: AMD's fast FXSAVE (EFER.FFXSR, which KVM's EFER rules refuse anyway) and AMD's rule that FIP/FDP/FOP
/// are saved only with FSW.ES set (the image's values are written as they are).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The FXSAVE area (SDM Table 3-53): 512 bytes; ST0..7 at 32, XMM0..15 at 160; 464..511 software's.</summary>
    private const int FxsaveSize = 512, FxsaveStOffset = 32, FxsaveXmmOffset = 160, FxsaveWrittenBytes = 416, X87RegisterBytes = 10;

    private bool TryFxsave(in Instruction i)
    {
        bool save = i.Mnemonic is Mnemonic.Fxsave or Mnemonic.Fxsave64;
        if (!save && i.Mnemonic is not (Mnemonic.Fxrstor or Mnemonic.Fxrstor64)) return false;
        if ((_cpu.Sregs.cr0 & (CR0_TS | CR0_EM)) != 0) throw new GuestFault(NM_VECTOR);
        ulong linear = Linear(i.MemorySegment, EffectiveAddress(i));
        if ((linear & 15) != 0) throw new GuestFault(GP_VECTOR);
        var access = save ? PageAccess.Write : PageAccess.Read;
        Translate(linear, access);
        Translate(linear + FxsaveSize - 1, access);
        bool wide = i.Mnemonic is Mnemonic.Fxsave64 or Mnemonic.Fxrstor64;
        // In 64-bit mode all 16 XMM registers move; elsewhere XMM0..7 (SDM: "XMM8-XMM15 … 64-bit mode only"), and none
        // without CR4.OSFXSR — emulate.c fxstate_size: "Hardware doesn't save and restore XMM 0-7 without CR4.OSFXSR, but
        // does save and restore MXCSR"; kvm_pvm writes 160 bytes there (FpuControlRules.fxsave_in_protected_mode).
        int xmmCount = _cpu.Bitness == 64 ? 16 : (_cpu.Sregs.cr4 & CR4_OSFXSR) != 0 ? 8 : 0;
        Span<byte> area = stackalloc byte[FxsaveSize];
        if (save)
        {
            AccessMemory(linear, area, write: false); // bytes the CPU does not write keep their contents
            WriteFxsaveImage(area, wide, xmmCount);
            AccessMemory(linear, area[..FxsaveWrittenBytes], write: true);
            return true;
        }
        AccessMemory(linear, area, write: false);
        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(area[24..]);
        if ((mxcsr & ~MxcsrMask) != 0) throw new GuestFault(GP_VECTOR);
        ReadFxsaveImage(area, wide, xmmCount);
        // FSW.ES and B are the CPU's summary of the unmasked exception flags, not the image's bits (AMD APM Vol. 1,
        // x87 Status Word Register: ES is set when an unmasked x87 exception is pending, B mirrors it): on this EPYC
        // host FXRSTOR64 of FSW 0x2001 with IE unmasked reads back 0xA081 (FpuControlRules.fxrstor_loads_the_image).
        UpdateExceptionSummary();
        return true;
    }

    private void WriteFxsaveImage(Span<byte> b, bool wide, int xmmCount)
    {
        ref readonly kvm_fpu f = ref Vec.Fpu;
        BinaryPrimitives.WriteUInt16LittleEndian(b, f.fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], f.fsw);
        b[4] = f.ftwx; // the abridged tag word, as kvm_fpu keeps it
        b[5] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(b[6..], f.last_opcode);
        if (wide)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b[8..], f.last_ip);
            BinaryPrimitives.WriteUInt64LittleEndian(b[16..], f.last_dp);
        }
        else
        {
            // The 32-bit format: FIP[31:0], FCS, reserved; FDP[31:0], FDS, reserved (the selectors are not kept: 0).
            BinaryPrimitives.WriteUInt64LittleEndian(b[8..], (uint)f.last_ip);
            BinaryPrimitives.WriteUInt64LittleEndian(b[16..], (uint)f.last_dp);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], f.mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(b[28..], MxcsrMask);
        // Each ST slot is the 80-bit register and six reserved bytes the CPU writes as 0 (SDM Table 3-53; seen on this
        // host's FXSAVE of a KVM_SET_XSAVE image with non-zero bytes there).
        for (int n = 0; n < 8; n++)
        {
            var slot = b.Slice(FxsaveStOffset + n * 16, 16);
            ((ReadOnlySpan<byte>)f.fpr).Slice(n * 16, X87RegisterBytes).CopyTo(slot);
            slot[X87RegisterBytes..].Clear();
        }
        ((ReadOnlySpan<byte>)f.xmm)[..(xmmCount * 16)].CopyTo(b[FxsaveXmmOffset..]);
    }

    private void ReadFxsaveImage(ReadOnlySpan<byte> b, bool wide, int xmmCount)
    {
        ref kvm_fpu f = ref Vec.Fpu;
        f.fcw = BinaryPrimitives.ReadUInt16LittleEndian(b);
        f.fsw = BinaryPrimitives.ReadUInt16LittleEndian(b[2..]);
        f.ftwx = b[4];
        f.last_opcode = BinaryPrimitives.ReadUInt16LittleEndian(b[6..]);
        f.last_ip = wide ? BinaryPrimitives.ReadUInt64LittleEndian(b[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        f.last_dp = wide ? BinaryPrimitives.ReadUInt64LittleEndian(b[16..]) : BinaryPrimitives.ReadUInt32LittleEndian(b[16..]);
        f.mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(b[24..]);
        b.Slice(FxsaveStOffset, 128).CopyTo(f.fpr);
        for (int n = 0; n < 8; n++) ((Span<byte>)f.fpr).Slice(n * 16 + X87RegisterBytes, 16 - X87RegisterBytes).Clear(); // 80-bit registers
        b.Slice(FxsaveXmmOffset, xmmCount * 16).CopyTo(f.xmm);
    }
}
