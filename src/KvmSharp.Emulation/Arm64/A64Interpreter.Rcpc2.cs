// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// FEAT_LRCPC2 (ID_AA64ISAR1_EL1.LRCPC ≥ 2): the "LDAPR/STLR (unscaled immediate)" group (Arm ARM DDI 0487 C4.1
/// "Loads and Stores": size 011001 opc 0 imm9 00 Rn Rt) — STLURB, LDAPURB, LDAPURSB (64/32), STLURH, LDAPURH,
/// LDAPURSH (64/32), STLUR (32), LDAPUR (32), LDAPURSW, STLUR (64), LDAPUR (64); C6.2 pseudocode of each. opc has the
/// meaning it has for LDUR/STUR (00 store, 01 load, 10 load signed to 64 bits, 11 load signed to 32 bits); size 10
/// opc 11 and size 11 opc 1x are unallocated. The access itself is LDUR/STUR's (<see cref="LoadStore"/>), single
/// register without writeback, so MMIO has a valid syndrome (ESR_ELx.ISV: "including those with Acquire/Release
/// semantics"). The ordering needs nothing here: the interpreter completes each access before the next instruction.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>True for the group (executed, or UNDEFINED); false for any other encoding.</summary>
    private bool TryRcpc2(uint insn)
    {
        if ((insn & 0x3F20_0C00) != 0x1900_0000) return false;
        int size = (int)(insn >> 30);
        uint opc = (insn >> 22) & 3;
        // C6.2 LDAPUR etc.: "if !IsFeatureImplemented(FEAT_LRCPC2) then UNDEFINED"; the unallocated size/opc pairs.
        if (((cpu.IdRegs.Model.Aa64Isar1 >> 20) & 0xF) < 2 || (size == 2 && opc == 3) || (size == 3 && opc >= 2))
            return UndefinedTrue();
        int rn = (int)((insn >> 5) & 31);
        ulong offset = (ulong)(long)((int)(insn << 11) >> 23); // SignExtend(imm9, 64)
        ulong address = cpu.RegOrSp(rn) + offset;
        // Mem[] with an acquire-PC / release access descriptor: AArch64.UnalignedAccessFaults, whatever SCTLR_EL1.A
        // says — always without FEAT_LSE2, with it only across a 16-byte boundary with SCTLR_EL1.nAA = 0
        // (CheckOrderedAlignment). CheckSPAlignment (a misaligned SP base) comes first, in LoadStore.
        bool spFault = rn == 31 && (cpu.RegOrSp(31) & 15) != 0;
        if (!spFault && !CheckOrderedAlignment(address, 1 << size, OrderedAccess.Ordered, wnr: opc == 0)) return true;
        LoadStore(insn, offset, writeback: false, postIndex: false);
        return true;
    }
}
