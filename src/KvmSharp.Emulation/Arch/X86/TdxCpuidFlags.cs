// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The mutable TDCS.CPUID_FLAGS of a TD (intel/tdx-module, main branch at 1666adc, a 2.x module:
/// include/data_structures/tdx_tdcs.h cpuid_flags_t, src/common/helpers/helpers.c update_mutable_cpuid_flags). The
/// module recomputes them whenever TDG.VM.WR changes TD_CTLS.REDUCE_VE or FEATURE_PARAVIRT_CTLS (metadata_td.c
/// md_td_write_element) from the TD's configured CPUID(1) and CPUID(7,0); as the configured values never change after
/// TDH.MNG.INIT, they are a pure function of (configured CPUID, REDUCE_VE, FEATURE_PARAVIRT_CTLS) and are computed on
/// demand here. They drive td_cpuid_exit's virtual CPUID(1)/(7,0) bits and its faulting leaves 9/0xF/0x10/0x1B
/// (td_cpuid.c) and the MSRs whose action is GP_OR_VE_BY_&lt;feature&gt; (td_msr_access.c rd_wr_msr_generic_case): a
/// feature the TD sees in CPUID makes its MSRs a #VE (for the VMM to emulate), a cleared one makes them #GP. The
/// immutable flags (monitor/mwait, xTPR, TSX, WAITPKG …) are not modelled here; FEATURE_PARAVIRT_CTLS has no MWAIT
/// bit (tdx_tdcs.h feature_paravirt_ctls_t bits 0–11 only).
/// </summary>
internal readonly record struct TdxCpuidFlags(
    bool Dca, bool TscDeadline, bool Est, bool Tm2, bool Mce, bool Mca, bool Mtrr, bool Acpi,
    bool RdtA, bool RdtM, bool Tme, bool Pconfig, bool CoreCapabilities)
{
    /// <summary>tdx_tdcs.h feature_paravirt_ctls_t: the bit of each feature in FEATURE_PARAVIRT_CTLS.</summary>
    public const ulong PvCoreCapabilities = 1UL << 0, PvDca = 1UL << 1, PvEst = 1UL << 2, PvMca = 1UL << 3,
        PvMtrr = 1UL << 4, PvPconfig = 1UL << 5, PvRdtA = 1UL << 6, PvRdtM = 1UL << 7, PvAcpi = 1UL << 8,
        PvTm2 = 1UL << 9, PvTme = 1UL << 10, PvTscDeadline = 1UL << 11;

    /// <summary>feature_paravirt_ctls_t's defined bits (11:0; 63:12 reserved — the guest write mask, 4095).</summary>
    public const ulong PvDefined = 0xFFF;

    /// <summary>CPUID(1).ECX: DCA 18, TSC_DEADLINE 24, EST 7, TM2 8 (x86_defs.h cpuid_01_ecx_t).</summary>
    public const uint EcxDca = 1u << 18, EcxTscDeadline = 1u << 24, EcxEst = 1u << 7, EcxTm2 = 1u << 8;

    /// <summary>CPUID(1).EDX: MCE 7, MTRR 12, MCA 14, ACPI 22 (cpuid_01_edx_t).</summary>
    public const uint EdxMce = 1u << 7, EdxMtrr = 1u << 12, EdxMca = 1u << 14, EdxAcpi = 1u << 22;

    /// <summary>CPUID(7,0): EBX RDT_M 12, RDT_A 15; ECX TME 13; EDX PCONFIG 18, IA32_CORE_CAPABILITIES 30.</summary>
    public const uint Ebx7RdtM = 1u << 12, Ebx7RdtA = 1u << 15, Ecx7Tme = 1u << 13, Edx7Pconfig = 1u << 18,
        Edx7CoreCapabilities = 1u << 30;

    /// <summary>
    /// update_mutable_cpuid_flags: a positive flag is "configured bit &amp;&amp; (!REDUCE_VE || its PV control)"; the
    /// negative-polarity ones (MCE, MCA, MTRR, CORE_CAPABILITIES: *_not_supported) are "REDUCE_VE &amp;&amp; !(PV control
    /// &amp;&amp; configured bit)" — so without REDUCE_VE the module reports MCE, MCA, MTRR and CORE_CAPABILITIES as
    /// supported whatever was configured, and with it they need the PV bit (MCE shares the MCA control).
    /// </summary>
    public static TdxCpuidFlags Compute(uint ecx1, uint edx1, uint ebx7, uint ecx7, uint edx7, bool reduceVe, ulong pv)
    {
        bool Pos(uint reg, uint bit, ulong ctl) => (reg & bit) != 0 && (!reduceVe || (pv & ctl) != 0);
        bool Neg(uint reg, uint bit, ulong ctl) => !(reduceVe && !((pv & ctl) != 0 && (reg & bit) != 0));
        return new TdxCpuidFlags(
            Dca: Pos(ecx1, EcxDca, PvDca),
            TscDeadline: Pos(ecx1, EcxTscDeadline, PvTscDeadline),
            Est: Pos(ecx1, EcxEst, PvEst),
            Tm2: Pos(ecx1, EcxTm2, PvTm2),
            Mce: Neg(edx1, EdxMce, PvMca),
            Mca: Neg(edx1, EdxMca, PvMca),
            Mtrr: Neg(edx1, EdxMtrr, PvMtrr),
            Acpi: Pos(edx1, EdxAcpi, PvAcpi),
            RdtA: Pos(ebx7, Ebx7RdtA, PvRdtA),
            RdtM: Pos(ebx7, Ebx7RdtM, PvRdtM),
            Tme: Pos(ecx7, Ecx7Tme, PvTme),
            Pconfig: Pos(edx7, Edx7Pconfig, PvPconfig),
            CoreCapabilities: Neg(edx7, Edx7CoreCapabilities, PvCoreCapabilities));
    }

    /// <summary>The flags of <paramref name="td"/> now: its configured CPUID (<see cref="TdxModule.TdCpuid"/>) and its TDCS controls.</summary>
    public static TdxCpuidFlags Of(TdxInfo td)
    {
        var table = TdxModule.TdCpuid(td).ToArray();
        var f1 = TdxModule.Find(table, 1, 0);
        var f7 = TdxModule.Find(table, 7, 0);
        var c = TdxMetadata.Controls(td);
        ulong ctls, pv;
        lock (c) (ctls, pv) = (c.TdCtls, c.FeatureParavirtCtls);
        return Compute(f1?.ecx ?? 0, f1?.edx ?? 0, f7?.ebx ?? 0, f7?.ecx ?? 0, f7?.edx ?? 0,
            (ctls & TdxMetadata.TdCtlsReduceVe) != 0, pv);
    }

    /// <summary>
    /// td_cpuid_exit's "mutable cases": CPUID(1) ECX DCA/TSC_DEADLINE/EST/TM2 and EDX MCE/MCA/MTRR/ACPI are written
    /// from the flags, whatever the configured value.
    /// </summary>
    public (uint Ecx, uint Edx) ApplyLeaf1(uint ecx, uint edx)
    {
        ecx = Set(ecx, EcxDca, Dca);
        ecx = Set(ecx, EcxTscDeadline, TscDeadline);
        ecx = Set(ecx, EcxEst, Est);
        ecx = Set(ecx, EcxTm2, Tm2);
        edx = Set(edx, EdxMce, Mce);
        edx = Set(edx, EdxMca, Mca);
        edx = Set(edx, EdxMtrr, Mtrr);
        edx = Set(edx, EdxAcpi, Acpi);
        return (ecx, edx);
    }

    /// <summary>td_cpuid_exit's CPUID(7,0) mutable cases: EBX RDT_A/RDT_M, ECX TME, EDX PCONFIG and IA32_CORE_CAPABILITIES.</summary>
    public (uint Ebx, uint Ecx, uint Edx) ApplyLeaf7(uint ebx, uint ecx, uint edx) =>
        (Set(Set(ebx, Ebx7RdtA, RdtA), Ebx7RdtM, RdtM), Set(ecx, Ecx7Tme, Tme),
         Set(Set(edx, Edx7Pconfig, Pconfig), Edx7CoreCapabilities, CoreCapabilities));

    private static uint Set(uint reg, uint bit, bool on) => on ? reg | bit : reg & ~bit;
}
