// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arm64.Vgic;

/// <summary>
/// arch/arm64/kvm/vgic-sys-reg-v3.c: the ICC registers of KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS (gic_v3_icc_reg_descs),
/// reached through kvm_sys_reg_get_user / kvm_sys_reg_set_user (64-bit values; an encoding outside the table:
/// ENOENT; a value the set_user accessor refuses: EINVAL). attr[15:0] is op0:op1:CRn:CRm:op2 (attr_to_id).
/// </summary>
internal static class VgicSysRegs
{
    public static ushort Enc(int op0, int op1, int crn, int crm, int op2) =>
        (ushort)((op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2);

    public static readonly ushort Pmr = Enc(3, 0, 4, 6, 0), Bpr0 = Enc(3, 0, 12, 8, 3), Bpr1 = Enc(3, 0, 12, 12, 3),
        Ctlr = Enc(3, 0, 12, 12, 4), Sre = Enc(3, 0, 12, 12, 5), Igrpen0 = Enc(3, 0, 12, 12, 6), Igrpen1 = Enc(3, 0, 12, 12, 7);

    private static bool IsAp0r(ushort e, out int n) => Range(e, Enc(3, 0, 12, 8, 4), out n);
    private static bool IsAp1r(ushort e, out int n) => Range(e, Enc(3, 0, 12, 9, 0), out n);

    private static bool Range(ushort e, ushort first, out int n)
    {
        n = e - first;
        return n is >= 0 and < 4;
    }

    /// <summary>vgic_v3_has_cpu_sysregs_attr: the encoding is in the table.</summary>
    public static bool Has(ushort e) =>
        e == Pmr || e == Bpr0 || e == Bpr1 || e == Ctlr || e == Sre || e == Igrpen0 || e == Igrpen1 ||
        IsAp0r(e, out _) || IsAp1r(e, out _);

    /// <summary>vgic_v3_max_apr_idx: 7 priority bits → 3, 6 → 1, otherwise 0.</summary>
    private static int MaxAprIdx(VgicCpu c) => c.NumPriBits switch { 7 => 3, 6 => 1, _ => 0 };

    /// <summary>The get_user accessors; ENOENT for an unknown encoding, EINVAL for an AP register beyond max_apr_idx.</summary>
    public static long Get(KvmVcpu vcpu, ushort e, out ulong val)
    {
        var c = VgicCpu.Of(vcpu);
        val = 0;
        if (e == Pmr) val = c.Pmr & 0xff;
        else if (e == Bpr0) val = c.Bpr0 & 7;
        // get_gic_bpr1: with CBPR, "min((vmcr.bpr + 1), 7U)".
        else if (e == Bpr1) val = c.Cbpr ? Math.Min(c.Bpr0 + 1, 7u) : c.Bpr1 & 7;
        else if (e == Ctlr) val = CtlrValue(c);
        else if (e == Sre) val = c.Sre;
        else if (e == Igrpen0) val = c.Grpen0 ? 1UL : 0;
        else if (e == Igrpen1) val = c.Grpen1 ? 1UL : 0;
        else if (IsAp0r(e, out int n0)) { if (n0 > MaxAprIdx(c)) return Err.EINVAL; val = c.Ap0r[n0]; }
        else if (IsAp1r(e, out int n1)) { if (n1 > MaxAprIdx(c)) return Err.EINVAL; val = c.Ap1r[n1]; }
        else return Err.ENOENT;
        return 0;
    }

    /// <summary>
    /// ICC_CTLR_EL1 as get_gic_ctlr builds it: PRIbits = num_pri_bits - 1 [10:8], IDbits [13:11], SEIS [14] and A3V
    /// [15] from ICH_VTR_EL2, CBPR [0] and EOImode [1] from the VMCR.
    /// </summary>
    public static ulong CtlrValue(VgicCpu c) =>
        ((ulong)(c.NumPriBits - 1) << 8) | ((ulong)c.NumIdBits << 11) | ((ulong)VgicCpu.HostSeis << 14) |
        ((ulong)VgicCpu.HostA3v << 15) | (c.Cbpr ? 1UL : 0) | (c.EoiMode ? 2UL : 0);

    /// <summary>The set_user accessors. Nothing changes when one refuses.</summary>
    public static long Set(KvmVcpu vcpu, ushort e, ulong val)
    {
        var c = VgicCpu.Of(vcpu);
        if (e == Pmr) c.Pmr = (uint)(val & 0xff);
        else if (e == Bpr0) c.Bpr0 = (uint)(val & 7);
        else if (e == Bpr1) { if (!c.Cbpr) c.Bpr1 = (uint)(val & 7); }   // set_gic_bpr1: ignored while CBPR is set
        else if (e == Ctlr)
        {
            // set_gic_ctlr: "Disallow restoring VM state if not supported by this hardware": PRIbits and IDbits no
            // larger than the vCPU's, SEIS and A3V equal to the host's.
            int pri = (int)((val >> 8) & 7) + 1, id = (int)((val >> 11) & 7);
            if (pri > c.NumPriBits || id > c.NumIdBits) return Err.EINVAL;
            if ((int)((val >> 14) & 1) != VgicCpu.HostSeis || (int)((val >> 15) & 1) != VgicCpu.HostA3v) return Err.EINVAL;
            c.NumPriBits = pri;
            c.NumIdBits = id;
            c.Cbpr = (val & 1) != 0;
            c.EoiMode = (val & 2) != 0;
        }
        // set_gic_sre: "Validate SRE bit" — the value itself is not stored.
        else if (e == Sre) { if ((val & 1) == 0) return Err.EINVAL; }
        else if (e == Igrpen0) c.Grpen0 = (val & 1) != 0;
        else if (e == Igrpen1) c.Grpen1 = (val & 1) != 0;
        else if (IsAp0r(e, out int n0)) { if (n0 > MaxAprIdx(c)) return Err.EINVAL; c.Ap0r[n0] = (uint)val; }
        else if (IsAp1r(e, out int n1)) { if (n1 > MaxAprIdx(c)) return Err.EINVAL; c.Ap1r[n1] = (uint)val; }
        else return Err.ENOENT;
        return 0;
    }
}
