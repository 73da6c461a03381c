// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>How sys_regs.c declares an ID register (ID_SANITISED / ID_WRITABLE / ID_FILTERED, ID_UNALLOCATED, …).</summary>
internal enum IdRegKind
{
    /// <summary>ID_SANITISED / ID_WRITABLE / ID_FILTERED: the VM's value, checked by arm64_check_features on write.</summary>
    Sanitised,

    /// <summary>ID_UNALLOCATED / ID_HIDDEN (raz_visibility): reads 0, a non-zero write is EINVAL.</summary>
    Raz,

    /// <summary>AA32_ID_SANITISED without 32-bit EL0 (aa32_id_visibility: REG_RAZ | REG_USER_WI): reads 0, writes ignored.</summary>
    Aa32RazUserWi,

    /// <summary>IMPLEMENTATION_ID (MIDR/REVIDR/AIDR): set_imp_id_reg, writable only with KVM_CAP_ARM_WRITABLE_IMP_ID_REGS.</summary>
    Implementation,
}

/// <summary>arch/arm64/include/asm/cpufeature.h enum ftr_type (the part KVM's safe-value check uses).</summary>
internal enum FtrType
{
    Exact,
    LowerSafe,
    HigherSafe,
    HigherOrZeroSafe,
}

/// <summary>One struct arm64_ftr_bits: a field, its signedness, safe-value type and (for FTR_EXACT) safe value.</summary>
internal readonly record struct IdField(int Shift, int Width, bool Signed, FtrType Type, long SafeVal = 0)
{
    public ulong Mask => ((1UL << Width) - 1) << Shift;

    /// <summary>arm64_ftr_value: the field, sign-extended when signed.</summary>
    public long Value(ulong reg)
    {
        ulong raw = (reg >> Shift) & ((1UL << Width) - 1);
        return Signed ? (long)(raw << (64 - Width)) >> (64 - Width) : (long)raw;
    }

    /// <summary>arm64_ftr_safe_value(ftrp, new, cur).</summary>
    public long SafeValue(long @new, long cur) => Type switch
    {
        FtrType.Exact => SafeVal,
        FtrType.LowerSafe => Math.Min(@new, cur),
        FtrType.HigherSafe => Math.Max(@new, cur),
        _ => @new == 0 || cur == 0 ? 0 : Math.Max(@new, cur),
    };
}

/// <summary>
/// One ID register of sys_reg_descs[]: its encoding, kind, host value (rd->reset, the limit), writable mask (rd->val)
/// and the arm64_ftr_bits of its fields that this model checks.
/// </summary>
internal sealed record IdRegDesc(string Name, int Op0, int Op1, int CRn, int CRm, int Op2, IdRegKind Kind, ulong Limit = 0,
    ulong WritableMask = 0, IdField[]? Fields = null)
{
    public IdField[] FieldList => Fields ?? [];
}

/// <summary>
/// The ID registers of arch/arm64/kvm/sys_regs.c sys_reg_descs[] (MIDR_EL1, REVIDR_EL1, the CRm 1..7 block, AIDR_EL1,
/// CTR_EL0) with the 6.7+ writable-ID-register rules: set_id_reg / arm64_check_features (a field whose mask is inside
/// the writable mask may move only towards its safe value relative to the host's; every other bit must equal the
/// host's; -E2BIG is reported as -EINVAL), set_id_aa64pfr0_el1, set_id_aa64dfr0_el1 and set_imp_id_reg. The values
/// are VM-wide (kvm->arch.id_regs), so KVM_ARM_VCPU_INIT does not reset them. The checked fields are the ones
/// tools/testing/selftests/kvm/arm64/set_id_regs.c exercises plus EL0..EL3; any other field of a writable mask is
/// treated as fixed [D: a simplification of cpufeature.c's full ftr_bits tables].
/// </summary>
internal static class Arm64IdRegs
{
    private static IdField U(int shift, FtrType t = FtrType.LowerSafe, long safe = 0, int width = 4) => new(shift, width, false, t, safe);

    private static IdField S(int shift, FtrType t = FtrType.LowerSafe, long safe = 0) => new(shift, 4, true, t, safe);

    private static IdRegDesc Aa32(string name, int crm, int op2) =>
        new(name, 3, 0, 0, crm, op2, Arm64HostCpu.Supports32BitEl0 ? IdRegKind.Sanitised : IdRegKind.Aa32RazUserWi);

    private static IdRegDesc Raz(string name, int crm, int op2) => new(name, 3, 0, 0, crm, op2, IdRegKind.Raz);

    private static IdRegDesc Unallocated(int crm, int op2) => Raz($"S3_0_C0_C{crm}_{op2}", crm, op2);

    /// <summary>
    /// Sanitised registers whose host value is 0: only 0 is within the limit, whatever the mask; the mask is rd->val
    /// as KVM_ARM_GET_REG_WRITABLE_MASKS reports it (field layouts from arch/arm64/tools/sysreg).
    /// </summary>
    private static IdRegDesc Zero(string name, int crm, int op2, ulong mask) => new(name, 3, 0, 0, crm, op2, IdRegKind.Sanitised, 0, mask);

    /// <summary>In sys_reg_descs[] order (by encoding).</summary>
    public static readonly IdRegDesc[] Table =
    [
        new("MIDR_EL1", 3, 0, 0, 0, 0, IdRegKind.Implementation, Arm64HostCpu.Midr, 0xffff_ffff),
        new("REVIDR_EL1", 3, 0, 0, 0, 6, IdRegKind.Implementation, Arm64HostCpu.Revidr, ~0UL),
        // CRm=1
        Aa32("ID_PFR0_EL1", 1, 0), Aa32("ID_PFR1_EL1", 1, 1), Aa32("ID_DFR0_EL1", 1, 2), Raz("ID_AFR0_EL1", 1, 3),
        Aa32("ID_MMFR0_EL1", 1, 4), Aa32("ID_MMFR1_EL1", 1, 5), Aa32("ID_MMFR2_EL1", 1, 6), Aa32("ID_MMFR3_EL1", 1, 7),
        // CRm=2
        Aa32("ID_ISAR0_EL1", 2, 0), Aa32("ID_ISAR1_EL1", 2, 1), Aa32("ID_ISAR2_EL1", 2, 2), Aa32("ID_ISAR3_EL1", 2, 3),
        Aa32("ID_ISAR4_EL1", 2, 4), Aa32("ID_ISAR5_EL1", 2, 5), Aa32("ID_MMFR4_EL1", 2, 6), Aa32("ID_ISAR6_EL1", 2, 7),
        // CRm=3
        Aa32("MVFR0_EL1", 3, 0), Aa32("MVFR1_EL1", 3, 1), Aa32("MVFR2_EL1", 3, 2), Unallocated(3, 3),
        Aa32("ID_PFR2_EL1", 3, 4), Raz("ID_DFR1_EL1", 3, 5), Aa32("ID_MMFR5_EL1", 3, 6), Unallocated(3, 7),
        // CRm=4: ID_FILTERED(ID_AA64PFR0_EL1, ~(AMU | MPAM | SVE | RAS | AdvSIMD | FP)). ID_WRITABLE(ID_AA64ZFR0_EL1,
        // ~RES0) is REG_RAZ without SVE (id_visibility) and its host value depends on the CPU model
        // (Arm64IdRegState.Limit); its fields are FTR_LOWER_SAFE.
        new("ID_AA64PFR0_EL1", 3, 0, 0, 4, 0, IdRegKind.Sanitised, Arm64HostCpu.Aa64Pfr0, 0xffff_00f0_0f00_ffff,
            [U(60), U(56), U(48), U(36), U(24, FtrType.Exact, 0), U(12), U(8), U(4), U(0)]),
        // ID_FILTERED(ID_AA64PFR1_EL1, …): BT, SSBS and CSV2_frac remain writable.
        new("ID_AA64PFR1_EL1", 3, 0, 0, 4, 1, IdRegKind.Sanitised, Arm64HostCpu.Aa64Pfr1, 0x0000_000f_0000_00ff,
            [U(32), U(4), U(0)]),
        Zero("ID_AA64PFR2_EL1", 4, 2, 0xf_0000_0000), Unallocated(4, 3), new("ID_AA64ZFR0_EL1", 3, 0, 0, 4, 4, IdRegKind.Sanitised, 0, 0x0ff0_ff0f_0fff_00ff,
            [U(56), U(52), U(44), U(40), U(32), U(24), U(20), U(16), U(4), U(0)]), Raz("ID_AA64SMFR0_EL1", 4, 5),
        Unallocated(4, 6), Zero("ID_AA64FPFR0_EL1", 4, 7, 0xc000_000f),
        // CRm=5: ID_FILTERED(ID_AA64DFR0_EL1, DoubleLock | WRPs | PMUVer | DebugVer); kvm_arm64_ftr_safe_value makes
        // PMUVer and DebugVer FTR_LOWER_SAFE.
        new("ID_AA64DFR0_EL1", 3, 0, 0, 5, 0, IdRegKind.Sanitised, Arm64HostCpu.Aa64Dfr0, 0x0000_00f0_00f0_0f0f,
            [S(36), U(20), S(8), U(0)]),
        Zero("ID_AA64DFR1_EL1", 5, 1, 0), Unallocated(5, 2), Unallocated(5, 3), Raz("ID_AA64AFR0_EL1", 5, 4),
        Raz("ID_AA64AFR1_EL1", 5, 5), Unallocated(5, 6), Unallocated(5, 7),
        // CRm=6: ID_WRITABLE(ID_AA64ISAR0_EL1, ~RES0), ISAR1 without the pointer-authentication fields.
        new("ID_AA64ISAR0_EL1", 3, 0, 0, 6, 0, IdRegKind.Sanitised, Arm64HostCpu.Aa64Isar0, 0xffff_ffff_ffff_fff0,
            [U(60), U(56), U(52), U(48), U(44), U(40), U(36), U(32), U(28), U(20), U(16), U(12), U(8), U(4)]),
        new("ID_AA64ISAR1_EL1", 3, 0, 0, 6, 1, IdRegKind.Sanitised, Arm64HostCpu.Aa64Isar1, 0xffff_ffff_00ff_f00f,
            [U(60), U(56), U(52), U(48), U(44), U(40), U(36), U(32), U(20), U(16), U(12), U(0)]),
        Zero("ID_AA64ISAR2_EL1", 6, 2, 0xffff_0fff_ffff_00ff), Zero("ID_AA64ISAR3_EL1", 6, 3, 0xf000_00f0), Unallocated(6, 4), Unallocated(6, 5),
        Unallocated(6, 6), Unallocated(6, 7),
        // CRm=7: ID_FILTERED(ID_AA64MMFR0_EL1, ~(RES0 | ASIDBITS)); TGRAN*_2 are FTR_EXACT with safe value 1.
        new("ID_AA64MMFR0_EL1", 3, 0, 0, 7, 0, IdRegKind.Sanitised, Arm64HostCpu.Aa64Mmfr0, 0xff00_ffff_ffff_ff0f,
            [U(60), U(44), U(40, FtrType.Exact, 1), U(36, FtrType.Exact, 1), U(32, FtrType.Exact, 1), S(28), S(24), U(20),
             U(16), U(12), U(8), U(0)]),
        // ID_WRITABLE(ID_AA64MMFR1_EL1, ~(RES0 | HCX | TWED | XNX | VH | VMIDBits)); SpecSEI is FTR_HIGHER_SAFE.
        new("ID_AA64MMFR1_EL1", 3, 0, 0, 7, 1, IdRegKind.Sanitised, Arm64HostCpu.Aa64Mmfr1, 0xffff_f0f0_0fff_f00f,
            [U(52), U(44), U(36), U(24, FtrType.HigherSafe), U(20), U(16), U(12), U(0)]),
        // ID_FILTERED(ID_AA64MMFR2_EL1, ~(RES0 | EVT | FWB | IDS | NV | CCIDX)).
        new("ID_AA64MMFR2_EL1", 3, 0, 0, 7, 2, IdRegKind.Sanitised, Arm64HostCpu.Aa64Mmfr2, 0xf0ff_000f_f00f_ffff,
            [U(60), U(52), U(48), U(32), U(28), U(16), U(12), U(8), U(4), U(0)]),
        Zero("ID_AA64MMFR3_EL1", 7, 3, 0xf0f0f), Zero("ID_AA64MMFR4_EL1", 7, 4, 0x0f00_0000), Unallocated(7, 5), Unallocated(7, 6),
        Unallocated(7, 7),
        new("AIDR_EL1", 3, 1, 0, 0, 7, IdRegKind.Implementation, Arm64HostCpu.Aidr, ~0UL),
        // ID_FILTERED(CTR_EL0, DIC | IDC | DminLine | L1Ip | IminLine); L1Ip is FTR_EXACT with safe value VIPT (2).
        new("CTR_EL0", 3, 3, 0, 0, 1, IdRegKind.Sanitised, Arm64HostCpu.Ctr, 0x300f_c00f,
            [U(29, width: 1), U(28, width: 1), U(16), U(14, FtrType.Exact, 2, width: 2), U(0)]),
    ];

    /// <summary>read_id_reg: RAZ registers read 0, the others the VM's value.</summary>
    public static ulong Read(Arm64IdRegState vm, int i) =>
        Table[i].Kind is IdRegKind.Raz or IdRegKind.Aa32RazUserWi ? 0 : vm.Values[i];

    /// <summary>
    /// kvm_sys_reg_set_user for an ID register: REG_USER_WI ignores the write; set_imp_id_reg; the per-register
    /// set_user checks (set_id_aa64pfr0_el1, set_id_aa64dfr0_el1); then set_id_reg under config_lock. The limit is
    /// rd->reset(vcpu): for ID_AA64DFR0_EL1 of a vCPU with KVM_ARM_VCPU_PMU_V3, sanitise_id_aa64dfr0_el1 puts the
    /// PMU's version (<see cref="Arm64PmuRegs.PmuVer"/>) in PMUVer.
    /// </summary>
    public static long Write(Arm64IdRegState vm, int i, ulong val, bool hasPmu = false)
    {
        var d = Table[i];
        lock (vm)
        {
            switch (d.Kind)
            {
                case IdRegKind.Aa32RazUserWi:
                    // sysreg_user_write_ignore: "return 0" before any check.
                    return 0;
                case IdRegKind.Implementation:
                    // set_imp_id_reg (6.15+, under config_lock): the current value is always accepted; else
                    // !KVM_ARCH_FLAG_WRITABLE_IMP_ID_REGS → -EINVAL; "Once the VM has started the ID registers are
                    // immutable" → -EBUSY; "Any value is allowed … so long as it is within the writable mask"
                    // ((val & r->val) != val → -EINVAL); then kvm_set_vm_id_reg (VM-wide).
                    if (val == vm.Values[i]) return 0;
                    if (!vm.WritableImpIdRegs) return Vfs.Err.EINVAL;
                    if (vm.HasRanOnce) return Vfs.Err.EBUSY;
                    if ((val & d.WritableMask) != val) return Vfs.Err.EINVAL;
                    vm.Values[i] = val;
                    return 0;
            }
            if (d.Name == "ID_AA64PFR0_EL1")
            {
                // set_id_aa64pfr0_el1: "Fail the guest's request to disable the AA64 ISA at EL{0,1,2}" (no NV here).
                if (((val >> 0) & 0xf) == 0 || ((val >> 4) & 0xf) == 0) return Vfs.Err.EINVAL;
            }
            else if (d.Name == "ID_AA64DFR0_EL1")
            {
                // set_id_aa64dfr0_el1: PMUVer IMP_DEF (0xf) is replaced by NI; DebugVer below IMP (6) → -EINVAL.
                if (((val >> 8) & 0xf) == 0xf) val &= ~(0xfUL << 8);
                if ((val & 0xf) < 6) return Vfs.Err.EINVAL;
            }
            // set_id_reg: "Once the VM has started the ID registers are immutable. Reject any write that does not
            // match the final register value."
            if (vm.HasRanOnce) return val == Read(vm, i) ? 0 : Vfs.Err.EBUSY;
            ulong limit = vm.Limit(i);
            if (hasPmu && d.Name == "ID_AA64DFR0_EL1") limit = (limit & ~(0xfUL << 8)) | (Arm64PmuRegs.PmuVer << 8);
            long r = CheckFeatures(d, val, limit);
            if (r == 0) vm.Values[i] = val;
            return r;
        }
    }

    /// <summary>
    /// arm64_check_features: RAZ → only 0; each listed field inside the writable mask must be its own safe value
    /// against the host's; the remaining bits must equal the host's. E2BIG is turned into EINVAL by set_id_reg.
    /// </summary>
    private static long CheckFeatures(IdRegDesc d, ulong val, ulong limit)
    {
        if (d.Kind == IdRegKind.Raz) return val != 0 ? Vfs.Err.EINVAL : 0;
        ulong mask = 0;
        foreach (var f in d.FieldList)
        {
            if ((f.Mask & d.WritableMask) != f.Mask) continue;
            long fVal = f.Value(val), fLim = f.Value(limit);
            mask |= f.Mask;
            if (fVal == fLim) continue;
            if (f.SafeValue(fVal, fLim) != fVal) return Vfs.Err.EINVAL;
        }
        // Zero-limit registers: every field may only be 0, which the fixed-bits rule below enforces.
        return (val & ~mask) != (limit & ~mask) ? Vfs.Err.EINVAL : 0;
    }

    public static int IndexOf(string name) => Array.FindIndex(Table, d => d.Name == name);
}

/// <summary>kvm->arch.id_regs and KVM_ARCH_FLAG_HAS_RAN_ONCE as the ID registers see them.</summary>
internal sealed class Arm64IdRegState
{
    private static readonly int Isar0 = Arm64IdRegs.IndexOf("ID_AA64ISAR0_EL1"), Isar1 = Arm64IdRegs.IndexOf("ID_AA64ISAR1_EL1"), Isar2 = Arm64IdRegs.IndexOf("ID_AA64ISAR2_EL1"),
        Pfr0 = Arm64IdRegs.IndexOf("ID_AA64PFR0_EL1"), Zfr0 = Arm64IdRegs.IndexOf("ID_AA64ZFR0_EL1"),
        Pfr1 = Arm64IdRegs.IndexOf("ID_AA64PFR1_EL1"), Mmfr2 = Arm64IdRegs.IndexOf("ID_AA64MMFR2_EL1");

    /// <summary>ID_AA64PFR0_EL1.SVE (bits 35:32).</summary>
    private const ulong Pfr0SveMask = 0xfUL << 32;

    public Arm64IdRegState() : this(Arm64CpuModel.NeoverseN1) { }

    public Arm64IdRegState(Arm64CpuModel model)
    {
        Model = model;
        // reset_vm_ftr_id_reg at the first vCPU reset: the sanitised host values.
        Values = Enumerable.Range(0, Arm64IdRegs.Table.Length).Select(Limit).ToArray();
    }

    /// <summary>The emulated host CPU's variable part (the pointer-authentication fields).</summary>
    public Arm64CpuModel Model { get; }

    public ulong[] Values { get; }

    /// <summary>vcpu_has_ptrauth for the VM's feature set (set at the first KVM_ARM_VCPU_INIT, Arm64PtrAuth.InitVm).</summary>
    public bool PtrAuth { get; private set; }

    /// <summary>
    /// rd->reset(vcpu) = kvm_read_sanitised_id_reg, the limit of arm64_check_features: the host value, with
    /// __kvm_read_sanitised_id_reg's "if (!vcpu_has_ptrauth(vcpu))" clearing ID_AA64ISAR1_EL1.{APA,API,GPA,GPI} and
    /// ID_AA64ISAR2_EL1.{APA3,GPA3} for a VM without pointer authentication.
    /// </summary>
    public ulong Limit(int i)
    {
        if (i == Isar0) return Model.Aa64Isar0;
        if (i == Isar1) return PtrAuth ? Model.Aa64Isar1 : Model.Aa64Isar1 & ~Arm64PtrAuth.Isar1Mask;
        if (i == Isar2) return PtrAuth ? Model.Aa64Isar2 : Model.Aa64Isar2 & ~Arm64PtrAuth.Isar2Mask;
        // sanitise_id_aa64pfr0_el1: "if (!vcpu_has_sve(vcpu)) val &= ~ID_AA64PFR0_EL1_SVE_MASK"; id_visibility:
        // ID_AA64ZFR0_EL1 is REG_RAZ without SVE (limit 0: only 0 may be written).
        if (i == Pfr0) return Sve ? Model.Aa64Pfr0 : Model.Aa64Pfr0 & ~Pfr0SveMask;
        if (i == Zfr0) return Sve ? Model.Aa64Zfr0 : 0;
        if (i == Pfr1) return Model.Aa64Pfr1;
        if (i == Mmfr2) return Model.Aa64Mmfr2;
        return Arm64IdRegs.Table[i].Limit;
    }

    /// <summary>The first vCPU reset of a pointer-authentication VM: reset_vm_ftr_id_reg keeps the PAuth fields.</summary>
    public void EnablePtrAuth()
    {
        PtrAuth = true;
        Values[Isar1] = Limit(Isar1);
        Values[Isar2] = Limit(Isar2);
    }

    /// <summary>vcpu_has_sve for the VM (KVM_ARCH_FLAG_GUEST_HAS_SVE, set at the first KVM_ARM_VCPU_INIT, Arm64Sve).</summary>
    public bool Sve { get; private set; }

    /// <summary>
    /// The first vCPU reset of an SVE VM (kvm_vcpu_enable_sve sets KVM_ARCH_FLAG_GUEST_HAS_SVE before
    /// reset_vm_ftr_id_reg): ID_AA64PFR0_EL1 keeps SVE and ID_AA64ZFR0_EL1 is the host's.
    /// </summary>
    public void EnableSve()
    {
        Sve = true;
        Values[Pfr0] = Limit(Pfr0);
        Values[Zfr0] = Limit(Zfr0);
    }

    /// <summary>kvm_vm_has_ran_once(kvm): some vCPU of the VM entered KVM_RUN.</summary>
    public bool HasRanOnce { get; set; }

    /// <summary>
    /// KVM_ARCH_FLAG_WRITABLE_IMP_ID_REGS: KVM_ENABLE_CAP(KVM_CAP_ARM_WRITABLE_IMP_ID_REGS) before any vCPU existed
    /// (Arch/Arm64Kvm.cs); MIDR_EL1, REVIDR_EL1 and AIDR_EL1 may then be written until the VM runs.
    /// </summary>
    public bool WritableImpIdRegs { get; set; }
}
