// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The TDX module's measurement TDCALLs, as intel/tdx-module implements them (src/td_dispatcher/vm_exits/
/// tdg_mr_rtmr_extend.c, tdg_mr_report.c) and Linux calls them (drivers/virt/coco/tdx-guest/tdx-guest.c,
/// arch/x86/coco/tdx/tdx.c tdx_mcall_get_report0 — RCX = the TDREPORT buffer, RDX = REPORTDATA, R8 =
/// TDREPORT_SUBTYPE_0 — and tdx_mcall_extend_rtmr — RCX = the 48-byte data, RDX = the index; leaf numbers from
/// arch/x86/include/asm/shared/tdx.h TDG_MR_RTMR_EXTEND = 2, TDG_MR_REPORT = 4). The registers live in
/// Arch/X86/TdxMeasurement.cs, the report's layout and MAC in Arch/X86/TdxReport.cs. The module reads and writes the
/// buffers through the TD's own GPA space (check_walk_and_map_guest_side_gpa): a PENDING private page is the #VE of an
/// EPT violation (qualification: read, or write for the report), GLA not valid; with SEPT_VE_DISABLE KVM ends the TD as
/// for a guest access (X86Emulator.TdxModule.cs TdPendingAccess); a page KVM has not mapped is mapped first, as for a
/// guest access. A shared GPA without a memslot (an MMIO access by the module) is not modelled: an emulation failure.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>TDX_OPERAND_INVALID with operand id RDX (2) and R8 (8) (api_error_with_operand_id, OPERAND_ID_RDX / _R8).</summary>
    private const ulong TdxOperandInvalidRdx = 0xC000_0100_0000_0002, TdxOperandInvalidR8 = 0xC000_0100_0000_0008;

    /// <summary>
    /// TDG.MR.RTMR.EXTEND (tdg_mr_rtmr_extend.c), in its order: RCX not 64-byte aligned → TDX_OPERAND_INVALID (RCX);
    /// the GPA checked PRIVATE_ONLY (the shared bit or bits at or above the GPAW → TDX_OPERAND_INVALID, RCX) and read;
    /// RDX ≥ NUM_RTMRS (4) → TDX_OPERAND_INVALID (RDX); else RTMR[RDX] = SHA-384(RTMR[RDX] || the 48 bytes), TDX_SUCCESS.
    /// </summary>
    private void MrRtmrExtend()
    {
        ulong gpa = _cpu.Gpr[X86Cpu.RCX];
        ulong index = _cpu.Gpr[X86Cpu.RDX];
        var td = CocoState.Tdx(_kvm);
        if ((gpa & 63) != 0 || !TdModuleGpaValid(td, gpa, privateOnly: true))
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidRcx;
            return;
        }
        Span<byte> extension = stackalloc byte[TdMeasurementState.DigestSize];
        TdModuleAccess(gpa, extension, write: false);
        if (index >= TdMeasurementState.RtmrCount)
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidRdx;
            return;
        }
        TdxMeasurement.ExtendRtmr(td, (int)index, extension);
        _cpu.Gpr[X86Cpu.RAX] = TdxSuccess;
    }

    /// <summary>
    /// TDG.MR.REPORT (tdg_mr_report.c), in its order: RCX not 1024-byte aligned → TDX_OPERAND_INVALID (RCX); RDX not
    /// 64-byte aligned → (RDX); the REPORTDATA GPA checked (PRIVATE_OR_SHARED; invalid → RDX) and read; R8 ≠
    /// TDX_REPORT_SUBTYPE (0) → (R8); the report built (<see cref="TdxReport.Build"/>); the TDREPORT GPA checked
    /// (PRIVATE_OR_SHARED; invalid → RCX) and the 1024 bytes written; TDX_SUCCESS. The interruption point before
    /// SEAMREPORT (a pending interrupt resumes the TD at the TDCALL) is not modelled.
    /// </summary>
    private void MrReport()
    {
        ulong reportGpa = _cpu.Gpr[X86Cpu.RCX];
        ulong dataGpa = _cpu.Gpr[X86Cpu.RDX];
        var td = CocoState.Tdx(_kvm);
        if ((reportGpa & (TdxReport.Size - 1)) != 0)
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidRcx;
            return;
        }
        if ((dataGpa & (TdxReport.ReportDataSize - 1)) != 0 || !TdModuleGpaValid(td, dataGpa, privateOnly: false))
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidRdx;
            return;
        }
        Span<byte> reportData = stackalloc byte[TdxReport.ReportDataSize];
        TdModuleAccess(dataGpa, reportData, write: false);
        if (_cpu.Gpr[8] != 0)
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidR8;
            return;
        }
        var report = TdxReport.Build(_kvm.Kernel, td, reportData);
        if (!TdModuleGpaValid(td, reportGpa, privateOnly: false))
        {
            _cpu.Gpr[X86Cpu.RAX] = TdxOperandInvalidRcx;
            return;
        }
        TdModuleAccess(reportGpa, report, write: true);
        _cpu.Gpr[X86Cpu.RAX] = TdxSuccess;
    }

    /// <summary>
    /// check_gpa_validity: no bit at or above the GPAW (52 with the shared bit at 51, else 48), and with
    /// PRIVATE_ONLY the shared bit clear.
    /// </summary>
    private static bool TdModuleGpaValid(TdxInfo td, ulong gpa, bool privateOnly)
    {
        int gpaw = td.SharedGpaBit == 1UL << 51 ? 52 : 48;
        if ((gpa >> gpaw) != 0) return false;
        return !privateOnly || (gpa & td.SharedGpaBit) == 0;
    }

    /// <summary>The module's access to a TD buffer (inside one page: the callers' alignments guarantee it).</summary>
    private void TdModuleAccess(ulong gpa, Span<byte> data, bool write)
    {
        var r = write ? _mem.Write(gpa, data) : _mem.Read(gpa, data);
        switch (r.Status)
        {
            case GpaStatus.Done:
                return;
            case GpaStatus.Mmio:
                throw new EmulationFailure($"the TDX module's access to shared GPA 0x{gpa:X} without a memslot is not modelled", haveInstructionBytes: true);
        }
        // A PENDING page without SEPT_VE_DISABLE: inject_ve_and_return_to_td, exit qualification = the access rights
        // (bit 0 read, bit 1 write), GLA not valid, the GPA.
        if (r.TdPending && !TdSeptVeDisabled) throw InjectVe(TdVeInfo.ExitReasonEptViolation, write ? 2UL : 1UL, 0, gpa, 0);
        throw new MemoryFaultStop(r);
    }
}
