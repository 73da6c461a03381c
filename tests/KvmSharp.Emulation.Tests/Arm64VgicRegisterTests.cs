// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Vgic;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The GICv3 registers (Emulation/Arm64/Vgic/VgicMmio.cs, VgicSysRegs.cs) against arch/arm64/kvm/vgic/vgic-kvm-device.c
/// vgic_v3_attr_regs_access / vgic_v3_has_attr_regs, vgic-mmio-v3.c and vgic-mmio.c (6.18): the VMM's save and
/// restore through DIST_REGS / REDIST_REGS / CPU_SYSREGS / LEVEL_INFO, and the guest's accesses to the frames, which
/// complete in the kernel.
/// </summary>
public class Arm64VgicRegisterTests
{
    private const ulong Dist = 0x0800_0000, Redist = 0x080A_0000;

    private sealed class Setup : Arm64TestVm
    {
        public Setup(int vcpus = 1, Action<A64Assembler>? program = null, bool initialize = true, Action<A64Assembler>? irqVector = null)
            : base(program ?? (a => Arm64Guest.Ucall(a, Arm64Guest.UcallDone)))
        {
            // VBAR_EL1 resets to 0: "current EL with SP_ELx, IRQ" is at 0x280.
            if (irqVector is not null) Host.Write(0x280, Arm64Guest.Assemble(irqVector));
            for (int i = 0; i < vcpus; i++) AddVcpu();
            Gic = Vm.CreateVgicV3(Dist, Redist, (uint)vcpus, interrupts: 128);
            if (initialize) Gic.InitializeVgic();
        }

        public KvmDevice Gic { get; }

        protected override void DisposeExtras() => Gic.Dispose();
    }

    private static Errno Fails(Action action) => Assert.Throws<KvmException>(action).Errno;

    private static readonly uint Vcpu1 = Arm64Vgic.VcpuAffinity(1);

    [Fact]
    public void Register_groups_need_an_initialized_vgic()
    {
        using var s = new Setup(initialize: false);
        Assert.Equal(Errno.EBUSY, Fails(() => s.Gic.GetDistributorRegister(0x0)));
        Assert.Equal(Errno.EBUSY, Fails(() => s.Gic.GetRedistributorRegister(0, 0x8)));
        // vgic_v3_has_attr_regs does not need the initialization.
        Assert.True(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0x100));
    }

    [Fact]
    public void Distributor_identification_registers_read_as_kvm_reports_them()
    {
        using var s = new Setup();
        // GICD_CTLR: ARE_NS | DS, not enabled; GICD_TYPER: 128 lines → ITLinesNumber 3, IDbits 9; GICD_IIDR rev 3.
        Assert.Equal(0x50u, s.Gic.GetDistributorRegister(0x0));
        Assert.Equal(3u | (9u << 19), s.Gic.GetDistributorRegister(0x4));
        Assert.Equal(0x4B00_343Bu, s.Gic.GetDistributorRegister(0x8));
        Assert.Equal(0x3Bu, s.Gic.GetDistributorRegister(0xFFE8));
        // GICD_STATUSR reads all ones (vgic_mmio_read_rao).
        Assert.Equal(uint.MaxValue, s.Gic.GetDistributorRegister(0x10));
    }

    [Fact]
    public void Spi_state_round_trips_through_dist_regs()
    {
        using var s = new Setup();
        s.Gic.SetDistributorRegister(0x104, 0x0000_0005);     // ISENABLER1: SPIs 32, 34
        s.Gic.SetDistributorRegister(0x204, 0x0000_0003);     // ISPENDR1: 32, 33
        s.Gic.SetDistributorRegister(0x420, 0xFFA0_5008);     // IPRIORITYR8: 32..35 (narrowed to 5 bits)
        s.Gic.SetDistributorRegister(0xC08, 0x0000_0000);     // ICFGR2: 32..47 level
        s.Gic.SetDistributorRegister(0x6100, 0x0000_0001);    // IROUTER32 → Aff0 1
        s.Gic.SetDistributorRegister(0x0, 0x2);               // GICD_CTLR.EnableGrp1NS
        Assert.Equal(5u, s.Gic.GetDistributorRegister(0x104));
        Assert.Equal(5u, s.Gic.GetDistributorRegister(0x184));  // ICENABLER reads the same bits
        Assert.Equal(3u, s.Gic.GetDistributorRegister(0x204));
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x284));  // ICPENDR: RAZ to userspace
        Assert.Equal(0xF8A0_5008u, s.Gic.GetDistributorRegister(0x420));
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0xC08));
        Assert.Equal(0xAAAA_AAAAu, s.Gic.GetDistributorRegister(0xC0C)); // 48..63 still edge
        Assert.Equal(1u, s.Gic.GetDistributorRegister(0x6100));
        Assert.Equal(0x52u, s.Gic.GetDistributorRegister(0x0));
        // A restore of ISPENDR clears the bits it does not set (vgic_v3_uaccess_write_pending).
        s.Gic.SetDistributorRegister(0x204, 0x4);
        Assert.Equal(4u, s.Gic.GetDistributorRegister(0x204));
        // ICENABLER clears.
        s.Gic.SetDistributorRegister(0x184, 0x1);
        Assert.Equal(4u, s.Gic.GetDistributorRegister(0x104));
    }

    [Fact]
    public void Read_only_and_missing_registers_ignore_writes_and_has_attr_tells_them_apart()
    {
        using var s = new Setup();
        uint typer = s.Gic.GetDistributorRegister(0x4);
        s.Gic.SetDistributorRegister(0x4, 0);                   // GICD_TYPER: WI
        Assert.Equal(typer, s.Gic.GetDistributorRegister(0x4));
        // The private part of a shared register is RAZ/WI.
        s.Gic.SetDistributorRegister(0x100, 0xFFFF_FFFF);
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x100));
        // Beyond nr_irqs (128) and unaligned: read 0, write ignored, succeed (vgic_uaccess_read/write)…
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x110));
        s.Gic.SetDistributorRegister(0x110, 1);
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x102));
        // …but HAS_ATTR answers ENXIO.
        Assert.False(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0x110));
        Assert.False(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0x102));
        Assert.False(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0x5000));
        Assert.True(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0x10C));
        Assert.True(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0x10100));
        Assert.False(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0x10104));
        // GICD_IIDR: only the revision may differ (EINVAL otherwise); GICD_TYPER2 must match.
        Assert.Equal(Errno.EINVAL, Fails(() => s.Gic.SetDistributorRegister(0x8, 0x4B00_343C)));
        s.Gic.SetDistributorRegister(0x8, 0x4B00_243B);
        Assert.Equal(Errno.EINVAL, Fails(() => s.Gic.SetDistributorRegister(0xC, 1)));
    }

    [Fact]
    public void Redistributor_state_is_per_vcpu_and_a_missing_vcpu_is_einval()
    {
        using var s = new Setup(vcpus: 2);
        s.Gic.SetRedistributorRegister(Vcpu1, 0x10100, 1u << 27);          // ISENABLER0: vtimer PPI
        s.Gic.SetRedistributorRegister(Vcpu1, 0x10418, 0xA000_0000);       // IPRIORITYR6: PPI 27
        Assert.Equal(0x0800_FFFFu, s.Gic.GetRedistributorRegister(Vcpu1, 0x10100)); // SGIs enabled at reset
        Assert.Equal(0x0000_FFFFu, s.Gic.GetRedistributorRegister(0, 0x10100));
        Assert.Equal(0xA000_0000u, s.Gic.GetRedistributorRegister(Vcpu1, 0x10418));
        // SGIs edge (0b10), PPIs level; ICFGR is read-only for private interrupts.
        Assert.Equal(0xAAAA_AAAAu, s.Gic.GetRedistributorRegister(Vcpu1, 0x10C00));
        s.Gic.SetRedistributorRegister(Vcpu1, 0x10C04, 0xFFFF_FFFF);
        Assert.Equal(0u, s.Gic.GetRedistributorRegister(Vcpu1, 0x10C04));
        // GICR_TYPER: Processor_Number 1, affinity 1, Last for vCPU 1 only; WI from userspace.
        Assert.Equal((1u << 8) | (1u << 4), s.Gic.GetRedistributorRegister(Vcpu1, 0x8));
        Assert.Equal(1u, s.Gic.GetRedistributorRegister(Vcpu1, 0xC));
        Assert.Equal(0u, s.Gic.GetRedistributorRegister(0, 0x8));
        s.Gic.SetRedistributorRegister(Vcpu1, 0x8, 0);
        Assert.Equal((1u << 8) | (1u << 4), s.Gic.GetRedistributorRegister(Vcpu1, 0x8));
        // GICR_CTLR: IR | CES at revision 3; GICR_WAKER RAZ/WI.
        Assert.Equal(6u, s.Gic.GetRedistributorRegister(0, 0x0));
        s.Gic.SetRedistributorRegister(0, 0x14, 2);
        Assert.Equal(0u, s.Gic.GetRedistributorRegister(0, 0x14));
        Assert.Equal(Errno.EINVAL, Fails(() => s.Gic.GetRedistributorRegister(Arm64Vgic.VcpuAffinity(2), 0x8)));
    }

    [Fact]
    public void Cpu_sysregs_round_trip_and_refuse_what_the_host_cannot_restore()
    {
        using var s = new Setup();
        ulong pmr = KvmArm64SysRegs.Encoding(3, 0, 4, 6, 0), ctlr = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 4);
        ulong sre = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 5), grpen1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 7);
        ulong ap1r0 = KvmArm64SysRegs.Encoding(3, 0, 12, 9, 0), ap1r1 = KvmArm64SysRegs.Encoding(3, 0, 12, 9, 1);
        s.Gic.SetCpuInterfaceRegister(0, pmr, 0x1F0);
        Assert.Equal(0xF0UL, s.Gic.GetCpuInterfaceRegister(0, pmr));
        s.Gic.SetCpuInterfaceRegister(0, grpen1, 1);
        Assert.Equal(1UL, s.Gic.GetCpuInterfaceRegister(0, grpen1));
        Assert.Equal(7UL, s.Gic.GetCpuInterfaceRegister(0, sre));
        Assert.Equal(Errno.EINVAL, Fails(() => s.Gic.SetCpuInterfaceRegister(0, sre, 6)));
        // ICC_CTLR_EL1: PRIbits 4 (5 bits), A3V; more priority bits than the host: EINVAL; EOImode restores.
        ulong c = s.Gic.GetCpuInterfaceRegister(0, ctlr);
        Assert.Equal((4UL << 8) | (1UL << 15), c);
        Assert.Equal(Errno.EINVAL, Fails(() => s.Gic.SetCpuInterfaceRegister(0, ctlr, c | (6UL << 8))));
        s.Gic.SetCpuInterfaceRegister(0, ctlr, c | 2);
        Assert.Equal(c | 2, s.Gic.GetCpuInterfaceRegister(0, ctlr));
        s.Gic.SetCpuInterfaceRegister(0, ap1r0, 0x8000_0000);
        Assert.Equal(0x8000_0000UL, s.Gic.GetCpuInterfaceRegister(0, ap1r0));
        // Five priority bits: only AP1R0 exists (vgic_v3_max_apr_idx), yet HAS_ATTR knows the encoding.
        Assert.Equal(Errno.EINVAL, Fails(() => s.Gic.GetCpuInterfaceRegister(0, ap1r1)));
        Assert.True(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, ap1r1 & 0xffff));
        // Not an ICC register the group saves (ICC_IAR1_EL1): ENOENT, HAS_ATTR ENXIO.
        ulong iar1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 0);
        Assert.Equal(Errno.ENOENT, Fails(() => s.Gic.GetCpuInterfaceRegister(0, iar1)));
        Assert.False(s.Gic.HasAttribute(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, iar1 & 0xffff));
    }

    [Fact]
    public void Line_levels_round_trip_for_level_lines_only()
    {
        using var s = new Setup();
        s.Gic.SetDistributorRegister(0xC08, 0);                    // SPIs 32..47 level
        s.Gic.SetLineLevels(0, 32, 0x0001_0003);                   // 32, 33 (level) and 48 (edge)
        Assert.Equal(3u, s.Gic.GetLineLevels(0, 32));
        // ISPENDR reads irq_is_pending: a high level line is pending.
        Assert.Equal(3u, s.Gic.GetDistributorRegister(0x204) & 3);
        Assert.Equal(Errno.EINVAL, Fails(() => s.Gic.GetLineLevels(0, 33)));
        Assert.Equal(Errno.EINVAL, Fails(() => s.Gic.GetAttribute32(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 1UL << 10)));
    }

    [Fact]
    public void Guest_accesses_to_the_frames_complete_in_the_kernel()
    {
        using var s = new Setup(program: a =>
        {
            a.MovImm(X(20), Dist);
            a.Ldr(W(1), X(20), 4);                          // GICD_TYPER
            a.MovImm(X(2), 0x5);
            a.Str(W(2), X(20), 0x104);                      // GICD_ISENABLER1
            a.MovImm(X(21), Redist);
            a.Ldr(X(3), X(21), 8);                          // GICR_TYPER, 64-bit
            a.MovImm(X(22), Redist + 0x10400);
            a.MovImm(X(4), 0xA5);
            a.Strb(W(4), X(22), 27);                        // GICR_IPRIORITYR byte of PPI 27
            a.Ldrb(W(5), X(22), 27);
            a.Ldrh(W(6), X(20), 0);                         // a 16-bit access: no register, reads 0
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        var exit = s.Vcpus[0].RunBounded();
        // The only exit is the ucall.
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(3UL | (9UL << 19), s.Vcpus[0].GetOneReg(KvmArm64Regs.X(1)));
        Assert.Equal(1UL << 4, s.Vcpus[0].GetOneReg(KvmArm64Regs.X(3)));
        Assert.Equal(0xA0UL, s.Vcpus[0].GetOneReg(KvmArm64Regs.X(5)));
        Assert.Equal(0UL, s.Vcpus[0].GetOneReg(KvmArm64Regs.X(6)));
        Assert.Equal(5u, s.Gic.GetDistributorRegister(0x104));
        Assert.Equal(0xA000_0000u, s.Gic.GetRedistributorRegister(0, 0x10418));
    }

    private static readonly ulong IccPmr = KvmArm64SysRegs.Encoding(3, 0, 4, 6, 0), IccIar1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 0),
        IccEoir1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 1), IccIgrpen1 = KvmArm64SysRegs.Encoding(3, 0, 12, 12, 7),
        IccRpr = KvmArm64SysRegs.Encoding(3, 0, 12, 11, 3);

    /// <summary>The IRQ handler: x19 = ICC_IAR1_EL1, x20 = ICC_RPR_EL1, EOI, then report done.</summary>
    private static void Handler(A64Assembler a)
    {
        a.Mrs(X(19), IccIar1);
        a.Mrs(X(20), IccRpr);
        a.Msr(IccEoir1, X(19));
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
    }

    /// <summary>PMR = 0xff, Group 1 on, IRQs unmasked, then WFI (a return from it reports failure).</summary>
    private static void EnableAndWait(A64Assembler a)
    {
        a.MovImm(X(1), 0xff);
        a.Msr(IccPmr, X(1));
        a.MovImm(X(1), 1);
        a.Msr(IccIgrpen1, X(1));
        a.MsrDaif(set: false, 2);
        a.Wfi();
        Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
    }

    [Fact]
    public void Irq_line_checks_its_arguments()
    {
        using var s = new Setup(initialize: false);
        Assert.Equal(Errno.EBUSY, Fails(() => s.Vm.SetSpiLevel(40, true)));   // vgic_lazy_init: a GICv3 is not auto-initialized
        s.Gic.InitializeVgic();
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetSpiLevel(128, true)));  // beyond nr_irqs
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.SetPpiLevel(1, 20, true))); // no vCPU 1
        Assert.Equal(Errno.ENXIO, Fails(() => s.Vm.SetIrqLine(5, true)));       // KVM_ARM_IRQ_TYPE_CPU with a vGIC
        s.Vm.SetSpiLevel(40, true);                                             // edge: latches pending
        s.Vm.SetSpiLevel(40, false);
        Assert.Equal(1u << 8, s.Gic.GetDistributorRegister(0x204));
    }

    [Fact]
    public void An_spi_from_irq_line_reaches_the_guest_irq_handler()
    {
        using var s = new Setup(program: a =>
        {
            // The guest enables the distributor and SPI 33 itself, through its MMIO frame.
            a.MovImm(X(2), Dist);
            a.MovImm(X(3), 2);
            a.Str(W(3), X(2), 0);                       // GICD_CTLR.EnableGrp1NS
            a.Str(W(3), X(2), 0x104);                   // GICD_ISENABLER1: SPI 33
            a.MovImm(X(3), 0x80);
            a.Strb(W(3), X(2), 0x400 + 33);             // priority 0x80
            EnableAndWait(a);
        }, irqVector: Handler);
        s.Vm.SetSpiLevel(33, true);
        var exit = s.Vcpus[0].RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(exit.MmioData));
        Assert.Equal(33UL, s.Vcpus[0].GetOneReg(KvmArm64Regs.X(19)));
        Assert.Equal(0x80UL, s.Vcpus[0].GetOneReg(KvmArm64Regs.X(20)));         // running priority while active
        // Taken from EL1h: ELR_EL1 is the instruction after DAIFClr (the WFI, not executed), SPSR has I clear.
        Assert.Equal(0x3C5UL & ~0x80UL, s.Vcpus[0].GetOneReg(KvmArm64Regs.SpsrEl1) & 0x3CF);
        // EOIed with EOImode 0: neither pending nor active any more.
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x204));
        Assert.Equal(0u, s.Gic.GetDistributorRegister(0x304));
    }

    [Fact]
    public void The_virtual_timer_ppi_wakes_the_guest_from_wfi()
    {
        using var s = new Setup(program: a =>
        {
            a.MovImm(X(2), Redist + 0x10100);
            a.MovImm(X(3), 1UL << 27);
            a.Str(W(3), X(2));                          // GICR_ISENABLER0: PPI 27
            a.MovImm(X(2), Dist);
            a.MovImm(X(3), 2);
            a.Str(W(3), X(2), 0);                       // GICD_CTLR.EnableGrp1NS
            a.MovImm(X(3), 0);
            a.Msr(KvmArm64SysRegs.Encoding(3, 3, 14, 3, 2), X(3)); // CNTV_CVAL_EL0 = 0: already expired
            a.MovImm(X(3), 1);
            a.Msr(KvmArm64SysRegs.Encoding(3, 3, 14, 3, 1), X(3)); // CNTV_CTL_EL0 = ENABLE
            EnableAndWait(a);
        }, irqVector: Handler);
        var exit = s.Vcpus[0].RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(exit.MmioData));
        Assert.Equal(27UL, s.Vcpus[0].GetOneReg(KvmArm64Regs.X(19)));
        // The timer owns its PPI: userspace's KVM_IRQ_LINE on it changes nothing.
        s.Vm.SetPpiLevel(0, 27, false);
        Assert.Equal(1u << 27, s.Gic.GetLineLevels(0, 0) & (1u << 27));
    }
}
