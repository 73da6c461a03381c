// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The self-hosted debug registers of arch/arm64/kvm/sys_regs.c sys_reg_descs[] (6.14+ layout):
/// <list type="bullet">
/// <item>DBG{BVR,BCR,WVR,WCR}n_EL1, n = 0..15 (DBG_BCR_BVR_WCR_WVR_EL1(n): trap_dbg_wb_reg, reset_dbg_wb_reg to rd->val
/// = 0, get_dbg_wb_reg / set_dbg_wb_reg store the whole 64-bit value: no write mask). All sixteen of each are listed
/// and accessible whatever ID_AA64DFR0_EL1.BRPs/WRPs say (the emulated host reports 6 breakpoints and 4 watchpoints,
/// Arm64HostCpu.Aa64Dfr0): sys_reg_descs[] has no visibility callback on them, and get-reg-list.c's base_regs lists
/// all 64.</item>
/// <item>MDCCINT_EL1 (trap_debug_regs, reset_val 0); MDSCR_EL1 stays in Arm64SysRegs' plain table.</item>
/// <item>OSLSR_EL1: reset_val OSLSR_EL1_OSLM_IMPLEMENTED (BIT(3)); set_oslsr_el1 refuses (EINVAL) any change but OSLK
/// (bit 1); the guest's MSR is write_to_read_only (UNDEF); OSLAR_EL1 (write-only, not listed) forwards its OSLK (bit 0)
/// to OSLSR_EL1.OSLK (kvm_debug_handle_oslar).</item>
/// <item>DBGVCR32_EL2: reset_val 0, listed; an EL2 register, so the EL1 guest's access is UNDEFINED.</item>
/// <item>MDRAR_EL1, OSDLR_EL1, DBGPRCR_EL1, DBGCLAIMSET/CLR_EL1, MDCCSR_EL0, DBGDTR_EL0, DBGDTR[RT]X_EL0: trap_raz_wi,
/// no storage and no user accessor, so not listed and ENOENT to KVM_GET/SET_ONE_REG (id_to_sys_reg_desc).</item>
/// </list>
/// DBGAUTHSTATUS_EL1 (the host's value) is not modelled: the guest's access stops the run.
/// </summary>
internal static class Arm64DebugRegs
{
    /// <summary>OSLSR_EL1_OSLM_IMPLEMENTED: OSLM = 0b10, i.e. bit 3.</summary>
    public const ulong OslsrReset = 1UL << 3;

    /// <summary>OSLSR_EL1_OSLK (bit 1), the only bit set_oslsr_el1 lets userspace change.</summary>
    public const ulong OslsrOslk = 1UL << 1;

    /// <summary>OSLAR_EL1_OSLK (bit 0).</summary>
    public const ulong OslarOslk = 1UL << 0;

    private static SysRegDesc Wb(string name, int n, int op2) => new($"{name}{n}_EL1", 2, 0, 0, n, op2, SysRegReset.Value, 0);

    private static SysRegDesc RazWi(string name, int op0, int op1, int crn, int crm, int op2) =>
        new(name, op0, op1, crn, crm, op2, SysRegReset.None, User: SysRegUser.NotListed, Guest: SysRegGuest.RazWi);

    public static IEnumerable<SysRegDesc> Descs()
    {
        for (int n = 0; n < 16; n++)
        {
            yield return Wb("DBGBVR", n, 4);
            yield return Wb("DBGBCR", n, 5);
            yield return Wb("DBGWVR", n, 6);
            yield return Wb("DBGWCR", n, 7);
        }
        yield return new("MDCCINT_EL1", 2, 0, 0, 2, 0, SysRegReset.Value, 0);
        yield return RazWi("MDRAR_EL1", 2, 0, 1, 0, 0);
        yield return new("OSLAR_EL1", 2, 0, 1, 0, 4, SysRegReset.None, User: SysRegUser.NotListed, Guest: SysRegGuest.Oslar);
        yield return new("OSLSR_EL1", 2, 0, 1, 1, 4, SysRegReset.Value, OslsrReset, GuestWritable: false, User: SysRegUser.Oslsr);
        yield return RazWi("OSDLR_EL1", 2, 0, 1, 3, 4);
        yield return RazWi("DBGPRCR_EL1", 2, 0, 1, 4, 4);
        yield return RazWi("DBGCLAIMSET_EL1", 2, 0, 7, 8, 6);
        yield return RazWi("DBGCLAIMCLR_EL1", 2, 0, 7, 9, 6);
        yield return RazWi("MDCCSR_EL0", 2, 3, 0, 1, 0);
        yield return RazWi("DBGDTR_EL0", 2, 3, 0, 4, 0);
        yield return RazWi("DBGDTRRX_EL0", 2, 3, 0, 5, 0);
        yield return new("DBGVCR32_EL2", 2, 4, 0, 7, 0, SysRegReset.Value, 0, Guest: SysRegGuest.Undefined);
    }
}
