// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The TDX module's per-vCPU VE_INFO (TDVPS ve_info; intel/tdx-module src/td_dispatcher/vm_exits/tdg_vp_veinfo_get.c):
/// what the module recorded when it injected the last #VE, read and freed by TDG.VP.VEINFO.GET. While
/// <see cref="Valid"/> is set another #VE becomes a #DF (TDX module spec, "#VE injection": the guest must read the
/// info first; Linux arch/x86/coco/tdx/tdx.c tdx_get_ve_info: "any #VE that occurs while the valid flag is set will
/// lead to #DF").
/// </summary>
internal sealed class TdVeInfo
{
    /// <summary>arch/x86/include/uapi/asm/vmx.h EXIT_REASON_HLT.</summary>
    public const uint ExitReasonHlt = 12;

    /// <summary>EXIT_REASON_IO_INSTRUCTION.</summary>
    public const uint ExitReasonIoInstruction = 30;

    /// <summary>EXIT_REASON_EPT_VIOLATION.</summary>
    public const uint ExitReasonEptViolation = 48;

    public bool Valid;
    public uint ExitReason;
    public ulong ExitQualification;
    public ulong Gla;
    public ulong Gpa;
    /// <summary>VM-exit instruction length (R10 31:0 of VEINFO.GET; Linux ve_instr_len uses it for HLT and I/O).</summary>
    public uint InstructionLength;
    /// <summary>VM-exit instruction information (R10 63:32).</summary>
    public uint InstructionInfo;

    /// <summary>
    /// Intel SDM Vol. 3C Table 28-5, exit qualification for I/O instructions: size - 1 in 2:0, direction in 3
    /// (1 = IN), string in 4, REP in 5, operand encoding in 6 (1 = immediate port), port in 31:16 (Linux tdx.c
    /// VE_GET_IO_SIZE, VE_IS_IO_IN, VE_IS_IO_STRING, VE_GET_PORT_NUM read the same bits).
    /// </summary>
    public static ulong IoQualification(int size, bool input, bool immediate, ushort port, bool isString = false, bool rep = false) =>
        (ulong)(uint)(size - 1) | (input ? 1UL << 3 : 0) | (isString ? 1UL << 4 : 0) | (rep ? 1UL << 5 : 0) |
        (immediate ? 1UL << 6 : 0) | ((ulong)port << 16);

    /// <summary>Records a #VE's information and marks it valid (the module's inject_ve / tdx_inject_ve).</summary>
    public void Record(uint exitReason, ulong qualification, ulong gla, ulong gpa, uint instructionLength, uint instructionInfo = 0)
    {
        ExitReason = exitReason;
        ExitQualification = qualification;
        Gla = gla;
        Gpa = gpa;
        InstructionLength = instructionLength;
        InstructionInfo = instructionInfo;
        Valid = true;
    }
}
