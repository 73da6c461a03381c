// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The "load/store register (unprivileged)" group (Arm ARM DDI 0487 C4.1.94: size 111 0 00 opc 0 imm9 10 Rn Rt; C6.2
/// LDTR/LDTRB/LDTRH/LDTRSB/LDTRSH/LDTRSW/STTR/STTRB/STTRH): LDUR/STUR's access (imm9 unscaled, no writeback, opc as
/// for LDUR: 00 store, 01 load, 10 load signed to 64 bits, 11 load signed to 32 bits; size 10 opc 11 and size 11 opc
/// 1x unallocated — no PRFM here) made as an EL0 access when the instruction runs at EL1 with PSTATE.UAO = 0. The
/// pseudocode (LDTR "Operation" / AArch64.UnprivilegedAccess):
/// <code>
/// unpriv_at_el1 = PSTATE.EL == EL1 &amp;&amp; !(EL2Enabled() &amp;&amp; HaveNVExt() &amp;&amp; HCR_EL2.&lt;NV,NV1&gt; == '11');
/// user_access_override = IsFeatureImplemented(FEAT_UAO) &amp;&amp; PSTATE.UAO == '1';
/// privileged = !(unpriv_at_el1 || unpriv_at_el2) || user_access_override;   // accdesc.el = EL0 when !privileged
/// </code>
/// (a KVM guest's EL2 is the host's: HCR_EL2.NV is 0, and the guest never runs at EL2). An EL0 access uses the EL0
/// permissions of AArch64.S1DirectBasePermissions (AP[1] grants access, AP[2] makes it read-only) and PSTATE.PAN does
/// not apply to it ("if accdesc.el == EL0 then …" takes the unprivileged permissions; the PAN test is on the
/// privileged ones, A64Stage1.Translate's <c>pan</c> argument). At EL0, or at EL1 with PSTATE.UAO = 1, it is an
/// ordinary access of the current EL, PAN included. Either way an abort is taken from the current EL (EC 0x25 at
/// EL1, FAR = the VA): only the permissions change, not the exception level.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>The data accesses of the current instruction are EL0 accesses made at EL1 (LDTR/STTR with UAO = 0).</summary>
    private bool _unprivilegedAccess;

    /// <summary>LDTR*/STTR* (see the class comment); false for any other encoding.</summary>
    private bool TryLoadStoreUnprivileged(uint insn)
    {
        if ((insn & 0x3F20_0C00) != 0x3800_0800) return false;
        int size = (int)(insn >> 30);
        uint opc = (insn >> 22) & 3;
        if ((size == 2 && opc == 3) || (size == 3 && opc >= 2)) return UndefinedTrue();
        // IsFeatureImplemented(FEAT_UAO): the host CPU's (ID_AA64MMFR2_EL1.UAO), as A64Interpreter.PstateFields.cs gates MSR UAO.
        bool userAccessOverride = HasUao && (cpu.Pstate & UaoBit) != 0;
        _unprivilegedAccess = !cpu.AtEl0 && !userAccessOverride;
        try
        {
            LoadStore(insn, (ulong)(long)((int)(insn << 11) >> 23), writeback: false, postIndex: false);
        }
        finally
        {
            _unprivilegedAccess = false;
        }
        return true;
    }

    /// <summary>
    /// Stage 1 for a data access of <see cref="MemoryAccess"/>: <see cref="Translate(ulong, S1Access, out ulong, bool)"/>,
    /// or for an LDTR/STTR at EL1 with UAO = 0 the walk with EL0's permissions and without PAN (the class comment), its
    /// faults taken from EL1.
    /// </summary>
    private bool TranslateData(ulong va, S1Access access, out ulong ipa, bool aligned) =>
        Translate(va, access, out ipa, out _, aligned, unprivileged: _unprivilegedAccess);
}
