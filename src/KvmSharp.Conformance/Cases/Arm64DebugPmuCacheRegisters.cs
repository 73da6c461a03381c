// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Abi.Arm64.KvmArm64DebugRegs;
using static KvmSharp.Abi.Arm64.KvmArm64PmuRegs;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// arm64 debug, PMU and cache-geometry registers through KVM_GET_REG_LIST / KVM_GET/SET_ONE_REG (arch/arm64/kvm/sys_regs.c
/// sys_reg_descs[]: DBG_BCR_BVR_WCR_WVR_EL1, MDCCINT_EL1, OSLSR_EL1, DBGVCR32_EL2, the PMU_SYS_REG entries with
/// pmu_visibility, CLIDR_EL1, CSSELR_EL1, the KVM_REG_ARM_DEMUX CCSIDR ids), ported from
/// tools/testing/selftests/kvm/arm64/get-reg-list.c (base_regs, the "pmu" sublist of KVM_ARM_VCPU_PMU_V3, the demux
/// filter). The assertions are relative to what the kernel reports (counter count, ID register fields), so they hold
/// for any host CPU. This host is x86_64: every case is skipped on the real kernel.
/// </summary>
public static class Arm64DebugPmuCacheRegisters
{
    private const string SysRegsC = "arch/arm64/kvm/sys_regs.c";
    private const string GetRegListC = "tools/testing/selftests/kvm/arm64/get-reg-list.c";

    /// <summary>get-reg-list.c pmu_regs[], in its (encoding) order.</summary>
    private static ulong[] PmuRegs() =>
        [
            PMINTENSET_EL1, PMINTENCLR_EL1, PMCR_EL0, PMCNTENSET_EL0, PMCNTENCLR_EL0, PMOVSCLR_EL0, PMSWINC_EL0, PMSELR_EL0,
            PMCCNTR_EL0, PMUSERENR_EL0, PMOVSSET_EL0,
            .. Enumerable.Range(0, 31).Select(PMEVCNTRn_EL0), .. Enumerable.Range(0, 31).Select(PMEVTYPERn_EL0), PMCCFILTR_EL0,
        ];

    /// <summary>The debug part of get-reg-list.c base_regs[]: DBG{BVR,BCR,WVR,WCR}0..15, MDCCINT, MDSCR, OSLSR, DBGVCR32_EL2.</summary>
    private static ulong[] DebugRegs() =>
        [
            .. Enumerable.Range(0, 16).SelectMany(n => new[] { DBGBVRn_EL1(n), DBGBCRn_EL1(n), DBGWVRn_EL1(n), DBGWCRn_EL1(n) }),
            MDCCINT_EL1, MDSCR_EL1, OSLSR_EL1, DBGVCR32_EL2,
        ];

    /// <summary>
    /// get-reg-list.c base_regs[] plus vregs[] (the "vregs" config every arm64 host runs), as a set: the core registers,
    /// the firmware and timer registers, and the system registers (some gated by feat_id_regs: SCTLR2, TCR2, PIR, POR).
    /// </summary>
    private static HashSet<ulong> BlessedBase()
    {
        static ulong S(int op0, int op1, int crn, int crm, int op2) => KvmArm64SysRegs.ARM64_SYS_REG(op0, op1, crn, crm, op2);
        ulong core = KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_ARM_CORE;
        var set = new HashSet<ulong>();
        for (int i = 0; i < 41; i++) set.Add(core | KvmArm64Regs.KVM_REG_SIZE_U64 | (uint)(2 * i));
        for (int i = 0; i < 32; i++) set.Add(core | KvmArm64Regs.KVM_REG_SIZE_U128 | (uint)(KvmArm64Regs.OffsetVregs / 4 + 4 * i));
        set.Add(core | KvmArm64Regs.KVM_REG_SIZE_U32 | (uint)(KvmArm64Regs.OffsetFpsr / 4));
        set.Add(core | KvmArm64Regs.KVM_REG_SIZE_U32 | (uint)(KvmArm64Regs.OffsetFpcr / 4));
        set.UnionWith([
            KvmArm64FwRegs.KVM_REG_ARM_PSCI_VERSION, KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1,
            KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2, KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3,
            KvmArm64FwRegs.KVM_REG_ARM_STD_BMAP, KvmArm64FwRegs.KVM_REG_ARM_STD_HYP_BMAP, KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BMAP,
            KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BMAP_2,
            KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CTL, KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CVAL, KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT,
            S(3, 0, 0, 0, 0), S(3, 0, 0, 0, 6), S(3, 1, 0, 0, 1), S(3, 1, 0, 0, 7), S(3, 3, 0, 0, 1),
            .. DebugRegs(),
            S(3, 0, 0, 0, 5),
            .. Enumerable.Range(8, 56).Select(i => S(3, 0, 0, i >> 3, i & 7)),
            S(3, 0, 1, 0, 0), S(3, 0, 1, 0, 1), S(3, 0, 1, 0, 2), S(3, 0, 1, 0, 3),
            S(3, 0, 2, 0, 0), S(3, 0, 2, 0, 1), S(3, 0, 2, 0, 2), S(3, 0, 2, 0, 3),
            S(3, 0, 5, 1, 0), S(3, 0, 5, 1, 1), S(3, 0, 5, 2, 0), S(3, 0, 6, 0, 0), S(3, 0, 7, 4, 0),
            S(3, 0, 10, 2, 0), S(3, 0, 10, 2, 2), S(3, 0, 10, 2, 3), S(3, 0, 10, 2, 4), S(3, 0, 10, 3, 0),
            S(3, 0, 12, 0, 0), S(3, 0, 12, 1, 1), S(3, 0, 13, 0, 1), S(3, 0, 13, 0, 4), S(3, 0, 14, 1, 0),
            S(3, 2, 0, 0, 0), S(3, 3, 10, 2, 4), S(3, 3, 13, 0, 2), S(3, 3, 13, 0, 3),
            S(3, 3, 14, 0, 1), S(3, 3, 14, 2, 1), S(3, 3, 14, 2, 2),
            S(3, 4, 3, 0, 0), S(3, 4, 5, 0, 1), S(3, 4, 5, 3, 0),
        ]);
        return set;
    }

    private static Vcpu InitVcpu(Vm vm, int id, bool pmu)
    {
        var vcpu = vm.CreateVcpu(id);
        var init = vm.PreferredTarget();
        init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2;
        if (pmu) init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PMU_V3;
        vcpu.Init(init);
        return vcpu;
    }

    /// <summary>KVM_GET/SET_ONE_REG with a 32-bit buffer (the demux ids are KVM_REG_SIZE_U32): the raw return value.</summary>
    private static long OneReg32(CaseContext ctx, Vcpu vcpu, uint request, ulong id, uint[] buffer)
    {
        byte[] reg = new byte[16];
        BitConverter.TryWriteBytes(reg, id);
        BitConverter.TryWriteBytes(reg.AsSpan(8), (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0));
        long rc = ctx.Kernel.Ioctl(vcpu.Handle, request, reg);
        GC.KeepAlive(buffer);
        return rc;
    }

    [ConformanceCase(SysRegsC + " DBG_BCR_BVR_WCR_WVR_EL1 (reset_dbg_wb_reg 0, set_dbg_wb_reg stores all 64 bits), MDCCINT_EL1, " +
                     "OSLSR_EL1 (reset OSLM_IMPLEMENTED, set_oslsr_el1: only OSLK), DBGVCR32_EL2; trap_raz_wi registers are not listed (" +
                     GetRegListC + " base_regs)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_debug_registers_reset_and_one_reg(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = InitVcpu(vm, 0, pmu: false);
        var ids = vcpu.GetRegisterList();
        // All sixteen of each are listed whatever ID_AA64DFR0_EL1.BRPs/WRPs report (BRPs + 1 ≤ 16 breakpoints).
        ulong dfr0 = vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1);
        Assert.InRange((dfr0 >> 12) & 0xf, 1UL, 15UL);
        foreach (ulong id in DebugRegs()) Assert.Contains(id, ids);
        foreach (ulong id in DebugRegs().Where(id => id != OSLSR_EL1)) Assert.Equal(0UL, vcpu.GetOneReg(id));
        // OSLSR_EL1_OSLM_IMPLEMENTED (bit 3); OSLK (bit 1) is the only bit userspace may change.
        Assert.Equal(0x8UL, vcpu.GetOneReg(OSLSR_EL1));
        vcpu.SetOneReg(OSLSR_EL1, 0xA);
        Assert.Equal(0xAUL, vcpu.GetOneReg(OSLSR_EL1));
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(OSLSR_EL1, 0x9));
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(OSLSR_EL1, 0x2));
        Assert.Equal(0xAUL, vcpu.GetOneReg(OSLSR_EL1));
        // No write mask on the breakpoint/watchpoint registers: any 64-bit value is kept.
        vcpu.SetOneReg(DBGBVRn_EL1(15), 0xffff_ffff_ffff_fffc);
        vcpu.SetOneReg(DBGWCRn_EL1(7), ~0UL);
        vcpu.SetOneReg(MDCCINT_EL1, 0x1234_5678_9abc_def0);
        Assert.Equal(0xffff_ffff_ffff_fffcUL, vcpu.GetOneReg(DBGBVRn_EL1(15)));
        Assert.Equal(~0UL, vcpu.GetOneReg(DBGWCRn_EL1(7)));
        Assert.Equal(0x1234_5678_9abc_def0UL, vcpu.GetOneReg(MDCCINT_EL1));
        // MDRAR_EL1, OSLAR_EL1, OSDLR_EL1, DBGPRCR_EL1, DBGCLAIMSET_EL1 have neither storage nor a user accessor.
        foreach (ulong id in new[] { KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 1, 0, 0), KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 1, 0, 4),
                     KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 1, 3, 4), KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 1, 4, 4),
                     KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 7, 8, 6) })
        {
            Assert.DoesNotContain(id, ids);
            AssertErrno(Errno.ENOENT, () => vcpu.GetOneReg(id));
        }
        // KVM_ARM_VCPU_INIT again: kvm_reset_sys_regs puts the reset values back.
        vcpu.InitPreferred();
        Assert.Equal(0UL, vcpu.GetOneReg(DBGBVRn_EL1(15)));
        Assert.Equal(0UL, vcpu.GetOneReg(DBGWCRn_EL1(7)));
        Assert.Equal(0x8UL, vcpu.GetOneReg(OSLSR_EL1));
    }

    [ConformanceCase(GetRegListC + " pmu sublist (KVM_CAP_ARM_PMU_V3, KVM_ARM_VCPU_PMU_V3); " + SysRegsC + " pmu_visibility (REG_HIDDEN: " +
                     "not listed, ENOENT), sanitise_id_aa64dfr0_el1 (PMUVer only with a PMU)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_reg_list_pmu_config(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        if (kvm.CheckExtension(KVM_CAP_ARM_PMU_V3) <= 0) Skip("KVM_CAP_ARM_PMU_V3 is 0: no guest PMUv3 on this host");
        using (var vm = kvm.CreateVm())
        using (var vcpu = InitVcpu(vm, 0, pmu: false))
        {
            var ids = vcpu.GetRegisterList();
            foreach (ulong id in PmuRegs()) Assert.DoesNotContain(id, ids);
            AssertErrno(Errno.ENOENT, () => vcpu.GetOneReg(PMCR_EL0));
            AssertErrno(Errno.ENOENT, () => vcpu.SetOneReg(PMEVTYPERn_EL0(0), 0));
            Assert.Equal(0UL, (vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1) >> 8) & 0xf);
        }
        using (var vm = kvm.CreateVm())
        using (var vcpu = InitVcpu(vm, 0, pmu: true))
        {
            var ids = vcpu.GetRegisterList();
            var pmu = PmuRegs();
            var listed = ids.Where(id => pmu.Contains(id)).ToArray();
            // walk_sys_regs lists them in sys_reg_descs (encoding) order, which is pmu_regs[]'s.
            Assert.Equal(pmu, listed);
            // PMCEID0/1_EL0 and PMXEVTYPER/PMXEVCNTR_EL0 have no storage: not listed.
            Assert.DoesNotContain(KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 12, 6), ids);
            Assert.DoesNotContain(KvmArm64SysRegs.ARM64_SYS_REG(3, 3, 9, 13, 1), ids);
            Assert.NotEqual(0UL, (vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1) >> 8) & 0xf);
            // Every listed 64-bit register reads, and its value may be written back before the VM runs.
            foreach (ulong id in ids.Where(id => (id & KvmArm64Regs.KVM_REG_SIZE_MASK) == KvmArm64Regs.KVM_REG_SIZE_U64))
                vcpu.SetOneReg(id, vcpu.GetOneReg(id));
        }
    }

    [ConformanceCase(GetRegListC + " check_reg_list: no register outside the blessed base_regs/vregs (and pmu_regs for a PMU vCPU) " +
                     "sublists, the DEMUX ids filtered (filter_reg)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_reg_list_has_no_unblessed_registers(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        bool pmuCap = kvm.CheckExtension(KVM_CAP_ARM_PMU_V3) > 0;
        foreach (bool pmu in pmuCap ? new[] { false, true } : [false])
        {
            using var vm = kvm.CreateVm();
            using var vcpu = InitVcpu(vm, 0, pmu);
            var blessed = BlessedBase();
            if (pmu) blessed.UnionWith(PmuRegs());
            var ids = vcpu.GetRegisterList()
                .Where(id => (id & KvmArm64Regs.KVM_REG_ARM_COPROC_MASK) != KvmArm64CacheRegs.KVM_REG_ARM_DEMUX).ToArray();
            var unblessed = ids.Where(id => !blessed.Contains(id)).Select(id => $"0x{id:X}").ToArray();
            Assert.True(unblessed.Length == 0, $"pmu={pmu}: registers outside get-reg-list.c's blessed lists: {string.Join(", ", unblessed)}");
            Assert.Equal(ids.Length, ids.Distinct().Count());
        }
    }

    [ConformanceCase(SysRegsC + " reset_pmcr / get_pmcr / set_pmcr (N from the VM, bits [7:0] kept, LC RES1 without AArch32), " +
                     "get_pmreg / set_pmreg (implemented-counter mask, SET/CLR share one register), get_raz_reg / set_wi_reg " +
                     "(PMSWINC_EL0), get_pmu_evcntr / set_pmu_evcntr; arch/arm64/kvm/pmu-emul.c kvm_arm_pmu_v3_enable (KVM_RUN " +
                     "without KVM_ARM_VCPU_PMU_V3_INIT: EINVAL)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_pmu_register_user_rules(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        if (kvm.CheckExtension(KVM_CAP_ARM_PMU_V3) <= 0) Skip("KVM_CAP_ARM_PMU_V3 is 0: no guest PMUv3 on this host");
        using var vm = kvm.CreateVm();
        using var vcpu = InitVcpu(vm, 0, pmu: true);
        ulong pmcr = vcpu.GetOneReg(PMCR_EL0);
        int n = (int)((pmcr >> 11) & 0x1f);
        Assert.InRange(n, 1, 31);
        ulong pfr0 = vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1);
        bool aarch64OnlyEl0 = (pfr0 & 0xf) == 1;
        if (aarch64OnlyEl0) Assert.NotEqual(0UL, pmcr & (1UL << 6)); // reset_pmcr: LC
        Assert.Equal(0UL, pmcr & 1); // PMCR_EL0.E clear at reset
        ulong counters = (1UL << 31) | ((1UL << n) - 1);
        // set_pmreg masks with the implemented counters; PMCNTENCLR_EL0 is the same register as PMCNTENSET_EL0.
        vcpu.SetOneReg(PMCNTENSET_EL0, ~0UL);
        Assert.Equal(counters, vcpu.GetOneReg(PMCNTENSET_EL0));
        Assert.Equal(counters, vcpu.GetOneReg(PMCNTENCLR_EL0));
        vcpu.SetOneReg(PMOVSCLR_EL0, 1);
        Assert.Equal(1UL, vcpu.GetOneReg(PMOVSSET_EL0));
        vcpu.SetOneReg(PMINTENCLR_EL1, 0);
        Assert.Equal(0UL, vcpu.GetOneReg(PMINTENSET_EL1));
        // PMSWINC_EL0: RAZ/WI from userspace.
        vcpu.SetOneReg(PMSWINC_EL0, ~0UL);
        Assert.Equal(0UL, vcpu.GetOneReg(PMSWINC_EL0));
        // PMCCNTR_EL0 is 64-bit; an event counter of a PMU below PMUv3p5 reads its low 32 bits.
        vcpu.SetOneReg(PMCCNTR_EL0, 0x1_2345_6789);
        Assert.Equal(0x1_2345_6789UL, vcpu.GetOneReg(PMCCNTR_EL0));
        ulong pmuVer = (vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1) >> 8) & 0xf;
        vcpu.SetOneReg(PMEVCNTRn_EL0(0), 0x1_2345_6789);
        if (pmuVer < 6) Assert.Equal(0x2345_6789UL, vcpu.GetOneReg(PMEVCNTRn_EL0(0)));
        Assert.Equal(0UL, vcpu.GetOneReg(PMUSERENR_EL0));
        Assert.Equal(0UL, vcpu.GetOneReg(PMCCFILTR_EL0));
        // set_pmcr: a smaller N is taken (the counter mask follows), a larger one than the hardware's is ignored;
        // only bits [7:0] (and N) survive.
        vcpu.SetOneReg(PMCR_EL0, ((ulong)(n - 1) << 11) | (1UL << 20) | 0x1);
        pmcr = vcpu.GetOneReg(PMCR_EL0);
        Assert.Equal((ulong)(n - 1), (pmcr >> 11) & 0x1f);
        Assert.Equal(0UL, pmcr & (1UL << 20));
        Assert.Equal(1UL, pmcr & 1);
        Assert.Equal(counters & ~(1UL << (n - 1)), vcpu.GetOneReg(PMCNTENSET_EL0));
        vcpu.SetOneReg(PMCR_EL0, 31UL << 11);
        Assert.Equal((ulong)(n - 1), (vcpu.GetOneReg(PMCR_EL0) >> 11) & 0x1f);
        // kvm_arm_pmu_v3_enable: the PMU was never created (KVM_ARM_VCPU_PMU_V3_INIT) → KVM_RUN fails.
        AssertErrno(Errno.EINVAL, () => vcpu.Run());
    }

    [ConformanceCase(SysRegsC + " reset_clidr / set_clidr (validate_clidr_el1), CSSELR_EL1, demux_c15_get / demux_c15_set / " +
                     "write_demux_regids (get_ccsidr from CTR_EL0's minimum line sizes, set_ccsidr); " + GetRegListC + " filter_reg (DEMUX)",
        Profile = EmulatedProfile.Arm64)]
    public static void arm64_cache_geometry_registers(CaseContext ctx)
    {
        Arm64Guests.RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = InitVcpu(vm, 0, pmu: false);
        var ids = vcpu.GetRegisterList();
        Assert.Contains(KvmArm64CacheRegs.CLIDR_EL1, ids);
        Assert.Contains(KvmArm64CacheRegs.CSSELR_EL1, ids);
        // write_demux_regids: the CSSELR_MAX (14) CCSIDR ids close the list, after the system registers.
        var demux = Enumerable.Range(0, 14).Select(KvmArm64CacheRegs.Ccsidr).ToArray();
        Assert.Equal(demux, ids.TakeLast(14));
        Assert.Equal(KvmArm64SysRegs.KVM_REG_ARM64_SYSREG, ids[^15] & KvmArm64Regs.KVM_REG_ARM_COPROC_MASK);
        ulong clidr = vcpu.GetOneReg(KvmArm64CacheRegs.CLIDR_EL1);
        Assert.NotEqual(0UL, (clidr >> 24) & 7); // a level of coherence
        vcpu.SetOneReg(KvmArm64CacheRegs.CLIDR_EL1, clidr);
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KvmArm64CacheRegs.CLIDR_EL1, clidr | (1UL << 47)));
        Assert.Equal(clidr, vcpu.GetOneReg(KvmArm64CacheRegs.CLIDR_EL1));
        vcpu.SetOneReg(KvmArm64CacheRegs.CSSELR_EL1, 2);
        Assert.Equal(2UL, vcpu.GetOneReg(KvmArm64CacheRegs.CSSELR_EL1));
        // get_ccsidr without an override: LineSize = log2(minimum line bytes) - 4 from CTR_EL0 (DminLine / IminLine).
        ulong ctr = vcpu.GetOneReg(KvmArm64IdRegs.CTR_EL0);
        uint[] buffer = GC.AllocateArray<uint>(1, pinned: true);
        for (int csselr = 0; csselr < 14; csselr++)
        {
            Assert.Equal(0, OneReg32(ctx, vcpu, KvmArm64Ioctls.KVM_GET_ONE_REG, KvmArm64CacheRegs.Ccsidr(csselr), buffer));
            ulong minLine = ((csselr & 1) != 0 ? ctr & 0xf : (ctr >> 16) & 0xf) + 2;
            Assert.Equal(minLine - 4, buffer[0] & 7);
        }
        ulong dMin = ((ctr >> 16) & 0xf) + 2;
        // set_ccsidr: a line shorter than the minimum is EINVAL; a longer one is kept (per vCPU).
        buffer[0] = (uint)(dMin - 5);
        if (dMin >= 5) AssertErrno(Errno.EINVAL, OneReg32(ctx, vcpu, KvmArm64Ioctls.KVM_SET_ONE_REG, KvmArm64CacheRegs.Ccsidr(2), buffer), "CCSIDR line below the minimum");
        buffer[0] = (uint)(dMin - 3) | (3u << 3);
        Assert.Equal(0, OneReg32(ctx, vcpu, KvmArm64Ioctls.KVM_SET_ONE_REG, KvmArm64CacheRegs.Ccsidr(2), buffer));
        buffer[0] = 0;
        Assert.Equal(0, OneReg32(ctx, vcpu, KvmArm64Ioctls.KVM_GET_ONE_REG, KvmArm64CacheRegs.Ccsidr(2), buffer));
        Assert.Equal((uint)(dMin - 3) | (3u << 3), buffer[0]);
        // demux_c15_get: a value ≥ CSSELR_MAX, a 64-bit size, or stray bits are ENOENT.
        AssertErrno(Errno.ENOENT, OneReg32(ctx, vcpu, KvmArm64Ioctls.KVM_GET_ONE_REG, KvmArm64CacheRegs.Ccsidr(14), buffer), "CSSELR 14");
        ulong wide = (KvmArm64CacheRegs.Ccsidr(0) & ~KvmArm64Regs.KVM_REG_SIZE_MASK) | KvmArm64Regs.KVM_REG_SIZE_U64;
        AssertErrno(Errno.ENOENT, () => vcpu.GetOneReg(wide));
        AssertErrno(Errno.ENOENT, OneReg32(ctx, vcpu, KvmArm64Ioctls.KVM_GET_ONE_REG, KvmArm64CacheRegs.Ccsidr(0) | (1UL << 8), buffer), "demux id 1");
    }
}
