// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Pointer authentication (Arm ARM C6.2 instruction pages and the shared pseudocode AddPAC, Auth, Strip, ComputePAC,
/// AArch64.AddPACIA/AuthIA/…, AArch64.PACGA): PACIA/PACIB/PACDA/PACDB/AUTIA/AUTIB/AUTDA/AUTDB and their Z forms,
/// XPACI/XPACD, PACGA, the HINT-space PACIA1716/PACIASP/PACIAZ/AUTIA1716/AUTIASP/AUTIAZ (and the B-key forms) and
/// XPACLRI, BRAA/BRAB/BLRAA/BLRAB/BRAAZ/BRABZ/BLRAAZ/BLRABZ/RETAA/RETAB/ERETAA/ERETAB, and LDRAA/LDRAB (offset and
/// pre-indexed writeback forms). What the guest sees depends on the emulated host CPU (Arm64CpuModel) and on the vCPU:
/// <list type="bullet">
/// <item>A host without FEAT_PAuth: the HINT-space forms are NOPs, the others UNDEFINED (unallocated encodings).</item>
/// <item>A host with it and a vCPU without KVM_ARM_VCPU_PTRAUTH_*: KVM leaves HCR_EL2.API clear, so an instruction
/// whose key is enabled (SCTLR_EL1.EnIA/EnIB/EnDA/EnDB; PACGA always) traps to EL2 and kvm_handle_ptrauth →
/// kvm_inject_undefined (arch/arm64/kvm/handle_exit.c); with the key disabled the pseudocode returns the value unchanged
/// before the trap check ("if Enable == '0' then return X; elsif TrapEL2 then TrapPACUse(EL2)"). XPAC* do not trap.</item>
/// <item>A vCPU with the features: KVM sets HCR_EL2.API/APK (a first trap is retried, invisibly), so the instructions
/// run with the guest's keys (APIAKey… in Arm64SysRegs, guest- and KVM_GET/SET_ONE_REG-accessible).</item>
/// </list>
/// The PAC is QARMA5 (Arm64PacCipher) for APA/GPA, and also for API/GPI: the emulator's IMPLEMENTATION DEFINED
/// algorithm is QARMA5 itself [D]. A QARMA3 (APA3/GPA3) host is not modelled: its instructions stop the run with an
/// emulation failure. The ID field level (FEAT_PAuth 1, EPAC 2, PAuth2 3, FPAC 4, FPACCOMBINE 5) selects the AddPAC
/// and Auth variants; an FPAC failure is the PAC Fail exception (EC 0x1C) to EL1.
/// </summary>
internal sealed partial class A64Interpreter
{
    private const uint EcFpac = 0x1C;

    // SCTLR_EL1.EnIA (31), EnIB (30), EnDA (27), EnDB (13).
    private static readonly ulong[] KeyEnable = [1UL << 31, 1UL << 30, 1UL << 27, 1UL << 13];

    // APIAKeyLo_EL1 … APDBKeyLo_EL1 (0..3) and APGAKeyLo_EL1 (4): the Lo slot, Hi is the next table entry.
    private static readonly int[] KeyLo =
        [.. new[] { "APIA", "APIB", "APDA", "APDB", "APGA" }.Select(k => Arm64SysRegs.Index($"{k}KEYLO_EL1"))];

    private static readonly int TcrIndex = Arm64SysRegs.Index("TCR_EL1");

    private enum PacKey
    {
        IA,
        IB,
        DA,
        DB,
    }

    /// <summary>Returns null when <paramref name="insn"/> is not a pointer-authentication instruction.</summary>
    private A64Outcome? TryPointerAuth(uint insn)
    {
        // HINT space: 1101010100 0 00 011 0010 CRm op2 11111 with CRm 0000 op2 111 (XPACLRI), CRm 0001 op2 0x0 / 1x0
        // (the 1716 forms) and CRm 0011 (the Z and SP forms).
        if ((insn & 0xFFFF_F01F) == 0xD503_201F) return PacHint(insn);
        // Data-processing (1 source), sf 1 S 0, opcode2 00001: 11011010110 00001 opcode(6) Rn Rd.
        if ((insn & 0xFFFF_0000) == 0xDAC1_0000) return PacOneSource(insn);
        // PACGA: 10011010110 Rm 001100 Rn Rd.
        if ((insn & 0xFFE0_FC00) == 0x9AC0_3000) return Pacga(insn);
        // LDRAA / LDRAB: 11 111 0 00 M S 1 imm9 W 1 Rn Rt.
        if ((insn & 0xFF20_0400) == 0xF820_0400) return LoadWithAuth(insn);
        // Branches with pointer authentication: 1101011 Z 0 opc 11111 00001 M Rn Rm.
        if ((insn & 0xFE9F_F800) == 0xD61F_0800) return PacBranch(insn);
        return TryEretWithAuth(insn);
    }

    private A64Outcome? PacHint(uint insn)
    {
        uint crmOp2 = (insn >> 5) & 0x7F;
        if (crmOp2 == 0b0000_111)
        {
            // XPACLRI: X30 = Strip(X30, instruction).
            if (HostAddressAuth == 0) return null;
            cpu.X[30] = Strip(cpu.X[30], data: false);
            Next();
            return A64Outcome.Continue;
        }
        int crm = (int)(crmOp2 >> 3), op2 = (int)(crmOp2 & 7);
        if (!(crm == 0b0001 && (op2 & 1) == 0) && crm != 0b0011) return null;
        // Without FEAT_PAuth these are the NOPs of the HINT space (BranchOrSystem's hint case).
        if (HostAddressAuth == 0) return null;
        bool auth = (op2 & 4) != 0;
        var key = (op2 & 2) != 0 ? PacKey.IB : PacKey.IA;
        int dest;
        ulong modifier;
        if (crm == 0b0001)
        {
            dest = 17;
            modifier = cpu.X[16]; // PACIA1716: X17 with the modifier X16.
        }
        else
        {
            dest = 30;
            modifier = (op2 & 1) != 0 ? cpu.Sp : 0; // PACIASP: X30 with SP; PACIAZ: X30 with zero.
        }
        if (!Authenticate(key, auth, cpu.X[dest], modifier, combined: false, out ulong result)) return A64Outcome.Continue;
        cpu.X[dest] = result;
        Next();
        return A64Outcome.Continue;
    }

    private A64Outcome? PacOneSource(uint insn)
    {
        int opcode = (int)((insn >> 10) & 0x3F), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        if (opcode > 0b010001 || (opcode >= 0b001000 && rn != 31)) return null; // other opcodes; Z forms need Rn = 11111
        if (HostAddressAuth == 0) return UndefinedContinue();
        ulong result;
        if (opcode >= 0b010000)
        {
            // XPACI / XPACD Xd: Strip, never trapped by HCR_EL2.API.
            result = Strip(cpu.Reg(rd), data: opcode == 0b010001);
        }
        else
        {
            var key = (PacKey)(opcode & 3);
            ulong modifier = opcode >= 0b001000 ? 0 : cpu.RegOrSp(rn);
            if (!Authenticate(key, auth: (opcode & 4) != 0, cpu.Reg(rd), modifier, combined: false, out result)) return A64Outcome.Continue;
        }
        cpu.SetReg(rd, result);
        Next();
        return A64Outcome.Continue;
    }

    /// <summary>
    /// AArch64.PACGA: no SCTLR enable; "TrapEL2 = EL2Enabled() &amp;&amp; HCR_EL2.API == '0'" (a vCPU without the features:
    /// UNDEF by KVM); X[d] = ComputePAC(X[n], X[m]|SP, APGAKey)&lt;63:32&gt;:Zeros(32).
    /// </summary>
    private A64Outcome Pacga(uint insn)
    {
        int rm = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rd = (int)(insn & 31);
        var model = cpu.IdRegs.Model;
        if (model.Gpa == 0 && model.Gpi == 0 && model.Gpa3 == 0) return UndefinedContinue();
        if (!cpu.HasPtrAuth) return UndefinedContinue();
        if (model.Gpa3 != 0) throw new UnsupportedInstructionStop(insn);
        ulong pac = Arm64PacCipher.ComputePac(cpu.Reg(rn), cpu.RegOrSp(rm), cpu.SysRegs[KeyLo[4] + 1], cpu.SysRegs[KeyLo[4]]);
        cpu.SetReg(rd, pac & 0xFFFF_FFFF_0000_0000UL);
        Next();
        return A64Outcome.Continue;
    }

    /// <summary>
    /// BRAA/BRAB/BLRAA/BLRAB (modifier Xm|SP), BRAAZ/BRABZ/BLRAAZ/BLRABZ (modifier 0), RETAA/RETAB (X30 with SP),
    /// ERETAA/ERETAB (ELR_EL1 with SP; UNDEFINED at EL0): AuthIA / AuthIB with is_combined, then the branch.
    /// </summary>
    private A64Outcome? PacBranch(uint insn)
    {
        bool z = ((insn >> 24) & 1) != 0;
        int opc = (int)((insn >> 21) & 3), rn = (int)((insn >> 5) & 31), rm = (int)(insn & 31);
        var key = ((insn >> 10) & 1) != 0 ? PacKey.IB : PacKey.IA;
        ulong target, modifier;
        switch (z, opc)
        {
            case (false, 0 or 1) when rm == 31: // BRAAZ / BLRAAZ
                target = cpu.Reg(rn);
                modifier = 0;
                break;
            case (false, 2) when rn == 31 && rm == 31: // RETAA
                target = cpu.X[30];
                modifier = cpu.Sp;
                break;
            case (true, 0 or 1): // BRAA / BLRAA
                target = cpu.Reg(rn);
                modifier = cpu.RegOrSp(rm);
                break;
            default:
                return null;
        }
        if (HostAddressAuth == 0) return UndefinedContinue();
        if (!Authenticate(key, auth: true, target, modifier, combined: true, out ulong dest)) return A64Outcome.Continue;
        if (opc == 1) cpu.X[30] = cpu.Pc + 4;
        // BTypeNext (FEAT_BTI, A64Interpreter.Bti.cs): BRAA* as BR (by page and Rn), BLRAA* '10', RETAA/RETAB '00'.
        if (opc == 0) IndirectJumpBType(rn);
        else if (opc == 1) IndirectCallBType();
        cpu.Pc = dest;
        return A64Outcome.Continue;
    }

    /// <summary>
    /// LDRAA / LDRAB (Arm ARM C6.2 "LDRAA, LDRAB"): "if !IsFeatureImplemented(FEAT_PAuth) then UNDEFINED"; offset =
    /// LSL(SignExtend(S:imm9), 3); address = X[n]|SP authenticated with AuthDA / AuthDB, modifier X[31] (zero),
    /// is_combined TRUE (so FPACCOMBINE, not FPAC, makes a failure the PAC Fail exception); "if n == 31 then
    /// CheckSPAlignment()"; data = Mem[address + offset, 8]; with W (pre-indexed) the base register receives
    /// address + offset before X[t] = data. A disabled key (SCTLR_EL1.EnDA/EnDB) leaves the address unchanged; an
    /// enabled key on a vCPU without the features is KVM's UNDEF (<see cref="Authenticate"/>). Writeback with Rt == Rn
    /// (not SP) is CONSTRAINED UNPREDICTABLE: UNDEFINED here, as for the other loads. A fault on the load leaves the
    /// base register unchanged. The MMIO syndrome is valid only without writeback (ESR_ELx.ISV rules for a single
    /// general-purpose register load) [D].
    /// </summary>
    private A64Outcome LoadWithAuth(uint insn)
    {
        if (HostAddressAuth == 0) return UndefinedContinue();
        var key = ((insn >> 23) & 1) != 0 ? PacKey.DB : PacKey.DA;
        bool writeback = ((insn >> 11) & 1) != 0;
        int rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31);
        // S:imm9 (bits 22, 20:12) sign-extended, times 8.
        long imm10 = ((insn >> 12) & 0x1FF) | (((insn >> 22) & 1) << 9);
        ulong offset = (ulong)((imm10 << 54) >> 51);
        if (writeback && rn == rt && rn != 31) return UndefinedContinue();
        if (!Authenticate(key, auth: true, cpu.RegOrSp(rn), modifier: 0, combined: true, out ulong address)) return A64Outcome.Continue;
        if (rn == 31 && (address & 15) != 0)
        {
            SpAlignmentFault();
            return A64Outcome.Continue;
        }
        address += offset;
        var data = _data.AsSpan(0, 8);
        if (!MemoryAccess(address, data, write: false, new MmioSyndrome(address, false, 8, rt, false, true, 0), isvValid: !writeback))
            return A64Outcome.Continue;
        if (writeback) cpu.SetRegOrSp(rn, address);
        cpu.SetReg(rt, BinaryPrimitives.ReadUInt64LittleEndian(data));
        Next();
        return A64Outcome.Continue;
    }

    /// <summary>ERETAA / ERETAB: 1101011 0100 11111 00001 M 11111 11111 (TrySystem has plain ERET).</summary>
    private A64Outcome? TryEretWithAuth(uint insn)
    {
        if ((insn & 0xFFFF_FBFF) != 0xD69F_0BFF) return null;
        if (HostAddressAuth == 0 || cpu.AtEl0) return UndefinedContinue();
        var key = ((insn >> 10) & 1) != 0 ? PacKey.IB : PacKey.IA;
        if (!Authenticate(key, auth: true, cpu.ElrEl1, cpu.Sp, combined: true, out ulong dest)) return A64Outcome.Continue;
        cpu.Pc = dest;
        cpu.Pstate = cpu.Spsr[0];
        return A64Outcome.Continue;
    }

    /// <summary>The ID_AA64ISAR1/2_EL1 address-authentication level of the emulated host: APA, API or APA3 (0: none).</summary>
    private int HostAddressAuth
    {
        get
        {
            var m = cpu.IdRegs.Model;
            return Math.Max(m.Apa, Math.Max(m.Api, m.Apa3));
        }
    }

    /// <summary>
    /// AArch64.AddPACxx / AArch64.AuthXx: Enable = SCTLR_EL1.EnXX (the EL1&amp;0 regime at EL0 and EL1); disabled → the
    /// value unchanged; a vCPU without the features traps (HCR_EL2.API = 0) and KVM injects UNDEF (false: the exception
    /// was taken); else AddPAC / Auth with the key. An Auth failure with FEAT_FPAC takes the PAC Fail exception (false).
    /// </summary>
    private bool Authenticate(PacKey key, bool auth, ulong value, ulong modifier, bool combined, out ulong result)
    {
        result = value;
        if ((cpu.SctlrEl1 & KeyEnable[(int)key]) == 0) return true;
        if (!cpu.HasPtrAuth)
        {
            Undefined();
            return false;
        }
        if (cpu.IdRegs.Model.Apa3 != 0) throw new UnsupportedInstructionStop(LastInstruction);
        bool data = key is PacKey.DA or PacKey.DB;
        int lo = KeyLo[(int)key];
        ulong k0 = cpu.SysRegs[lo + 1], k1 = cpu.SysRegs[lo];
        if (!auth)
        {
            result = AddPac(value, modifier, k0, k1, data);
            return true;
        }
        int keynumber = key is PacKey.IB or PacKey.DB ? 1 : 0;
        return Auth(value, modifier, k0, k1, data, keynumber, combined, out result);
    }

    /// <summary>
    /// EffectiveTBI for the EL1&amp;0 regime: TCR_EL1.TBI1/TBI0 by ptr&lt;55&gt;, cleared for an instruction address by
    /// TBID1/TBID0 (FEAT_PAuth).
    /// </summary>
    private bool EffectiveTbi(ulong ptr, bool instr)
    {
        ulong tcr = cpu.SysRegs[TcrIndex];
        bool upper = ((ptr >> 55) & 1) != 0;
        bool tbi = ((tcr >> (upper ? 38 : 37)) & 1) != 0;
        bool tbid = ((tcr >> (upper ? 52 : 51)) & 1) != 0;
        return tbi && !(tbid && instr);
    }

    /// <summary>
    /// CalculateBottomPACBit: 64 - TCR_EL1.T1SZ / T0SZ (by <paramref name="upper"/>), constrained to the emulated
    /// CPU's range: no FEAT_TTST (max 39) and no 52-bit VAs (min 16); out-of-range values take Constraint_FORCE [D],
    /// so the reset TCR_EL1 (T0SZ = 0; the pseudocode reads TCR_EL1 whether or not the MMU is on) gives a 48-bit VA:
    /// the PAC from bit 48.
    /// </summary>
    private int BottomPacBit(bool upper)
    {
        ulong tcr = cpu.SysRegs[TcrIndex];
        int tsz = (int)((tcr >> (upper ? 16 : 0)) & 0x3F);
        return 64 - Math.Clamp(tsz, 16, 39);
    }

    private static ulong Bits(int hi, int lo) => (hi >= 63 ? ulong.MaxValue : (1UL << (hi + 1)) - 1) & ~((1UL << lo) - 1);

    /// <summary>
    /// AddPAC: the PAC of the pointer with good extension bits; a pointer whose bits top_bit:bottom_PAC_bit are not
    /// an extension gets a corrupted PAC (PAC&lt;top_bit-1&gt; inverted; zero with FEAT_EPAC; nothing with FEAT_PAuth2);
    /// bit 55 is kept and the PAC inserted (XORed in with FEAT_PAuth2) into bits 54:bottom and, without TBI, 63:56.
    /// </summary>
    private ulong AddPac(ulong ptr, ulong modifier, ulong k0, ulong k1, bool data)
    {
        int level = HostAddressAuth;
        bool tbi = EffectiveTbi(ptr, !data);
        ulong tcr = cpu.SysRegs[TcrIndex];
        // PtrHasUpperAndLowerAddRanges (EL1&0): selbit = ptr<55> when TBI applies to either half, else ptr<63>.
        bool tbi0 = ((tcr >> 37) & 1) != 0, tbi1 = ((tcr >> 38) & 1) != 0, tbid0 = ((tcr >> 51) & 1) != 0, tbid1 = ((tcr >> 52) & 1) != 0;
        bool use55 = data ? tbi1 || tbi0 : (tbi1 && !tbid1) || (tbi0 && !tbid0);
        bool selbit = ((ptr >> (use55 ? 55 : 63)) & 1) != 0;
        int bottom = BottomPacBit(selbit);
        int top = tbi ? 55 : 63;
        ulong ext = selbit ? ulong.MaxValue : 0;
        ulong extMask = Bits(tbi ? 55 : 63, bottom);
        ulong extPtr = (ptr & ~extMask) | (ext & extMask);
        ulong pac = Arm64PacCipher.ComputePac(extPtr, modifier, k0, k1);
        ulong field = ptr & Bits(top, bottom);
        if (field != 0 && field != Bits(top, bottom))
        {
            if (level == 2) pac = 0;
            else if (level < 3) pac ^= 1UL << (top - 1);
        }
        ulong pacBits = Bits(54, bottom) | (tbi ? 0 : Bits(63, 56));
        ulong sel = selbit ? 1UL << 55 : 0;
        ulong inserted = level >= 3 ? (ptr ^ pac) & pacBits : pac & pacBits;
        return (ptr & ~(pacBits | (1UL << 55))) | sel | inserted;
    }

    /// <summary>The original pointer: bits 55 (or 63 without TBI) .. bottom_PAC_bit replaced by ptr&lt;55&gt;.</summary>
    private ulong OriginalPtr(ulong ptr, bool tbi, int bottom)
    {
        ulong ext = ((ptr >> 55) & 1) != 0 ? ulong.MaxValue : 0;
        ulong mask = Bits(tbi ? 55 : 63, bottom);
        return (ptr & ~mask) | (ext & mask);
    }

    /// <summary>Strip (XPACI / XPACD / XPACLRI).</summary>
    private ulong Strip(ulong ptr, bool data) =>
        OriginalPtr(ptr, EffectiveTbi(ptr, !data), BottomPacBit(((ptr >> 55) & 1) != 0));

    /// <summary>
    /// Auth: without FEAT_PAuth2 a matching PAC gives the original pointer, a wrong one the original pointer with
    /// error_code = keynumber:NOT(keynumber) in bits 54:53 (TBI) or 62:61, so a later branch or access faults; with
    /// FEAT_PAuth2 the PAC is XORed out, and with FEAT_FPAC (or FPACCOMBINE for the combined branches) a pointer that is
    /// not then an extension takes the PAC Fail exception, ESR_EL1.ISS&lt;1:0&gt; = data:keynumber (false).
    /// </summary>
    private bool Auth(ulong ptr, ulong modifier, ulong k0, ulong k1, bool data, int keynumber, bool combined, out ulong result)
    {
        int level = HostAddressAuth;
        bool tbi = EffectiveTbi(ptr, !data);
        int bottom = BottomPacBit(((ptr >> 55) & 1) != 0);
        ulong original = OriginalPtr(ptr, tbi, bottom);
        ulong pac = Arm64PacCipher.ComputePac(original, modifier, k0, k1);
        ulong pacBits = Bits(54, bottom) | (tbi ? 0 : Bits(63, 56));
        if (level < 3)
        {
            if (((pac ^ ptr) & pacBits) == 0)
            {
                result = original;
                return true;
            }
            ulong errorCode = (uint)((keynumber << 1) | (keynumber ^ 1));
            int at = tbi ? 53 : 61;
            result = (original & ~(3UL << at)) | (errorCode << at);
            return true;
        }
        result = ptr ^ (pac & pacBits);
        bool fpac = level >= 5 || (level >= 4 && !combined);
        ulong checkBits = tbi ? Bits(54, bottom) : Bits(63, bottom) & ~(1UL << 55);
        ulong expected = ((result >> 55) & 1) != 0 ? checkBits : 0;
        if (fpac && (result & checkBits) != expected)
        {
            // PACFailException: EC 0x1C to EL1, ISS<1> data, ISS<0> keynumber; the preferred return is the instruction.
            TakeException(EcFpac, cpu.Pc, far: null, iss: (uint)((data ? 2 : 0) | keynumber));
            return false;
        }
        return true;
    }
}
