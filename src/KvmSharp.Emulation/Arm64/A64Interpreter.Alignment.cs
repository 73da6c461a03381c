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
/// <see cref="Step"/>; a misaligned SP base is the SP alignment fault, EC 0x26). The exclusive and
/// acquire/release forms are always checked (A64Interpreter.Exclusive.cs); the LSE atomics are not in the
/// interpreter; DC ZVA faults on any Device memory type (A64Interpreter.CacheMaintenance.cs). The fault is a Data
/// Abort to EL1 (AArch64.AlignmentFault): EC 0x25 (0x24 from EL0), DFSC 0b100001, WnR for a write, ISV = 0 (a
/// stage-1 fault), FAR_EL1 = the faulting address.
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

    /// <summary>AArch64.AlignmentFault taken to EL1 as a Data Abort (ISV = 0, WnR for a write, FAR = the VA).</summary>
    private void AlignmentAbort(ulong va, S1Access access) =>
        Stage1Abort(va, access, FscAlignment | (access == S1Access.Write ? 1u << 6 : 0));
}
