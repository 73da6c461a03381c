// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The debug, PMU and cache-geometry registers (Emulation/Arm64/Arm64DebugRegs.cs, Arm64PmuRegs.cs, Arm64CacheRegs.cs)
/// against arch/arm64/kvm/sys_regs.c: their uapi ids, reset values (reset_dbg_wb_reg, OSLSR_EL1_OSLM_IMPLEMENTED,
/// reset_clidr, reset_pmu_reg, reset_pmevcntr, reset_pmevtyper, reset_pmselr, reset_pmcr), the userspace write rules
/// (set_oslsr_el1, set_clidr, set_pmcr, set_pmreg, set_wi_reg, get_pmu_evcntr, set_ccsidr), pmu_visibility, and the
/// guest's MRS/MSR rules (trap_oslar_el1, trap_raz_wi, write_to_read_only, access_ccsidr).
/// </summary>
public class Arm64DebugPmuCacheRegisterTests
{
    private static Arm64Cpu NewCpu(bool pmu)
    {
        var vm = new Arm64VmState();
        if (pmu) Arm64PmuRegs.InitVm(vm);
        var cpu = new Arm64Cpu { IdRegs = vm.IdRegs, PmuVm = vm.Pmu, HasPmu = pmu };
        cpu.Reset();
        return cpu;
    }

    private static ulong Get(Arm64Cpu cpu, ulong id)
    {
        Span<byte> buffer = stackalloc byte[16];
        Assert.Equal(0, Arm64SysRegs.Get(cpu, id, buffer, out int size));
        return size == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(buffer) : BinaryPrimitives.ReadUInt64LittleEndian(buffer);
    }

    private static long Set(Arm64Cpu cpu, ulong id, ulong value) =>
        Arm64SysRegs.Set(cpu, id, size =>
        {
            byte[] bytes = new byte[size];
            if (size == 4) BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)value);
            else BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
            return bytes;
        });

    private static int Index(string name) => Arm64SysRegs.Index(name);

    [Fact]
    public void Ids_are_the_arm64_sys_reg_encodings()
    {
        Assert.Equal(0x6030_0000_0013_8004UL, KvmArm64DebugRegs.DBGBVRn_EL1(0));
        Assert.Equal(0x6030_0000_0013_807FUL, KvmArm64DebugRegs.DBGWCRn_EL1(15));
        Assert.Equal(0x6030_0000_0013_808CUL, KvmArm64DebugRegs.OSLSR_EL1);
        Assert.Equal(0x6030_0000_0013_A038UL, KvmArm64DebugRegs.DBGVCR32_EL2);
        Assert.Equal(0x6030_0000_0013_DCE0UL, KvmArm64PmuRegs.PMCR_EL0);
        Assert.Equal(0x6030_0000_0013_DF5EUL, KvmArm64PmuRegs.PMEVCNTRn_EL0(30));
        Assert.Equal(0x6030_0000_0013_DF60UL, KvmArm64PmuRegs.PMEVTYPERn_EL0(0));
        Assert.Equal(0x6030_0000_0013_DF7FUL, KvmArm64PmuRegs.PMCCFILTR_EL0);
        Assert.Equal(0x6030_0000_0013_C801UL, KvmArm64CacheRegs.CLIDR_EL1);
        Assert.Equal(0x6030_0000_0013_D000UL, KvmArm64CacheRegs.CSSELR_EL1);
        Assert.Equal(0x6020_0000_0011_000DUL, KvmArm64CacheRegs.Ccsidr(13));
        Assert.Equal(126, KvmArm64PmuRegs.KVM_CAP_ARM_PMU_V3);
    }

    [Fact]
    public void The_reg_list_has_the_debug_and_cache_registers_then_the_demux_ids()
    {
        var ids = Arm64SysRegs.Indices(NewCpu(pmu: false)).ToArray();
        for (int n = 0; n < 16; n++)
        {
            Assert.Contains(KvmArm64DebugRegs.DBGBVRn_EL1(n), ids);
            Assert.Contains(KvmArm64DebugRegs.DBGWCRn_EL1(n), ids);
        }
        Assert.Contains(KvmArm64DebugRegs.OSLSR_EL1, ids);
        Assert.Contains(KvmArm64CacheRegs.CLIDR_EL1, ids);
        Assert.DoesNotContain(KvmArm64SysRegs.ARM64_SYS_REG(2, 0, 1, 0, 4), ids); // OSLAR_EL1: write-only, no storage
        Assert.DoesNotContain(KvmArm64SysRegs.ARM64_SYS_REG(3, 1, 0, 0, 0), ids); // CCSIDR_EL1: only through the demux
        Assert.DoesNotContain(KvmArm64PmuRegs.PMCR_EL0, ids);
        Assert.Equal(Enumerable.Range(0, 14).Select(KvmArm64CacheRegs.Ccsidr), ids.TakeLast(14));
        var sys = ids.SkipLast(14).ToArray();
        Assert.Equal(sys.Order(), sys);
        // 64 breakpoint/watchpoint registers + MDCCINT, MDSCR, OSLSR, DBGVCR32_EL2 in the op0 = 2 space.
        Assert.Equal(68, sys.Count(id => (id & KvmArm64SysRegs.KVM_REG_ARM64_SYSREG_OP0_MASK) >> 14 == 2));
        var pmuIds = Arm64SysRegs.Indices(NewCpu(pmu: true)).Except(ids).ToArray();
        Assert.Equal(74, pmuIds.Length); // get-reg-list.c pmu_regs[]
    }

    [Fact]
    public void Debug_registers_reset_to_zero_and_keep_any_value()
    {
        var cpu = NewCpu(pmu: false);
        Assert.Equal(0UL, Get(cpu, KvmArm64DebugRegs.DBGBCRn_EL1(3)));
        Assert.Equal(0UL, Get(cpu, KvmArm64DebugRegs.MDCCINT_EL1));
        Assert.Equal(0UL, Get(cpu, KvmArm64DebugRegs.DBGVCR32_EL2));
        Assert.Equal(0, Set(cpu, KvmArm64DebugRegs.DBGBCRn_EL1(3), ~0UL));
        Assert.Equal(~0UL, Get(cpu, KvmArm64DebugRegs.DBGBCRn_EL1(3)));
        cpu.Reset();
        Assert.Equal(0UL, Get(cpu, KvmArm64DebugRegs.DBGBCRn_EL1(3)));
    }

    [Fact]
    public void Oslsr_only_lets_userspace_change_oslk()
    {
        var cpu = NewCpu(pmu: false);
        Assert.Equal(0x8UL, Get(cpu, KvmArm64DebugRegs.OSLSR_EL1));
        Assert.Equal(0, Set(cpu, KvmArm64DebugRegs.OSLSR_EL1, 0xA));
        Assert.Equal(Vfs.Err.EINVAL, Set(cpu, KvmArm64DebugRegs.OSLSR_EL1, 0x0));
        Assert.Equal(Vfs.Err.EINVAL, Set(cpu, KvmArm64DebugRegs.OSLSR_EL1, 0xB));
        Assert.Equal(0xAUL, Get(cpu, KvmArm64DebugRegs.OSLSR_EL1));
    }

    [Fact]
    public void Guest_debug_accesses_follow_the_trap_handlers()
    {
        var cpu = NewCpu(pmu: false);
        int oslar = Index("OSLAR_EL1"), oslsr = Index("OSLSR_EL1");
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestWrite(cpu, oslar, 1));
        Assert.Equal(0xAUL, Get(cpu, KvmArm64DebugRegs.OSLSR_EL1));
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestWrite(cpu, oslar, 0));
        Assert.Equal(0x8UL, Get(cpu, KvmArm64DebugRegs.OSLSR_EL1));
        Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestRead(cpu, oslar, out _));
        Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestWrite(cpu, oslsr, 0));
        Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestRead(cpu, Index("DBGVCR32_EL2"), out _));
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestWrite(cpu, Index("MDRAR_EL1"), ~0UL));
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestRead(cpu, Index("MDRAR_EL1"), out ulong mdrar));
        Assert.Equal(0UL, mdrar);
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestWrite(cpu, Index("DBGWVR9_EL1"), 0x1000));
        Assert.Equal(0x1000UL, Get(cpu, KvmArm64DebugRegs.DBGWVRn_EL1(9)));
    }

    [Fact]
    public void Clidr_is_fabricated_from_ctr_and_validated_against_it()
    {
        // The emulated CTR_EL0 has IDC and no DIC: a unified L2 as LoC, an L1 instruction cache.
        Assert.Equal(0x0200_0021UL, Arm64CacheRegs.ResetClidr(Arm64HostCpu.Ctr));
        var cpu = NewCpu(pmu: false);
        Assert.Equal(0x0200_0021UL, Get(cpu, KvmArm64CacheRegs.CLIDR_EL1));
        // No IDC: an L1 data cache marked LoUU/LoUIS/LoC plus the instruction cache.
        ulong noIdc = Arm64HostCpu.Ctr & ~(1UL << 28);
        Assert.Equal(0x0920_0003UL, Arm64CacheRegs.ResetClidr(noIdc));
        Assert.True(Arm64CacheRegs.ValidClidr(0x0920_0003, noIdc));
        Assert.False(Arm64CacheRegs.ValidClidr(0x0200_0021, noIdc)); // no LoUU/LoUIS needs IDC
        Assert.False(Arm64CacheRegs.ValidClidr(1UL << 47, Arm64HostCpu.Ctr)); // RES0
        Assert.Equal(Vfs.Err.EINVAL, Set(cpu, KvmArm64CacheRegs.CLIDR_EL1, 0x0200_0021 | (1UL << 50)));
        Assert.Equal(0, Set(cpu, KvmArm64CacheRegs.CLIDR_EL1, 0x0400_0024));
        Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestWrite(cpu, Index("CLIDR_EL1"), 0));
    }

    [Fact]
    public void Ccsidr_demux_fabricates_and_keeps_overrides()
    {
        var cpu = NewCpu(pmu: false);
        // DminLine = IminLine = 4 (64-byte lines): LineSize = 6 - 4 = 2, 1 set, 1 way.
        Assert.Equal(2UL, Get(cpu, KvmArm64CacheRegs.Ccsidr(0)));
        Assert.Equal(2UL, Get(cpu, KvmArm64CacheRegs.Ccsidr(1)));
        Assert.Equal(Vfs.Err.EINVAL, Set(cpu, KvmArm64CacheRegs.Ccsidr(0), 1));
        Assert.Equal(0, Set(cpu, KvmArm64CacheRegs.Ccsidr(0), 2));
        Assert.Null(cpu.Ccsidr); // the fabricated value needs no override array
        Assert.Equal(0, Set(cpu, KvmArm64CacheRegs.Ccsidr(4), 0x1fb));
        Assert.Equal(0x1fbUL, Get(cpu, KvmArm64CacheRegs.Ccsidr(4)));
        Assert.Equal(2UL, Get(cpu, KvmArm64CacheRegs.Ccsidr(5)));
        Span<byte> buffer = stackalloc byte[16];
        Assert.Equal(Vfs.Err.ENOENT, Arm64SysRegs.Get(cpu, KvmArm64CacheRegs.Ccsidr(14), buffer, out _));
        // The guest's CCSIDR_EL1 follows CSSELR_EL1 (Level:InD).
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestWrite(cpu, Index("CSSELR_EL1"), 4));
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestRead(cpu, Index("CCSIDR_EL1"), out ulong ccsidr));
        Assert.Equal(0x1fbUL, ccsidr);
        // vcpu->arch.ccsidr survives a vCPU reset.
        cpu.Reset();
        Assert.Equal(0x1fbUL, Get(cpu, KvmArm64CacheRegs.Ccsidr(4)));
    }

    [Fact]
    public void Pmu_registers_are_hidden_without_the_feature()
    {
        var cpu = NewCpu(pmu: false);
        Span<byte> buffer = stackalloc byte[16];
        Assert.Equal(Vfs.Err.ENOENT, Arm64SysRegs.Get(cpu, KvmArm64PmuRegs.PMCR_EL0, buffer, out _));
        Assert.Equal(Vfs.Err.ENOENT, Set(cpu, KvmArm64PmuRegs.PMSELR_EL0, 0));
        Assert.Equal(SysRegAccess.Undefined, Arm64SysRegs.GuestRead(cpu, Index("PMCR_EL0"), out _));
        var pmu = NewCpu(pmu: true);
        // With the feature the guest reaches access_pmcr (Arm64PmuGuestAccess; Arm64PmuGuestTests): LC and N = 6.
        Assert.Equal(SysRegAccess.Done, Arm64SysRegs.GuestRead(pmu, Index("PMCR_EL0"), out ulong pmcr));
        Assert.Equal(0x40UL | (6UL << 11), pmcr);
    }

    [Fact]
    public void Pmu_registers_reset_as_sys_regs_c_says()
    {
        var cpu = NewCpu(pmu: true);
        const ulong Unknown = Arm64Cpu.ResetUnknown;
        ulong counters = 0x8000_003F; // BIT(31) | GENMASK(5, 0): six event counters
        Assert.Equal(Unknown & counters, Get(cpu, KvmArm64PmuRegs.PMINTENSET_EL1));
        Assert.Equal(Unknown & counters, Get(cpu, KvmArm64PmuRegs.PMCNTENCLR_EL0));
        Assert.Equal(Unknown & counters, Get(cpu, KvmArm64PmuRegs.PMOVSSET_EL0));
        Assert.Equal(0x40UL | (6UL << 11), Get(cpu, KvmArm64PmuRegs.PMCR_EL0)); // LC, N = 6
        Assert.Equal(Unknown & 0x1f, Get(cpu, KvmArm64PmuRegs.PMSELR_EL0));
        Assert.Equal(Unknown, Get(cpu, KvmArm64PmuRegs.PMCCNTR_EL0));
        Assert.Equal(Unknown & 0xffff_ffff, Get(cpu, KvmArm64PmuRegs.PMEVCNTRn_EL0(30)));
        // kvm_pmu_evtyper_mask with EL2 and EL3 implemented: EXCLUDE_EL1/EL0, NS_EL1/NS_EL0, INCLUDE_EL2, EXCLUDE_EL3, evtCount.
        Assert.Equal(Unknown & 0xFC00_FFFF, Get(cpu, KvmArm64PmuRegs.PMEVTYPERn_EL0(7)));
        Assert.Equal(0UL, Get(cpu, KvmArm64PmuRegs.PMUSERENR_EL0));
        Assert.Equal(0UL, Get(cpu, KvmArm64PmuRegs.PMCCFILTR_EL0));
        Assert.Equal(0UL, Get(cpu, KvmArm64PmuRegs.PMSWINC_EL0));
        // sanitise_id_aa64dfr0_el1: PMUVer of the PMU for a PMU VM.
        Assert.Equal(Arm64PmuRegs.PmuVer, (Get(cpu, KvmArm64IdRegs.ID_AA64DFR0_EL1) >> 8) & 0xf);
    }

    [Fact]
    public void Pmu_user_writes_follow_their_set_user()
    {
        var cpu = NewCpu(pmu: true);
        Assert.Equal(0, Set(cpu, KvmArm64PmuRegs.PMCNTENSET_EL0, ~0UL));
        Assert.Equal(0x8000_003FUL, Get(cpu, KvmArm64PmuRegs.PMCNTENSET_EL0));
        Assert.Equal(0, Set(cpu, KvmArm64PmuRegs.PMSWINC_EL0, ~0UL));
        Assert.Equal(0UL, Get(cpu, KvmArm64PmuRegs.PMSWINC_EL0));
        Assert.Equal(0, Set(cpu, KvmArm64PmuRegs.PMEVCNTRn_EL0(2), 0xabcd_0000_1234));
        Assert.Equal(0x1234UL, Get(cpu, KvmArm64PmuRegs.PMEVCNTRn_EL0(2)));
        Assert.Equal(0, Set(cpu, KvmArm64PmuRegs.PMEVTYPERn_EL0(2), ~0UL)); // no set_user: stored as is
        Assert.Equal(~0UL, Get(cpu, KvmArm64PmuRegs.PMEVTYPERn_EL0(2)));
        // set_pmcr: N = 3 is taken, bits above [7:0] other than N are dropped, LC forced.
        Assert.Equal(0, Set(cpu, KvmArm64PmuRegs.PMCR_EL0, (3UL << 11) | (1UL << 32) | 0x3));
        Assert.Equal((3UL << 11) | 0x43, Get(cpu, KvmArm64PmuRegs.PMCR_EL0));
        Assert.Equal(0x8000_0007UL, Get(cpu, KvmArm64PmuRegs.PMCNTENSET_EL0));
        // More counters than the host has: N silently unchanged.
        Assert.Equal(0, Set(cpu, KvmArm64PmuRegs.PMCR_EL0, 7UL << 11));
        Assert.Equal(3UL, (Get(cpu, KvmArm64PmuRegs.PMCR_EL0) >> 11) & 0x1f);
        // Once the VM has run, N is frozen.
        cpu.IdRegs.HasRanOnce = true;
        Assert.Equal(0, Set(cpu, KvmArm64PmuRegs.PMCR_EL0, 1UL << 11));
        Assert.Equal(3UL, (Get(cpu, KvmArm64PmuRegs.PMCR_EL0) >> 11) & 0x1f);
    }

    [Fact]
    public void Dfr0_pmuver_limit_depends_on_the_pmu_feature()
    {
        var vm = new Arm64IdRegState();
        int dfr0 = Arm64IdRegs.IndexOf("ID_AA64DFR0_EL1");
        ulong withPmu = (vm.Values[dfr0] & ~(0xfUL << 8)) | (Arm64PmuRegs.PmuVer << 8);
        Assert.Equal(Vfs.Err.EINVAL, Arm64IdRegs.Write(vm, dfr0, withPmu, hasPmu: false));
        Assert.Equal(0, Arm64IdRegs.Write(vm, dfr0, withPmu, hasPmu: true));
        Assert.Equal(Vfs.Err.EINVAL, Arm64IdRegs.Write(vm, dfr0, withPmu + (1UL << 8), hasPmu: true));
    }
}
