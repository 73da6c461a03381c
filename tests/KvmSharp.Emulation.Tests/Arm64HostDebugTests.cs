// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Emulation.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The host's arm64 debug exceptions on the emulated kernel (Arm64HostDebug.cs), through the SDK's typed API
/// (Arm64VcpuDebug.SetGuestDebug, Arm64GuestDebugOptions, VcpuExit.Arm64Debug): a BRK routed to userspace while the
/// VMM debugs (debug.c kvm_arm_setup_mdcr_el2: MDCR_EL2.TDE for any vcpu->guest_debug), hardware breakpoints and
/// watchpoints from kvm_guest_debug_arch with KVM_GUESTDBG_USE_HW (guest.c kvm_arch_vcpu_ioctl_set_guest_debug,
/// Arm ARM D2.9/D2.10 matching), their ESRs and far (handle_exit.c kvm_handle_guest_debug), and a breakpoint under
/// single-step. No arm64 host here: the oracle is the kernel source and the Arm ARM, cited per assertion.
/// </summary>
public sealed class Arm64HostDebugTests
{
    private const ulong Data = 0x8000, MmioAddress = 0x2_0000, SyncVector = 0x200;
    private const ulong Loaded = 0x1122_3344_5566_7788;

    private static readonly uint[] Program =
    [
        0xD2A00049, // 0x800 mov x9, #0x20000
        0xD2800021, // 0x804 mov x1, #1
        0x91000421, // 0x808 add x1, x1, #1
        0xD2900002, // 0x80c mov x2, #0x8000
        0xF9000041, // 0x810 str x1, [x2]          writes 0x8000..0x8007
        0xF9400443, // 0x814 ldr x3, [x2, #8]      reads 0x8008..0x800f
        0xD4224680, // 0x818 brk #0x1234
        0xF9000123, // 0x81c str x3, [x9]          KVM_EXIT_MMIO
    ];

    /// <summary>BRK #0x1234: EC 0x3C &lt;&lt; 26 | IL | imm16.</summary>
    private const uint BrkEsr = 0xF200_1234;

    /// <summary>A breakpoint: EC 0x30, IL, IFSC 0x22.</summary>
    private const uint BreakpointEsr = 0xC200_0022;

    /// <summary>A watchpoint: EC 0x34, IL, DFSC 0x22 (WnR, bit 6, for a store).</summary>
    private const uint WatchpointEsr = 0xD200_0022, WnR = 1u << 6;

    /// <summary>DBGWCR: E, PAC = 0b11 (EL1 and EL0), LSC (bits 4:3), BAS (bits 12:5), MASK (bits 28:24).</summary>
    private static ulong Wcr(uint lsc, uint bas, uint mask = 0) => 1 | (3 << 1) | (lsc << 3) | (bas << 5) | ((ulong)mask << 24);

    private const uint Load = 1, Store = 2, Any = 3;

    private sealed class DebugVm : Arm64TestVm
    {
        public DebugVm()
            : base(a =>
            {
                foreach (uint w in Program) a.Emit(w);
            })
        {
            // The sync vector: mov x8, #1; str x8, [x9] (an MMIO exit that says the guest took the exception); b .
            Host.Write(SyncVector, new byte[] { 0x28, 0x00, 0x80, 0xD2, 0x28, 0x01, 0x00, 0xF9, 0x00, 0x00, 0x00, 0x14 });
            Host.Write(Data + 8, BitConverter.GetBytes(Loaded));
            Vcpu = AddVcpu();
        }

        public KvmSharp.Vcpu Vcpu { get; }

        public void Debug(GuestDebugFlags flags, Arm64DebugRegisterPair[]? breakpoints = null, Arm64DebugRegisterPair[]? watchpoints = null) =>
            Vcpu.SetGuestDebug(new Arm64GuestDebugOptions { Flags = flags, Breakpoints = breakpoints ?? [], Watchpoints = watchpoints ?? [] });

        /// <summary>Runs to a KVM_EXIT_DEBUG and checks its ESR and the PC (the instruction, not executed).</summary>
        public Arm64DebugExit Stop(uint esr, ulong pc)
        {
            VcpuExit exit = Vcpu.RunBounded();
            Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
            Arm64DebugExit d = exit.Arm64Debug;
            Assert.Equal(esr, d.Hsr);
            Assert.True(d.HsrHighValid); // run->flags |= KVM_DEBUG_ARCH_HSR_HIGH_VALID on every debug exit
            Assert.Equal(0u, d.HsrHigh);
            Assert.Equal(pc, Vcpu.GetPc());
            return d;
        }

        public ulong Memory(ulong gpa)
        {
            var b = new byte[8];
            Host.Read(gpa, b);
            return BitConverter.ToUInt64(b);
        }
    }

    [Theory]
    [InlineData(GuestDebugFlags.Enable | GuestDebugFlags.UseSoftwareBreakpoints)]
    [InlineData(GuestDebugFlags.Enable)] // MDCR_EL2.TDE is set for any vcpu->guest_debug: USE_SW_BP is never tested
    [InlineData(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints)]
    public void A_brk_exits_with_ec_0x3C_and_its_immediate_while_the_host_debugs(GuestDebugFlags flags)
    {
        using var t = new DebugVm();
        t.Debug(flags);
        Arm64DebugExit d = t.Stop(BrkEsr, 0x818);
        Assert.Equal(Arm64DebugExit.Brk64Class, d.ExceptionClass);
        Assert.Equal(0x1234u, d.Hsr & 0xffff);
        Assert.True(d.IsBrk);
        Assert.Equal(0x1234, d.BrkImmediate);
        Assert.False(d.IsBreakpoint || d.IsWatchpoint || d.IsSoftwareStep);
        Assert.Equal(Loaded, t.Vcpu.GetX(3)); // everything before the BRK ran
        // The preferred return address of a BRK is the BRK: KVM_RUN again stops at it again.
        t.Stop(BrkEsr, 0x818);
        Assert.Equal(0UL, t.Vcpu.GetX(8)); // the guest's vector never ran
        // A debugger steps over it by moving the PC.
        t.Vcpu.SetPc(0x81c);
        VcpuExit mmio = t.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, mmio.Reason);
        Assert.Equal(MmioAddress, mmio.MmioAddress);
    }

    [Theory]
    [InlineData(GuestDebugFlags.None)]
    [InlineData(GuestDebugFlags.UseSoftwareBreakpoints)] // no ENABLE: "vcpu->guest_debug = 0"
    public void Without_host_debugging_a_brk_is_the_guests_breakpoint_instruction_exception(GuestDebugFlags flags)
    {
        using var t = new DebugVm();
        t.Debug(flags);
        VcpuExit exit = t.Vcpu.RunBounded();
        // Taken to EL1 at VBAR_EL1 + 0x200 (EL1h): the vector's store is the exit, with ELR_EL1 = the BRK and
        // ESR_EL1 = EC 0x3C | IL | imm16.
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(SyncVector + 4, t.Vcpu.GetPc());
        Assert.Equal(1UL, t.Vcpu.GetX(8));
        Assert.Equal(0x818UL, t.Vcpu.GetOneReg(KvmArm64Regs.ElrEl1));
        Assert.Equal(BrkEsr, t.Vcpu.GetOneReg(KvmArm64SysRegs.ARM64_SYS_REG(3, 0, 5, 2, 0)));
    }

    [Fact]
    public void A_hardware_breakpoint_exits_with_ec_0x30_before_the_instruction_on_every_run()
    {
        using var t = new DebugVm();
        t.Debug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, [Arm64DebugRegisterPair.ExecuteBreakpoint(0x808)]);
        Arm64DebugExit d = t.Stop(BreakpointEsr, 0x808);
        Assert.Equal(Arm64DebugExit.BreakpointClass, d.ExceptionClass);
        Assert.True(d.IsBreakpoint);
        Assert.False(d.IsBrk || d.IsWatchpoint);
        Assert.Equal(0, d.BrkImmediate);
        Assert.Equal(1UL, t.Vcpu.GetX(1)); // the add has not run
        // arm64 has no "ignore once" flag: the next KVM_RUN stops at the same instruction.
        t.Stop(BreakpointEsr, 0x808);
        Assert.Equal(1UL, t.Vcpu.GetX(1));
        // The SDK's architecture-neutral helper programs the same registers (dbg_bcr = 0x1E7).
        t.Vcpu.SetHardwareBreakpoint(0x80c);
        t.Stop(BreakpointEsr, 0x80c);
        Assert.Equal(2UL, t.Vcpu.GetX(1));
        // Off: the run goes on to the BRK (guest_debug = 0: the guest's own; its vector's store exits).
        t.Vcpu.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, t.Vcpu.RunBounded().Reason);
        Assert.Equal(SyncVector + 4, t.Vcpu.GetPc());
    }

    public static TheoryData<string, GuestDebugFlags, Arm64DebugRegisterPair[]> BreakpointsThatDoNotMatch => new()
    {
        { "E = 0", GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, [new(0x808, 0x1E6)] },
        { "PMC = EL0 only, the guest at EL1", GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, [new(0x808, 0x1E5)] },
        { "BT = linked address match", GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, [new(0x808, 0x1E7 | (1UL << 20))] },
        { "BAS = 0b0011 (not an A64 match)", GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, [new(0x808, 0x067)] },
        { "another address", GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, [new(0x80a0, 0x1E7)] },
        { "no USE_HW: dbg->arch ignored", GuestDebugFlags.Enable, [new(0x808, 0x1E7)] },
        {
            "register 6: beyond the host's ID_AA64DFR0_EL1.BRPs + 1 = 6",
            GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints,
            [default, default, default, default, default, default, new(0x808, 0x1E7)]
        },
    };

    [Theory]
    [MemberData(nameof(BreakpointsThatDoNotMatch))]
    public void A_breakpoint_that_does_not_match_lets_the_instruction_run(string why, GuestDebugFlags flags, Arm64DebugRegisterPair[] breakpoints)
    {
        using var t = new DebugVm();
        t.Debug(flags, breakpoints);
        t.Stop(BrkEsr, 0x818); // ENABLE routes the BRK: the first stop is there
        Assert.True(t.Vcpu.GetX(1) == 2, why);
    }

    [Fact]
    public void Single_step_onto_a_breakpoint_stops_at_it_until_the_debugger_removes_it()
    {
        using var t = new DebugVm();
        var step = GuestDebugFlags.Enable | GuestDebugFlags.SingleStep;
        t.Debug(step | GuestDebugFlags.UseHardwareBreakpoints, [Arm64DebugRegisterPair.ExecuteBreakpoint(0x808)]);
        const uint StepEsr = 0xCA00_0022, Isv = 1u << 24;
        t.Stop(StepEsr | Isv, 0x804);
        t.Stop(StepEsr | Isv, 0x808);
        Assert.Equal(1UL, t.Vcpu.GetX(1));
        // Active-not-pending at 0x808 with a breakpoint there: the Breakpoint exception is taken instead of the
        // instruction (SPSR_EL2.SS stays 1), and again on the next entry — 6.18 has no "step over it once".
        t.Stop(BreakpointEsr, 0x808);
        t.Stop(BreakpointEsr, 0x808);
        Assert.Equal(1UL, t.Vcpu.GetX(1));
        // The debugger's way: the breakpoint out, one step, then back in.
        t.Debug(step);
        t.Stop(StepEsr | Isv, 0x80c);
        Assert.Equal(2UL, t.Vcpu.GetX(1));
        t.Debug(step | GuestDebugFlags.UseHardwareBreakpoints, [Arm64DebugRegisterPair.ExecuteBreakpoint(0x808)]);
        t.Stop(StepEsr | Isv, 0x810);
    }

    [Fact]
    public void A_store_to_a_watched_byte_exits_with_ec_0x34_and_far_before_it_writes()
    {
        using var t = new DebugVm();
        // Bytes 0x8004..0x8007 (DBGWVR = 0x8004: DBGWVR[2] set, BAS[3:0] select the word's bytes), stores only.
        t.Debug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, watchpoints: [new(Data + 4, Wcr(Store, 0x0F))]);
        Arm64DebugExit d = t.Stop(WatchpointEsr | WnR, 0x810);
        Assert.Equal(Arm64DebugExit.WatchpointClass, d.ExceptionClass);
        Assert.True(d.IsWatchpoint && d.IsWatchpointWrite);
        Assert.Equal(Data + 4, d.Far); // run->debug.arch.far = FAR_EL2: the lowest watched byte the store touches
        Assert.Equal(0UL, t.Memory(Data)); // not written
        t.Stop(WatchpointEsr | WnR, 0x810);
        // Watchpoint out, one step, the store completes.
        t.Debug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);
        t.Stop(0xCA00_0022 | (1u << 24), 0x814);
        Assert.Equal(2UL, t.Memory(Data));
    }

    public static TheoryData<string, ulong, ulong, uint, ulong, ulong> Watchpoints => new()
    {
        // name, DBGWVR, DBGWCR, expected ESR, its PC, far
        { "a load of the watched last byte", Data + 8, Wcr(Load, 0x80), WatchpointEsr, 0x814, Data + 15 },
        { "DBGWVR[2] = 1: BAS[0] is byte 4 of the doubleword", Data + 12, Wcr(Load, 0x01), WatchpointEsr, 0x814, Data + 12 },
        { "MASK = 12: the whole page, either way", Data + 0x123, Wcr(Any, 0xFF, 12), WatchpointEsr | WnR, 0x810, Data },
        { "loads only: the store passes", Data, Wcr(Load, 0xFF), BrkEsr, 0x818, 0 },
        { "stores only: the load passes", Data + 8, Wcr(Store, 0xFF), BrkEsr, 0x818, 0 },
        { "bytes nobody touches", Data + 16, Wcr(Any, 0xFF), BrkEsr, 0x818, 0 },
        { "LSC = 0b00 (reserved)", Data, Wcr(0, 0xFF), BrkEsr, 0x818, 0 },
    };

    [Theory]
    [MemberData(nameof(Watchpoints))]
    public void Watchpoint_matching_follows_lsc_bas_and_mask(string why, ulong wvr, ulong wcr, uint esr, ulong pc, ulong far)
    {
        using var t = new DebugVm();
        t.Debug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, watchpoints: [new(wvr, wcr)]);
        Arm64DebugExit d = t.Stop(esr, pc);
        if (d.ExceptionClass == Arm64DebugExit.WatchpointClass)
        {
            Assert.True(far == d.Far, why);
            Assert.True(d.IsWatchpointWrite == ((esr & WnR) != 0), why);
            if (pc == 0x814) Assert.Equal(0UL, t.Vcpu.GetX(3)); // the load did not write its register
        }
    }

    [Fact]
    public void Watchpoints_beyond_the_hosts_four_are_ignored()
    {
        using var t = new DebugVm();
        t.Debug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints,
            watchpoints: [default, default, default, default, new(Data, Wcr(Any, 0xFF))]);
        t.Stop(BrkEsr, 0x818);
        t.Debug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints,
            watchpoints: [default, default, default, new(Data + 8, Wcr(Any, 0xFF))]);
        t.Vcpu.SetPc(0x814);
        Assert.Equal(Data + 8, t.Stop(WatchpointEsr, 0x814).Far);
    }

    [Fact]
    public void Far_is_written_only_by_a_watchpoint_exit()
    {
        using var t = new DebugVm();
        t.Debug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, watchpoints: [new(Data, Wcr(Store, 0x01))]);
        Assert.Equal(Data, t.Stop(WatchpointEsr | WnR, 0x810).Far);
        // The BRK exit leaves debug.arch.far as it was ("case ESR_ELx_EC_WATCHPT_LOW: run->debug.arch.far = …" only).
        t.Vcpu.SetPc(0x818);
        Assert.Equal(Data, t.Stop(BrkEsr, 0x818).Far);
    }
    /// <summary>
    /// Runs <paramref name="words"/> at 0x800 (x1 = <see cref="Data"/> + <paramref name="offset"/>, MMU off) on an SVE
    /// vCPU (ZCR_EL1.LEN 1: four doubleword elements) watched by <paramref name="watchpoint"/>, to a KVM_EXIT_DEBUG.
    /// </summary>
    private static (Arm64TestVm Vm, KvmSharp.Vcpu Vcpu, Arm64DebugExit Exit) RunWatched(uint[] words, ulong offset,
        Arm64DebugRegisterPair watchpoint)
    {
        var s = new Arm64TestVm(a =>
        {
            a.MovImm(KvmSharp.Vmm.Arch.Arm64.A64Register.X(1), Data + offset);
            foreach (uint w in words) a.Emit(w);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV1 });
        s.Host.Write(Data, Enumerable.Range(1, 0x100).Select(i => (byte)i).ToArray());
        var v = s.AddVcpu(1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
        v.FinalizeSve();
        v.SetOneReg(KvmArm64Sve.ZCR_EL1, 1);
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        v.SetGuestDebug(new Arm64GuestDebugOptions
        {
            Flags = GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints,
            Watchpoints = [watchpoint],
        });
        VcpuExit exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
        return (s, v, exit.Arm64Debug);
    }

    [Fact]
    public void An_sve_ld1d_whose_third_element_is_watched_stops_with_far_the_watched_byte()
    {
        // ptrue p0.d; ld1d {z0.d}, p0/z, [x1]: elements at Data, +8, +16, +24. The watched byte is Data + 20, inside
        // the third element but not its first byte (DBGWVR = Data + 16 with DBGWVR[2] set: BAS[0] is byte 4).
        const uint PtrueD = 0x25D8E3E0, Ld1d = 0xA5E0A020;
        var (s, v, d) = RunWatched([PtrueD, Ld1d], 0, new(Data + 20, Wcr(Load, 0x01)));
        using (s)
        {
            Assert.Equal(WatchpointEsr, d.Hsr);
            Assert.Equal(Data + 20, d.Far);
            Assert.False(d.IsWatchpointWrite);
            Assert.Equal(Ld1d, s.Host.Read<uint>(v.GetPc())); // PC at the LD1D, not executed
            Assert.Equal(new byte[32], v.GetOneRegBytes(KvmArm64Sve.KVM_REG_ARM64_SVE_ZREG(0, 0))[..32]); // not loaded
        }
    }

    [Fact]
    public void A_dc_zva_block_with_a_watched_byte_stops_before_it_zeroes()
    {
        // dc zva, x1 with x1 = Data + 0x47: the 64-byte block Data + 0x40 .. + 0x7F (DCZID_EL0.BS 4); watched byte
        // Data + 0x5A, stores only. FAR: the lowest watched byte in the block; WnR: DC ZVA is a store.
        const uint DcZva = 0xD50B_7421;
        var (s, v, d) = RunWatched([DcZva], 0x47, new(Data + 0x58, Wcr(Store, 0x04)));
        using (s)
        {
            Assert.Equal(WatchpointEsr | WnR, d.Hsr);
            Assert.Equal(Data + 0x5A, d.Far);
            Assert.Equal(DcZva, s.Host.Read<uint>(v.GetPc()));
            var block = new byte[0x40];
            s.Host.Read(Data + 0x40, block);
            Assert.Equal(Enumerable.Range(0x41, 0x40).Select(i => (byte)i).ToArray(), block); // not zeroed
            // Unwatched, one step: the DC ZVA goes on to its translation, where the MMU off makes the block Device memory,
            // an Alignment fault (AArch64.DC ZVA): EC 0x25, IL, DFSC 0x21, WnR; the vector at VBAR_EL1 + 0x200.
            v.SetGuestDebug(new Arm64GuestDebugOptions { Flags = GuestDebugFlags.Enable | GuestDebugFlags.SingleStep });
            Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, v.RunBounded().Reason);
            Assert.Equal(SyncVector, v.GetPc());
            Assert.Equal((0x25UL << 26) | (1UL << 25) | 0x21 | WnR, v.GetOneReg(KvmArm64SysRegs.ESR_EL1));
        }
    }
}
