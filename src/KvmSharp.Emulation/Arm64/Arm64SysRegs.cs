// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Regs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>How <c>kvm_reset_sys_regs</c> initialises one register (arch/arm64/kvm/sys_regs.c reset_*).</summary>
internal enum SysRegReset
{
    /// <summary>reset_val: the descriptor's value.</summary>
    Value,

    /// <summary>reset_unknown: <see cref="Arm64Cpu.ResetUnknown"/>.</summary>
    Unknown,

    /// <summary>reset_mpidr: Aff0 = vcpu_id[3:0], Aff1 = vcpu_id[11:4], Aff2 = vcpu_id[19:12], bit 31 (RES1).</summary>
    Mpidr,

    /// <summary>No reset callback (guest-only registers, PMSWINC_EL0).</summary>
    None,

    /// <summary>reset_clidr (Arm64CacheRegs).</summary>
    Clidr,

    /// <summary>reset_pmu_reg: reset_unknown &amp; the implemented-counter mask (Arm64PmuRegs).</summary>
    PmuCounterMask,

    /// <summary>reset_pmevcntr: reset_unknown &amp; GENMASK(31, 0).</summary>
    PmEvCounter,

    /// <summary>reset_pmevtyper: reset_unknown &amp; kvm_pmu_evtyper_mask.</summary>
    PmEvTyper,

    /// <summary>reset_pmselr: reset_unknown &amp; PMSELR_EL0.SEL.</summary>
    PmSelr,

    /// <summary>reset_pmcr.</summary>
    Pmcr,
}

/// <summary>What KVM_GET/SET_ONE_REG do with a register (its get_user / set_user, or the plain __vcpu_sys_reg store).</summary>
internal enum SysRegUser
{
    /// <summary>Listed; __vcpu_sys_reg read and written as is.</summary>
    Plain,

    /// <summary>No .reg and no .get_user: not listed, ENOENT (id_to_sys_reg_desc).</summary>
    NotListed,

    /// <summary>set_oslsr_el1: only OSLK may change.</summary>
    Oslsr,

    /// <summary>set_clidr (validate_clidr_el1).</summary>
    Clidr,

    /// <summary>get_pmcr / set_pmcr.</summary>
    Pmcr,

    /// <summary>get_pmreg / set_pmreg: masked with kvm_pmu_accessible_counter_mask.</summary>
    PmCounterMask,

    /// <summary>get_raz_reg / set_wi_reg.</summary>
    PmRazWi,

    /// <summary>get_pmu_evcntr / set_pmu_evcntr.</summary>
    PmEvCounter,
}

/// <summary>What the guest's MRS/MSR do with a register beyond the plain read/write (its .access).</summary>
internal enum SysRegGuest
{
    /// <summary>Read and written as stored (MSR UNDEF when the descriptor is not GuestWritable).</summary>
    Plain,

    /// <summary>trap_raz_wi.</summary>
    RazWi,

    /// <summary>trap_oslar_el1: write-only (MRS is read_from_write_only: UNDEF), OSLK forwarded to OSLSR_EL1.</summary>
    Oslar,

    /// <summary>An EL2 register (or undef_access): UNDEFINED to the EL1 guest.</summary>
    Undefined,

    /// <summary>access_ccsidr: read-only, selected by CSSELR_EL1.</summary>
    Ccsidr,

    /// <summary>Not emulated for the guest: the access stops the run.</summary>
    Unsupported,

    /// <summary>The PMUv3 registers' access_pm* handlers (<see cref="Arm64PmuGuestAccess"/>).</summary>
    Pmu,
}

/// <summary>The outcome of the guest's MRS/MSR on a table register.</summary>
internal enum SysRegAccess
{
    Done,
    Undefined,
    Unsupported,
}

/// <summary>
/// One entry of sys_reg_descs[] the emulator models: its op0:op1:CRn:CRm:op2, reset, and whether the guest may write it
/// (MPIDR_EL1 is read-only to EL1: an MSR to it is UNDEFINED).
/// </summary>
internal sealed record SysRegDesc(string Name, int Op0, int Op1, int CRn, int CRm, int Op2, SysRegReset Reset, ulong Value = 0, bool GuestWritable = true,
    int IdIndex = -1, SysRegUser User = SysRegUser.Plain, SysRegGuest Guest = SysRegGuest.Plain, bool Pmu = false, string? Storage = null,
    bool PtrAuth = false, bool Sve = false)
{
    /// <summary>An ID register of <see cref="Arm64IdRegs.Table"/> (VM-wide value, read-only to the guest).</summary>
    public bool IsId => IdIndex >= 0;

    public ushort Encoding => (ushort)KvmArm64SysRegs.Encoding(Op0, Op1, CRn, CRm, Op2);

    public ulong Id => KvmArm64SysRegs.ARM64_SYS_REG(Op0, Op1, CRn, CRm, Op2);
}

/// <summary>
/// The EL1/EL0 system registers of arch/arm64/kvm/sys_regs.c sys_reg_descs[] the emulator models, with their reset
/// values: KVM_GET/SET_ONE_REG on their ids (kvm_sys_reg_get_user / kvm_sys_reg_set_user: a 64-bit id in the
/// KVM_REG_ARM64_SYSREG space, -ENOENT for any register not here, hidden, or without storage and user accessor; the
/// generic-timer ids go to Arm64Timer first, as guest.c is_timer_reg does; KVM_REG_ARM_DEMUX ids go to
/// Arm64CacheRegs, as kvm_arm_sys_reg_get_reg does), their part of KVM_GET_REG_LIST (walk_sys_regs, in encoding
/// order, then write_demux_regids), and the guest's MRS/MSR on them (A64Interpreter.System.cs). ACTLR_EL1 and
/// AMAIR_EL1 reset to the host's values (reset_actlr, reset_amair_el1); the emulated host's are 0 [D]. The ID registers
/// of <see cref="Arm64IdRegs"/> (MIDR_EL1, REVIDR_EL1, the CRm 1..7 block, AIDR_EL1, CTR_EL0) sit in the same table at
/// their encodings; their values are VM-wide (get_id_reg / set_id_reg). The debug registers (<see cref="Arm64DebugRegs"/>),
/// the PMU registers of a KVM_ARM_VCPU_PMU_V3 vCPU (<see cref="Arm64PmuRegs"/>) and CLIDR/CSSELR/CCSIDR
/// (<see cref="Arm64CacheRegs"/>) are here too, and so are DISR_EL1 and the AArch32 EL2 shadows DACR32/IFSR32/FPEXC32_EL2
/// (get-reg-list.c base_regs), and the pointer-authentication keys of a vCPU with the PTRAUTH features
/// (<see cref="Arm64PtrAuth"/>) and ZCR_EL1 of an SVE vCPU (<see cref="Arm64Sve"/>). SMCR/SME, MTE, the FEAT_* registers (TCR2, PIR, POR, SCTLR2: hidden
/// anyway while the VM's ID_AA64MMFR3_EL1 is 0) and the EL2 registers are not modelled: -ENOENT, not listed.
/// </summary>
internal static class Arm64SysRegs
{
    private static readonly SysRegDesc[] Plain =
    [
        new("MDSCR_EL1", 2, 0, 0, 2, 2, SysRegReset.Value, 0),
        new("MPIDR_EL1", 3, 0, 0, 0, 5, SysRegReset.Mpidr, GuestWritable: false),
        new("SCTLR_EL1", 3, 0, 1, 0, 0, SysRegReset.Value, 0x00C5_0078),
        new("ACTLR_EL1", 3, 0, 1, 0, 1, SysRegReset.Value, 0),
        new("CPACR_EL1", 3, 0, 1, 0, 2, SysRegReset.Value, 0),
        new("TTBR0_EL1", 3, 0, 2, 0, 0, SysRegReset.Unknown),
        new("TTBR1_EL1", 3, 0, 2, 0, 1, SysRegReset.Unknown),
        new("TCR_EL1", 3, 0, 2, 0, 2, SysRegReset.Value, 0),
        new("AFSR0_EL1", 3, 0, 5, 1, 0, SysRegReset.Unknown),
        new("AFSR1_EL1", 3, 0, 5, 1, 1, SysRegReset.Unknown),
        new("ESR_EL1", 3, 0, 5, 2, 0, SysRegReset.Unknown),
        new("FAR_EL1", 3, 0, 6, 0, 0, SysRegReset.Unknown),
        new("PAR_EL1", 3, 0, 7, 4, 0, SysRegReset.Unknown),
        new("MAIR_EL1", 3, 0, 10, 2, 0, SysRegReset.Unknown),
        new("AMAIR_EL1", 3, 0, 10, 3, 0, SysRegReset.Value, 0),
        new("VBAR_EL1", 3, 0, 12, 0, 0, SysRegReset.Value, 0),
        // { SYS_DESC(SYS_DISR_EL1), NULL, reset_val, DISR_EL1, 0 }: no trap handler — with HCR_EL2.AMO the guest's
        // accesses reach VDISR_EL2 in hardware (FEAT_RAS, which the emulated N1 has [D]): a plain register to it.
        new("DISR_EL1", 3, 0, 12, 1, 1, SysRegReset.Value, 0),
        new("CONTEXTIDR_EL1", 3, 0, 13, 0, 1, SysRegReset.Value, 0),
        new("TPIDR_EL1", 3, 0, 13, 0, 4, SysRegReset.Unknown),
        new("CNTKCTL_EL1", 3, 0, 14, 1, 0, SysRegReset.Value, 0),
        new("TPIDR_EL0", 3, 3, 13, 0, 2, SysRegReset.Unknown),
        new("TPIDRRO_EL0", 3, 3, 13, 0, 3, SysRegReset.Unknown),
        // The AArch32 EL2 shadows, { SYS_DESC(SYS_DACR32_EL2), undef_access, reset_unknown, DACR32_EL2 },
        // IFSR32_EL2 (reset_unknown) and FPEXC32_EL2 (reset_val 0x700): no visibility callback, so listed and read and
        // written as stored by userspace even without AArch32 EL1; an EL2 encoding, so UNDEFINED to the EL1 guest.
        new("DACR32_EL2", 3, 4, 3, 0, 0, SysRegReset.Unknown, GuestWritable: false, Guest: SysRegGuest.Undefined),
        new("IFSR32_EL2", 3, 4, 5, 0, 1, SysRegReset.Unknown, GuestWritable: false, Guest: SysRegGuest.Undefined),
        new("FPEXC32_EL2", 3, 4, 5, 3, 0, SysRegReset.Value, 0x700, GuestWritable: false, Guest: SysRegGuest.Undefined),
    ];

    /// <summary>
    /// Sorted by encoding, as sys_reg_descs[] is (check_sysreg_table): the plain, debug, PMU, cache and ID registers.
    /// </summary>
    public static readonly SysRegDesc[] Table =
        [.. Plain.Concat(Arm64PtrAuth.Descs()).Concat(Arm64Sve.Descs()).Concat(Arm64DebugRegs.Descs()).Concat(Arm64PmuRegs.Descs()).Concat(Arm64CacheRegs.Descs())
            .Concat(Arm64IdRegs.Table.Select((d, i) => new SysRegDesc(d.Name, d.Op0, d.Op1, d.CRn, d.CRm, d.Op2, SysRegReset.Value,
                GuestWritable: false, IdIndex: i))).OrderBy(d => d.Encoding)];

    private static readonly Dictionary<ushort, int> ByEncoding = Table.Select((d, i) => (d.Encoding, i)).ToDictionary(p => p.Encoding, p => p.i);

    /// <summary>The SysRegs slot each entry reads and writes (.reg: PMINTENCLR_EL1 shares PMINTENSET_EL1's, …).</summary>
    private static readonly int[] StorageOf = Table.Select((d, i) => d.Storage is null ? i : Array.FindIndex(Table, e => e.Name == d.Storage)).ToArray();

    public static int Count => Table.Length;

    public static int Index(string name) => Array.FindIndex(Table, d => d.Name == name);

    /// <summary>The table index of op0:op1:CRn:CRm:op2, or -1.</summary>
    public static int Find(ushort encoding) => ByEncoding.TryGetValue(encoding, out int i) ? i : -1;

    /// <summary>
    /// sysreg_hidden: a PMU register of a vCPU without KVM_ARM_VCPU_PMU_V3 (pmu_visibility → REG_HIDDEN), a
    /// pointer-authentication key of a vCPU without vcpu_has_ptrauth (ptrauth_visibility → REG_HIDDEN), ZCR_EL1 of a
    /// vCPU without vcpu_has_sve (sve_visibility → REG_HIDDEN).
    /// </summary>
    public static bool Hidden(Arm64Cpu cpu, SysRegDesc d) =>
        (d.Pmu && !cpu.HasPmu) || (d.PtrAuth && !cpu.HasPtrAuth) || (d.Sve && cpu.Sve is null);

    /// <summary>walk_one_sys_reg: listed iff it has storage or a get_user, and is not hidden.</summary>
    public static bool Listed(Arm64Cpu cpu, SysRegDesc d) => d.User != SysRegUser.NotListed && !Hidden(cpu, d);

    /// <summary>kvm_reset_sys_regs for the modelled registers.</summary>
    public static void Reset(Arm64Cpu cpu)
    {
        ulong counterMask = Arm64PmuRegs.CounterMask(cpu);
        for (int i = 0; i < Table.Length; i++)
        {
            var d = Table[i];
            if (d.IsId) continue; // kvm->arch.id_regs: initialised once per VM, not by a vCPU reset.
            ulong? value = d.Reset switch
            {
                SysRegReset.None => null,
                SysRegReset.Unknown => Arm64Cpu.ResetUnknown,
                SysRegReset.Mpidr => Mpidr(cpu.VcpuId),
                SysRegReset.Clidr => Arm64CacheRegs.ResetClidr(Arm64CacheRegs.Ctr(cpu)),
                SysRegReset.PmuCounterMask => Arm64Cpu.ResetUnknown & counterMask,
                SysRegReset.PmEvCounter => Arm64Cpu.ResetUnknown & 0xffff_ffff,
                // reset_pmevtyper: "This thing will UNDEF, who cares about the reset value?" — 0 without a PMU.
                SysRegReset.PmEvTyper => cpu.HasPmu ? Arm64Cpu.ResetUnknown & Arm64PmuRegs.EvtyperMask(cpu) : 0,
                SysRegReset.PmSelr => Arm64Cpu.ResetUnknown & 0x1f,
                SysRegReset.Pmcr => Arm64PmuRegs.ResetPmcr(),
                _ => d.Value,
            };
            if (value is ulong v) cpu.SysRegs[StorageOf[i]] = v;
        }
    }

    /// <summary>reset_mpidr: "Map the vcpu_id into the first three affinity level fields of the MPIDR" plus bit 31.</summary>
    public static ulong Mpidr(int vcpuId) =>
        ((ulong)(vcpuId & 0x0f) << 0) | ((ulong)((vcpuId >> 4) & 0xff) << 8) | ((ulong)((vcpuId >> 12) & 0xff) << 16) | (1UL << 31);

    public static bool IsSysRegId(ulong id) => (id & KVM_REG_ARM_COPROC_MASK) == KvmArm64SysRegs.KVM_REG_ARM64_SYSREG;

    /// <summary>
    /// index_to_params + id_to_sys_reg_desc: a register of this table iff the id is 64-bit and carries nothing
    /// but the encoding, and the register is listed for this vCPU; anything else is -ENOENT (kvm_sys_reg_get_user).
    /// </summary>
    private static int IndexOf(Arm64Cpu cpu, ulong id)
    {
        const ulong EncodingMask = 0xffff;
        if ((id & KVM_REG_SIZE_MASK) != KVM_REG_SIZE_U64) return -1;
        if ((id & KVM_REG_ARM_COPROC_MASK) != KvmArm64SysRegs.KVM_REG_ARM64_SYSREG) return -1;
        if ((id & ~(KVM_REG_ARCH_MASK | KVM_REG_SIZE_MASK | KVM_REG_ARM_COPROC_MASK | EncodingMask)) != 0) return -1;
        int i = Find((ushort)(id & EncodingMask));
        return i >= 0 && Listed(cpu, Table[i]) ? i : -1;
    }

    /// <summary>kvm_arm_sys_reg_get_reg: the demux space, else kvm_sys_reg_get_user (get_user, or the stored value).</summary>
    public static long Get(Arm64Cpu cpu, ulong id, Span<byte> value, out int size)
    {
        if (Arm64CacheRegs.IsDemuxId(id)) return Arm64CacheRegs.DemuxGet(cpu, id, value, out size);
        size = 0;
        int i = IndexOf(cpu, id);
        if (i < 0) return Vfs.Err.ENOENT;
        size = sizeof(ulong);
        var d = Table[i];
        ulong v;
        if (d.IsId)
        {
            lock (cpu.IdRegs) v = Arm64IdRegs.Read(cpu.IdRegs, d.IdIndex);
        }
        else
        {
            ulong stored = cpu.SysRegs[StorageOf[i]];
            v = d.User switch
            {
                SysRegUser.Pmcr => Arm64PmuRegs.ReadPmcr(cpu, stored),
                SysRegUser.PmCounterMask => stored & Arm64PmuRegs.CounterMask(cpu),
                SysRegUser.PmRazWi => 0,
                // kvm_pmu_get_pmc_value: the cycle counter is 64-bit, the event counters 32-bit below PMUv3p5.
                SysRegUser.PmEvCounter => d.CRn == 9 ? stored : stored & 0xffff_ffff,
                _ => stored,
            };
        }
        BinaryPrimitives.WriteUInt64LittleEndian(value, v);
        return 0;
    }

    /// <summary>
    /// kvm_arm_sys_reg_set_reg: the demux space, else kvm_sys_reg_set_user: get_user of the value (EFAULT), then the
    /// register's set_user (the ID register rules of <see cref="Arm64IdRegs.Write"/>, set_oslsr_el1, set_clidr,
    /// set_pmcr, set_pmreg, set_wi_reg, set_pmu_evcntr) or the plain store.
    /// </summary>
    public static long Set(Arm64Cpu cpu, ulong id, Func<int, byte[]?> copyFromUser)
    {
        if (Arm64CacheRegs.IsDemuxId(id)) return Arm64CacheRegs.DemuxSet(cpu, id, copyFromUser);
        int i = IndexOf(cpu, id);
        if (i < 0) return Vfs.Err.ENOENT;
        byte[]? bytes = copyFromUser(sizeof(ulong));
        if (bytes is null) return Vfs.Err.EFAULT;
        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var d = Table[i];
        if (d.IsId) return Arm64IdRegs.Write(cpu.IdRegs, d.IdIndex, value, cpu.HasPmu);
        int s = StorageOf[i];
        switch (d.User)
        {
            case SysRegUser.Oslsr:
                // "The only modifiable bit is the OSLK bit. Refuse the write if userspace attempts to change any other bit".
                if (((value ^ d.Value) & ~Arm64DebugRegs.OslsrOslk) != 0) return Vfs.Err.EINVAL;
                break;
            case SysRegUser.Clidr:
                if (!Arm64CacheRegs.ValidClidr(value, Arm64CacheRegs.Ctr(cpu))) return Vfs.Err.EINVAL;
                break;
            case SysRegUser.Pmcr:
                value = Arm64PmuRegs.SetPmcr(cpu, value);
                break;
            case SysRegUser.PmCounterMask:
                value &= Arm64PmuRegs.CounterMask(cpu);
                break;
            case SysRegUser.PmRazWi:
                return 0;
        }
        cpu.SysRegs[s] = value;
        return 0;
    }

    /// <summary>
    /// The ids KVM_GET_REG_LIST lists after the timer registers (kvm_arm_copy_sys_reg_indices: walk_sys_regs in
    /// sys_reg_descs order, skipping registers without storage or user accessor and hidden ones, then
    /// write_demux_regids).
    /// </summary>
    public static IEnumerable<ulong> Indices(Arm64Cpu cpu) =>
        Table.Where(d => Listed(cpu, d)).Select(d => d.Id).Concat(Arm64CacheRegs.DemuxIndices());

    /// <summary>The guest's MRS of table entry <paramref name="i"/> (perform_access → the register's .access).</summary>
    public static SysRegAccess GuestRead(Arm64Cpu cpu, int i, out ulong value)
    {
        value = 0;
        var d = Table[i];
        if (Hidden(cpu, d)) return SysRegAccess.Undefined; // emulate_sys_reg: a hidden register UNDEFs.
        if (d.IsId)
        {
            // access_id_reg → read_id_reg: the VM's value (RAZ registers read 0).
            lock (cpu.IdRegs) value = Arm64IdRegs.Read(cpu.IdRegs, d.IdIndex);
            return SysRegAccess.Done;
        }
        switch (d.Guest)
        {
            case SysRegGuest.RazWi: return SysRegAccess.Done;
            case SysRegGuest.Oslar or SysRegGuest.Undefined: return SysRegAccess.Undefined;
            case SysRegGuest.Unsupported: return SysRegAccess.Unsupported;
            case SysRegGuest.Pmu: return Arm64PmuGuestAccess.Read(cpu, d, out value);
            case SysRegGuest.Ccsidr:
                value = Arm64CacheRegs.GuestCcsidr(cpu, cpu.SysRegs[Index("CSSELR_EL1")]);
                return SysRegAccess.Done;
        }
        value = cpu.SysRegs[StorageOf[i]];
        return SysRegAccess.Done;
    }

    /// <summary>The guest's MSR of table entry <paramref name="i"/>.</summary>
    public static SysRegAccess GuestWrite(Arm64Cpu cpu, int i, ulong value)
    {
        var d = Table[i];
        if (Hidden(cpu, d)) return SysRegAccess.Undefined;
        switch (d.Guest)
        {
            case SysRegGuest.RazWi: return SysRegAccess.Done;
            case SysRegGuest.Undefined or SysRegGuest.Ccsidr: return SysRegAccess.Undefined;
            case SysRegGuest.Unsupported: return SysRegAccess.Unsupported;
            case SysRegGuest.Pmu: return Arm64PmuGuestAccess.Write(cpu, d, value);
            case SysRegGuest.Oslar:
            {
                // kvm_debug_handle_oslar: OSLAR_EL1.OSLK → OSLSR_EL1.OSLK.
                int oslsr = Index("OSLSR_EL1");
                cpu.SysRegs[oslsr] = (value & Arm64DebugRegs.OslarOslk) != 0
                    ? cpu.SysRegs[oslsr] | Arm64DebugRegs.OslsrOslk
                    : cpu.SysRegs[oslsr] & ~Arm64DebugRegs.OslsrOslk;
                return SysRegAccess.Done;
            }
        }
        // MPIDR_EL1, OSLSR_EL1, CLIDR_EL1 and the ID registers are read-only to the guest: an MSR to one is UNDEFINED.
        if (!d.GuestWritable) return SysRegAccess.Undefined;
        cpu.SysRegs[StorageOf[i]] = value;
        return SysRegAccess.Done;
    }
}
