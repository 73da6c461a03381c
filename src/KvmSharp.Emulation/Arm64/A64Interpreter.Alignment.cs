// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// Data alignment faults (Arm ARM DDI 0487 B2.5 "Alignment support"; pseudocode Mem[], AArch64.CheckAlignment /
/// AArch64.UnalignedAccessFaults, AArch64.S1HasAlignmentFault). The alignment is that of the element accessed, not of
/// the whole access ("Check alignment on size of element accessed, not overall access size": half the size for a
/// pair, the element size of an LD1–LD4/ST1–ST4, the register size otherwise). Two checks:
/// <list type="bullet">
/// <item>SCTLR_EL1.A = 1 (AlignmentEnforced): every unaligned data access faults, before translation (Mem[]).</item>
/// <item>An unaligned access to Device memory faults after the walk, before permission faults
/// (AArch64.S1Translate: "if AArch64.S1HasAlignmentFault(…) then fault.statuscode = Fault_Alignment; if
/// fault.statuscode == Fault_None then fault = AArch64.S1CheckPermissions(…)"). With SCTLR_EL1.M = 0 every data
/// access is Device-nGnRnE (AArch64.S1DisabledOutput); with the MMU on the page's MAIR_EL1 attribute decides
/// (Attr&lt;7:4&gt; = 0000 is Device).</item>
/// </list>
/// Priority: the SCTLR_EL1.A check comes before the walk, so it wins over every MMU fault; the Device check needs the
/// walk's memory type, so translation, address-size and access-flag faults win over it and it wins over a permission
/// fault. Instruction fetches never take these faults (a misaligned PC is the PC alignment fault, EC 0x22, of
/// <see cref="Step"/>; a misaligned SP base is the SP alignment fault, EC 0x26). The exclusive, atomic and
/// acquire/release forms (A64Interpreter.Exclusive.cs: LDXR/STXR…, the FEAT_LSE atomics and CAS, LDAR/STLR, LDAPR;
/// A64Interpreter.Rcpc2.cs: LDAPUR/STLUR) have a third check, <see cref="UnalignedAccessFaults"/>, that holds whatever
/// SCTLR_EL1.A says and that FEAT_LSE2 relaxes; DC ZVA faults on any Device memory type
/// (A64Interpreter.CacheMaintenance.cs). The fault is a Data Abort to EL1 (AArch64.AlignmentFault): EC 0x25 (0x24
/// from EL0), DFSC 0b100001, ISV = 0 (a stage-1 fault), FAR_EL1 = the faulting address, WnR = fault.write, which
/// NoFault(accdesc) sets to "!accdesc.read &amp;&amp; accdesc.write": 1 for a store, 0 for a load and for an atomic
/// read-modify-write (ESR_ELx.WnR: "For faults on the atomic instructions that both read and write … 0 if a read of
/// the address … would have generated the fault").
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>ESR_ELx DFSC alignment fault (asm/esr.h ESR_ELx_FSC_ALIGN = 0x21).</summary>
    private const uint FscAlignment = 0x21;

    /// <summary>SCTLR_EL1.A (bit 1): alignment checking of data accesses.</summary>
    private bool AlignmentEnforced => (cpu.SctlrEl1 & 2) != 0;

    /// <summary>MAIR_ELx Attr&lt;7:4&gt; = 0000: a Device memory type (D24.2 MAIR_EL1).</summary>
    private static bool IsDeviceAttr(byte attr) => (attr & 0xF0) == 0;

    private static bool IsAligned(ulong address, int alignment) => (address & (ulong)(alignment - 1)) == 0;

    /// <summary>
    /// Mem[] → AArch64.CheckAlignment with AlignmentEnforced() (SCTLR_EL1.A): false when the access took the
    /// alignment fault (before any translation).
    /// </summary>
    private bool CheckEnforcedAlignment(ulong address, int alignment, bool write)
    {
        if (!AlignmentEnforced || IsAligned(address, alignment)) return true;
        AlignmentAbort(address, write ? S1Access.Write : S1Access.Read);
        return false;
    }

    /// <summary>AArch64.S1HasAlignmentFault for a data access that is not aligned to its element.</summary>
    private static bool DeviceAlignmentFault(S1Access access, bool aligned, byte attr) =>
        access != S1Access.Fetch && !aligned && IsDeviceAttr(attr);

    /// <summary>
    /// The access descriptor flags AArch64.UnalignedAccessFaults distinguishes for the accesses that are checked
    /// whatever SCTLR_EL1.A says.
    /// </summary>
    internal enum OrderedAccess
    {
        /// <summary>
        /// accdesc.exclusive or accdesc.atomicop: LDXR/LDAXR/STXR/STLXR (B, H, W, X), LDXP/LDAXP/STXP/STLXP, the
        /// LD&lt;op&gt;/ST&lt;op&gt; atomics, SWP, CAS (the acquire/release forms too: exclusive/atomicop is tested first).
        /// </summary>
        ExclusiveOrAtomic,

        /// <summary>
        /// accdesc.acqsc, acqpc or relsc alone: LDAR, LDLAR, STLR, STLLR (B, H, W, X), LDAPR (FEAT_LRCPC), LDAPUR*/STLUR*
        /// (FEAT_LRCPC2).
        /// </summary>
        Ordered,
    }

    /// <summary>SCTLR_EL1.nAA (bit 6, FEAT_LSE2; RES0 without it — D24.2 SCTLR_EL1: "nAA, bit [6]").</summary>
    private const ulong SctlrNaa = 1UL << 6;

    /// <summary>
    /// FEAT_LSE2 (ID_AA64MMFR2_EL1.AT = 1: the Neoverse V1 and V2 presets). Hardware does not trap it, so the host model
    /// decides, not the VM's (writable) ID register.
    /// </summary>
    private bool HasLse2 => cpu.IdRegs.Model.At >= 1;

    /// <summary>
    /// AllInAlignedQuantity(address, size, alignment): the <paramref name="size"/> bytes from
    /// <paramref name="address"/> lie in one naturally aligned <paramref name="alignment"/>-byte block
    /// ("Align(address + size - 1, alignment) == Align(address, alignment)").
    /// </summary>
    internal static bool AllInAlignedQuantity(ulong address, int size, int alignment)
    {
        ulong mask = ~(ulong)(alignment - 1);
        return ((address + (ulong)size - 1) & mask) == (address & mask);
    }

    /// <summary>
    /// AArch64.UnalignedAccessFaults for an access of <paramref name="size"/> bytes that is not aligned to it
    /// (Mem[] / AArch64.MemAtomic / AArch64.ExclusiveMonitorsPass call it only then):
    /// <code>
    /// if AlignmentEnforced() then return TRUE;
    /// elsif accdesc.exclusive || accdesc.atomicop then
    ///     return !IsFeatureImplemented(FEAT_LSE2) || !AllInAlignedQuantity(address, size, 16);
    /// elsif accdesc.acqsc || accdesc.acqpc || accdesc.relsc then
    ///     return !IsFeatureImplemented(FEAT_LSE2) || (SCTLR_ELx[].nAA == '0' &amp;&amp; !AllInAlignedQuantity(address, size, 16));
    /// else return FALSE;
    /// </code>
    /// (the GCS, RCW and LS64 cases before them are not in the interpreter). So with FEAT_LSE2 an unaligned atomic or
    /// exclusive access faults only when it crosses a 16-byte boundary, whatever nAA says; an unaligned ordered one
    /// faults when it crosses one and SCTLR_EL1.nAA is 0, and never when nAA is 1; without FEAT_LSE2 every unaligned
    /// one faults. SCTLR_EL1.A = 1 faults them all. An access that does not fault here still takes the Device-memory
    /// alignment fault of AArch64.S1HasAlignmentFault after the walk (<see cref="MemoryAccess"/>).
    /// </summary>
    internal static bool UnalignedAccessFaults(OrderedAccess kind, ulong address, int size, bool alignmentEnforced, bool lse2, bool nAA)
    {
        if (alignmentEnforced || !lse2) return true;
        bool crosses = !AllInAlignedQuantity(address, size, 16);
        return kind == OrderedAccess.ExclusiveOrAtomic ? crosses : crosses && !nAA;
    }

    /// <summary>
    /// The alignment check of an exclusive, atomic or ordered access of <paramref name="size"/> bytes (the whole
    /// access: an exclusive pair is one access of both registers, AArch64.ExclusiveMonitorsPass(address, dbytes) and
    /// LDXP's "64-bit load exclusive pair … must be 128-bit aligned"): false when it took the alignment fault, with
    /// WnR = <paramref name="wnr"/> (<c>fault.write = !accdesc.read &amp;&amp; accdesc.write</c>: a store, not an atomic
    /// read-modify-write). The caller checks the SP alignment first (CheckSPAlignment precedes Mem[]).
    /// <para>An allowed unaligned access is then an ordinary <see cref="MemoryAccess"/>: the same bytes in memory
    /// order, split at a 4 KiB page as any access is (only an ordered access with nAA = 1 can cross a page: a 16-byte
    /// block never does). Single-copy atomicity (B2.2.1: with FEAT_LSE2 an access whose bytes all lie in one aligned
    /// 16-byte block is single-copy atomic) asks that no observer sees part of the access; in the interpreter that
    /// is nothing it can show: this vCPU completes the access before its next instruction, the read-modify-writes and
    /// store-exclusives of every vCPU run under one lock (A64Interpreter.Exclusive.cs), and an aligned access is the
    /// same byte copy, so allowing the unaligned ones adds no case a racing vCPU could tell apart.</para>
    /// </summary>
    private bool CheckOrderedAlignment(ulong address, int size, OrderedAccess kind, bool wnr)
    {
        if (IsAligned(address, size)) return true;
        if (!UnalignedAccessFaults(kind, address, size, AlignmentEnforced, HasLse2, (cpu.SctlrEl1 & SctlrNaa) != 0)) return true;
        AlignmentAbort(address, wnr ? S1Access.Write : S1Access.Read);
        return false;
    }

    /// <summary>AArch64.AlignmentFault taken to EL1 as a Data Abort (ISV = 0, WnR for a write, FAR = the VA).</summary>
    private void AlignmentAbort(ulong va, S1Access access) =>
        Stage1Abort(va, access, FscAlignment | (access == S1Access.Write ? 1u << 6 : 0));
}
