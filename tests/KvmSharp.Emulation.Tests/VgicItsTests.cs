// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Vgic;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using static KvmSharp.Emulation.Tests.Arm64VgicGuestVm;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The GICv3 ITS on the emulated kernel (Emulation/Arm64/Vgic/VgicIts*.cs, VgicLpi.cs; 6.18 arch/arm64/kvm/vgic/
/// vgic-its.c, vgic-mmio-v3.c): the device and its attributes, KVM_SIGNAL_MSI with a device ID, a guest that programs
/// GICR_PROPBASER / PENDBASER / CTLR.EnableLPIs and the ITS (CBASER, BASER0/1, CTLR, CWRITER) and takes an LPI through
/// ICC_IAR1_EL1, the command queue's error handling, and the table save / restore.
/// </summary>
public class VgicItsTests
{
    private const ulong ItsBase = 0x0808_0000, Translater = ItsBase + 0x1_0040;

    // A second memory slot for the LPI and ITS tables (64 KiB aligned where the registers need it).
    private const ulong Tables = 0x40_0000, Prop = Tables, Pend = Tables + 0x1_0000, Cmdq = Tables + 0x2_0000,
        DevTable = Tables + 0x3_0000, CollTable = Tables + 0x4_0000, Itt = Tables + 0x5_0000, TablesSize = 0x6_0000;

    private const uint Lpi = 8197, DevId = 1, EventId = 2;
    private const int UcallSync = 0x77;
    private const int GitsCtlr = 0x0, GitsIidr = 0x4, GitsTyper = 0x8, GitsCbaser = 0x80, GitsCwriter = 0x88,
        GitsCreadr = 0x90, GitsBaser0 = 0x100, GitsBaser1 = 0x108;

    /// <summary>A GICv3 guest VM plus the table slot and an ITS at <see cref="ItsBase"/>.</summary>
    private sealed class ItsVm : IDisposable
    {
        public ItsVm(Action<A64Assembler> program, Action<A64Assembler>? irq = null, int vcpus = 1, bool createIts = true)
        {
            Vm = new Arm64VgicGuestVm(program, vcpus: vcpus, irq: irq);
            Mem = Vm.Vm.AllocateMemory(TablesSize);
            Slot = Vm.Vm.AddMemorySlot(1, Tables, Mem);
            if (createIts) Its = Vm.Vm.CreateVgicIts(ItsBase);
            // The LPI configuration table: LPI 8197 enabled at priority 0xa0 (LPI_PROP_PRIORITY, LPI_PROP_ENABLED).
            Mem.Write(Prop - Tables + (Lpi - 8192), (byte)(0xa0 | 1));
        }

        public Arm64VgicGuestVm Vm { get; }
        public AnonymousMemory Mem { get; }
        public MemorySlot Slot { get; }
        public KvmDevice? Its { get; }

        /// <summary>Writes 32-byte commands into the queue from its start.</summary>
        public void Commands(params ulong[][] cmds)
        {
            for (int i = 0; i < cmds.Length; i++)
                for (int w = 0; w < 4; w++) Mem.Write(Cmdq - Tables + (ulong)(i * 32 + w * 8), cmds[i][w]);
        }

        public void Dispose()
        {
            Its?.Dispose();
            foreach (var v in Vm.Vcpus) v.Dispose();
            Vm.Vcpus.Clear();
            Slot.Dispose();
            Mem.Dispose();
            Vm.Dispose();
        }
    }

    // GITS_CMD_* encodings (linux/irqchip/arm-gic-v3.h; the field layout of vgic-its.c its_cmd_get_*).
    private static ulong[] Mapd(uint dev, ulong itt, int bits, bool valid = true) =>
        [0x08UL | ((ulong)dev << 32), (ulong)(bits - 1), itt | (valid ? 1UL << 63 : 0), 0];
    private static ulong[] Mapc(uint coll, uint target, bool valid = true) =>
        [0x09, 0, coll | ((ulong)target << 16) | (valid ? 1UL << 63 : 0), 0];
    private static ulong[] Mapti(uint dev, uint evt, uint lpi, uint coll) => [0x0aUL | ((ulong)dev << 32), evt | ((ulong)lpi << 32), coll, 0];
    private static ulong[] Int(uint dev, uint evt) => [0x03UL | ((ulong)dev << 32), evt, 0, 0];
    private static ulong[] Discard(uint dev, uint evt) => [0x0fUL | ((ulong)dev << 32), evt, 0, 0];
    private static ulong[] Sync() => [0x05, 0, 0, 0];
    private static ulong[] Movi(uint dev, uint evt, uint coll) => [0x01UL | ((ulong)dev << 32), evt, coll, 0];
    private static ulong[] Movall(uint from, uint to) => [0x0e, 0, (ulong)from << 16, (ulong)to << 16];
    private static ulong[] Clear(uint dev, uint evt) => [0x04UL | ((ulong)dev << 32), evt, 0, 0];

    /// <summary>Appends commands after the first <paramref name="at"/> and lets the ITS run them (GITS_CWRITER from
    /// userspace: vgic_mmio_write_its_cwriter processes the queue as a guest write does).</summary>
    private static void Queue(ItsVm s, int at, params ulong[][] cmds)
    {
        for (int i = 0; i < cmds.Length; i++)
            for (int w = 0; w < 4; w++) s.Mem.Write(Cmdq - Tables + (ulong)((at + i) * 32 + w * 8), cmds[i][w]);
        s.Its!.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsCwriter, (ulong)(at + cmds.Length) * 32);
    }

    /// <summary>Device 1's event 2 → LPI 8197 in collection 0 on vCPU 0.</summary>
    private static readonly ulong[][] MapEvent = [Mapd(DevId, Itt, 4), Mapc(0, 0), Mapti(DevId, EventId, Lpi, 0), Sync()];

    /// <summary>
    /// The guest side: distributor and CPU interface on, GICR_PROPBASER (IDbits 13: LPIs up to 16383) and PENDBASER,
    /// GICR_CTLR.EnableLPIs, then the ITS: CBASER (valid, one 4 KiB page), BASER0 / BASER1 (valid, one 64 KiB page),
    /// GITS_CTLR.Enable, and CWRITER past <paramref name="commands"/> commands; x19 = GITS_CREADR, x23 = GICR_CTLR.
    /// </summary>
    private static void SetUp(A64Assembler a, int commands)
    {
        EnableDistributor(a);
        a.MovImm(X(2), Redist);
        a.MovImm(X(3), Prop | 13);
        a.Str(X(3), X(2), 0x70);                        // GICR_PROPBASER
        a.MovImm(X(3), Pend);
        a.Str(X(3), X(2), 0x78);                        // GICR_PENDBASER
        a.MovImm(X(3), 1);
        a.Str(W(3), X(2), 0);                           // GICR_CTLR.EnableLPIs
        a.Ldr(W(23), X(2), 0);
        a.MovImm(X(2), ItsBase);
        a.MovImm(X(3), Cmdq | (1UL << 63));
        a.Str(X(3), X(2), GitsCbaser);
        a.MovImm(X(3), DevTable | (1UL << 63));
        a.Str(X(3), X(2), GitsBaser0);
        a.MovImm(X(3), CollTable | (1UL << 63));
        a.Str(X(3), X(2), GitsBaser1);
        a.MovImm(X(3), 1);
        a.Str(W(3), X(2), GitsCtlr);
        a.MovImm(X(3), (ulong)commands * 32);
        a.Str(X(3), X(2), GitsCwriter);
        a.Ldr(X(19), X(2), GitsCreadr);
        EnableCpuInterface(a, group0: false, group1: true);
    }

    /// <summary>IRQ handler: x20 = ICC_IAR1_EL1 (the LPI), EOI it, x21 = ICC_IAR1_EL1 again (1023), done.</summary>
    private static void IrqHandler(A64Assembler a)
    {
        a.Mrs(X(20), IccIar1);
        a.Msr(IccEoir1, X(20));
        a.Mrs(X(21), IccIar1);
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
    }

    private static void Fail(A64Assembler a) => Arm64Guest.Ucall(a, Arm64Guest.UcallFail);

    /// <summary>Clears PSTATE.I and waits in WFI: the LPI's <see cref="IrqHandler"/> ends the run, a wake-up without it fails.</summary>
    private static void WaitForLpi(A64Assembler a)
    {
        a.MsrDaif(set: false, 2);
        a.Wfi();
        Fail(a);
    }

    private static Errno Fails(Action action) => Assert.Throws<KvmException>(action).Errno;

    /// <summary>Runs vCPU 0 to its done ucall and asserts its IRQ handler took the test LPI (X20 = the acknowledged INTID).</summary>
    private static void RunToLpi(ItsVm s)
    {
        s.Vm.RunToDone(0);
        Assert.Equal((ulong)Lpi, s.Vm.Vcpus[0].GetX(20));
    }

    private static void RunToSync(Arm64VgicGuestVm s)
    {
        var exit = s.Vcpus[0].RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal((ulong)UcallSync, BitConverter.ToUInt64(exit.MmioData));
    }

    [Fact]
    public void The_its_device_takes_one_aligned_address_and_answers_has_attr_as_vgic_its_has_attr()
    {
        using var s = new ItsVm(Fail, createIts: false);
        var vm = s.Vm.Vm;
        // arm.c KVM_CAP_MSI_DEVID: kvm->arch.vgic.msis_require_devid, set by vgic_its_create.
        Assert.Equal(0, vm.CheckExtension(KvmCaps.KVM_CAP_MSI_DEVID));
        using var its = vm.CreateDevice(KvmDeviceType.ArmVgicIts);
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_MSI_DEVID));
        // vgic_its_has_attr.
        Assert.True(its.HasAttribute(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE));
        Assert.False(its.HasAttribute(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST));
        foreach (var c in new[] { KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_ITS_CTRL_RESET, KVM_DEV_ARM_ITS_SAVE_TABLES, KVM_DEV_ARM_ITS_RESTORE_TABLES })
            Assert.True(its.HasAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, c));
        Assert.False(its.HasAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES));
        Assert.True(its.HasAttribute(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsBaser0 + 8));
        Assert.False(its.HasAttribute(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, 0x200));         // no register: ENXIO
        Assert.False(its.HasAttribute(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0));
        // vgic_its_attr_regs_access: no address yet → ENXIO; vgic_its_has_attr_regs: a 64-bit register at a 4-byte
        // offset → EINVAL.
        Assert.Equal(Errno.ENXIO, Fails(() => its.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsTyper)));
        Assert.Equal(Errno.EINVAL, Fails(() => its.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsCbaser + 4)));
        // The address: VGIC_ADDR_UNDEF until set; vgic_check_iorange EINVAL misaligned, E2BIG beyond the IPA space;
        // another type → ENODEV; once set → EEXIST.
        Assert.Equal(ulong.MaxValue, its.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE));
        Assert.Equal(Errno.EINVAL, Fails(() => its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ItsBase + 0x1000)));
        Assert.Equal(Errno.E2BIG, Fails(() => its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, 1UL << 48)));
        Assert.Equal(Errno.ENODEV, Fails(() => its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, ItsBase)));
        its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ItsBase);
        Assert.Equal(ItsBase, its.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE));
        Assert.Equal(Errno.EEXIST, Fails(() => its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, ItsBase + 0x40000)));
        // vgic_its_ctrl: INIT does nothing; an unknown control attribute falls through the switch: 0.
        its.SetAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
        its.SetAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, 42);
        Assert.Equal(Errno.ENXIO, Fails(() => its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 0)));
    }

    [Fact]
    public void Its_registers_read_as_vgic_its_c_makes_them_and_userspace_writes_follow_the_uaccess_rules()
    {
        using var s = new ItsVm(Fail);
        var its = s.Its!;
        ulong Get(int off) => its.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, (ulong)off);
        void Set(int off, ulong v) => its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, (ulong)off, v);
        // vgic_mmio_read_its_iidr: PRODUCT_ID_KVM << 24 | IMPLEMENTER_ARM, ABI revision 0.
        Assert.Equal(0x4b00_043bUL, Get(GitsIidr));
        // vgic_mmio_read_its_typer: PLPIS, ITT_entry_size 8 → 7, IDbits 16 → 15, Devbits 16 → 15.
        Assert.Equal(0x1ef71UL, Get(GitsTyper));
        // vgic_its_create: INITIAL_BASER_VALUE (inner RaWb, InnerShareable, 64K pages) | type, entry size 8.
        Assert.Equal((3UL << 59) | (1UL << 56) | (7UL << 48) | (1UL << 10) | (2UL << 8), Get(GitsBaser0));
        Assert.Equal((3UL << 59) | (4UL << 56) | (7UL << 48) | (1UL << 10) | (2UL << 8), Get(GitsBaser1));
        Assert.Equal(0UL, Get(GitsBaser0 + 16));                                     // BASER2..7 RAZ
        Assert.Equal(1UL << 31, Get(GitsCtlr));                                       // quiescent, disabled
        // vgic_mmio_write_its_baser: Type / Entry_Size read-only, page size forced to 64K, Indirect dropped for the
        // collection table.
        Set(GitsBaser1, CollTable | (1UL << 63) | (1UL << 62) | (0x1fUL << 48) | 2);
        Assert.Equal(CollTable | (1UL << 63) | (3UL << 59) | (4UL << 56) | (7UL << 48) | (2UL << 8) | 2, Get(GitsBaser1));
        // vgic_mmio_uaccess_write_its_iidr: revision ≥ NR_ITS_ABIS → EINVAL.
        Assert.Equal(Errno.EINVAL, Fails(() => Set(GitsIidr, 1u << 12)));
        Set(GitsIidr, 0);
        // vgic_sanitise_its_cbaser drops bits 15:12 of the address; vgic_mmio_uaccess_write_its_creadr: beyond the
        // buffer (one 4K page) → EINVAL; while enabled → EBUSY.
        Set(GitsCbaser, Cmdq | 0xf000 | (1UL << 63));
        Assert.Equal(Cmdq | (1UL << 63) | (3UL << 59), Get(GitsCbaser));
        Assert.Equal(Errno.EINVAL, Fails(() => Set(GitsCreadr, 0x1000)));
        Set(GitsCreadr, 0x40);
        Assert.Equal(0x40UL, Get(GitsCreadr));
        Set(GitsBaser0, DevTable | (1UL << 63));
        Set(GitsCtlr, 1);
        Assert.Equal(1UL, Get(GitsCtlr) & 1);
        Assert.Equal(Errno.EBUSY, Fails(() => Set(GitsCreadr, 0)));
    }

    [Fact]
    public void Signal_msi_needs_an_its_a_device_id_and_an_its_doorbell()
    {
        using (var noIts = new ItsVm(Fail, createIts: false))
        {
            // kvm_set_msi: "if (!vgic_has_its(kvm)) return -ENODEV".
            Assert.Equal(Errno.ENODEV, Fails(() => noIts.Vm.Vm.SignalMsi(Translater, 0, 1)));
        }
        using var s = new ItsVm(Fail);
        // vgic_msi_to_its: no KVM_MSI_VALID_DEVID → EINVAL; an address outside every ITS frame → EINVAL.
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.Vm.SignalMsi(Translater, EventId)));
        Assert.Equal(Errno.EINVAL, Fails(() => s.Vm.Vm.SignalMsi(Dist, EventId, DevId)));
        // vgic_its_resolve_lpi: a disabled ITS → -EBUSY.
        Assert.Equal(Errno.EBUSY, Fails(() => s.Vm.Vm.SignalMsi(Translater, EventId, DevId)));
    }

    [Fact]
    public void A_guest_maps_a_device_event_to_an_lpi_and_takes_it_from_kvm_signal_msi()
    {
        using var s = new ItsVm(a =>
        {
            SetUp(a, MapEvent.Length);
            a.MsrDaif(set: false, 2);                   // clear I
            Arm64Guest.Ucall(a, UcallSync);
            a.Wfi();
            Fail(a);
        }, irq: IrqHandler);
        s.Commands(MapEvent);
        RunToSync(s.Vm);
        var v = s.Vm.Vcpus[0];
        Assert.Equal((ulong)MapEvent.Length * 32, v.GetX(19));              // every command consumed
        Assert.Equal(1UL, v.GetX(23) & 1);                                  // GICR_CTLR.EnableLPIs
        // vgic_its_inject_msi: delivered → 1; an unmapped event → 0 ("the guest has blocked the MSI").
        Assert.Equal(0, s.Vm.Vm.SignalMsi(Translater, EventId + 1, DevId));
        Assert.Equal(1, s.Vm.Vm.SignalMsi(Translater, EventId, DevId));
        s.Vm.RunToDone(0);
        Assert.Equal((ulong)Lpi, v.GetX(20));
        Assert.Equal(1023UL, v.GetX(21));
        // The redistributor advertises LPIs (GICR_TYPER.PLPIS) and the distributor 16 ID bits and LPIS.
        Assert.Equal(1u, s.Vm.Gic.GetRedistributorRegister(0, 0x8) & 1);
        uint typer = s.Vm.Gic.GetDistributorRegister(0x4);
        Assert.Equal(15u, (typer >> 19) & 0x1f);
        Assert.Equal(1u, (typer >> 17) & 1);
    }

    [Fact]
    public void The_int_command_raises_the_lpi_and_a_guest_write_to_gits_translater_is_ignored()
    {
        using var s = new ItsVm(a =>
        {
            SetUp(a, MapEvent.Length);
            // its_registers has no GITS_TRANSLATER: the write reaches no register.
            a.MovImm(X(2), Translater);
            a.MovImm(X(3), EventId);
            a.Str(W(3), X(2), 0);
            a.Mrs(X(22), IccHppir1);                    // nothing pending
            // INT device 1 event 2: the next command in the queue.
            a.MovImm(X(2), ItsBase);
            a.MovImm(X(3), (ulong)(MapEvent.Length + 1) * 32);
            a.Str(X(3), X(2), GitsCwriter);
            WaitForLpi(a);
        }, irq: IrqHandler);
        s.Commands([.. MapEvent, Int(DevId, EventId)]);
        s.Vm.RunToDone(0);
        var v = s.Vm.Vcpus[0];
        Assert.Equal(1023UL, v.GetX(22));
        Assert.Equal((ulong)Lpi, v.GetX(20));
    }

    [Fact]
    public void A_bad_command_is_skipped_creadr_moves_on_and_the_event_stays_unmapped()
    {
        using var s = new ItsVm(a =>
        {
            SetUp(a, 5);
            Arm64Guest.Ucall(a, UcallSync);
            Fail(a);
        });
        // MAPTI before MAPD (E_ITS_MAPTI_UNMAPPED_DEVICE), MAPC to a vCPU that does not exist (E_ITS_MAPC_PROCNUM_OOR),
        // an LPI beyond PROPBASER.IDbits (E_ITS_MAPTI_PHYSICALID_OOR), DISCARD of nothing: vgic_its_process_commands
        // ignores the answers and advances CREADR over each.
        s.Commands(Mapti(DevId, EventId, Lpi, 0), Mapc(0, 5), Mapd(DevId, Itt, 4), Mapti(DevId, EventId, 1u << 14, 0),
            Discard(DevId, EventId));
        RunToSync(s.Vm);
        Assert.Equal(5UL * 32, s.Vm.Vcpus[0].GetX(19));
        Assert.Equal(0, s.Vm.Vm.SignalMsi(Translater, EventId, DevId));
        Assert.Equal(5UL * 32, s.Its!.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsCwriter));
        // vgic_mmio_write_its_cwriter: an offset beyond the buffer is ignored.
        s.Its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsCwriter, 0x1000);
        Assert.Equal(5UL * 32, s.Its.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsCwriter));
    }

    [Fact]
    public void The_tables_survive_save_reset_and_restore()
    {
        using var s = new ItsVm(a =>
        {
            SetUp(a, MapEvent.Length);
            Arm64Guest.Ucall(a, UcallSync);
            WaitForLpi(a);
        }, irq: IrqHandler);
        s.Commands(MapEvent);
        RunToSync(s.Vm);
        var its = s.Its!;
        its.SetAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_SAVE_TABLES);
        // ABI v0: the DTE (Valid, ITT_addr >> 8 at bit 5, Size - 1), the ITE (pINTID at 16, ICID 0), the CTE (Valid,
        // RDbase 0, ICID 0) followed by an invalid one.
        Assert.Equal((1UL << 63) | ((Itt >> 8) << 5) | 3, s.Mem.Read<ulong>(DevTable - Tables + DevId * 8));
        Assert.Equal((ulong)Lpi << 16, s.Mem.Read<ulong>(Itt - Tables + EventId * 8));
        Assert.Equal(1UL << 63, s.Mem.Read<ulong>(CollTable - Tables));
        Assert.Equal(0UL, s.Mem.Read<ulong>(CollTable - Tables + 8));
        // vgic_its_reset: registers back, mappings gone.
        its.SetAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_CTRL_RESET);
        Assert.Equal(0UL, its.GetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsCbaser));
        // The VMM's restore order: BASERs, CBASER, RESTORE_TABLES, then GITS_CTLR.
        its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsBaser0, DevTable | (1UL << 63));
        its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsBaser1, CollTable | (1UL << 63));
        its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsCbaser, Cmdq | (1UL << 63));
        Assert.Equal(Errno.EBUSY, Fails(() => s.Vm.Vm.SignalMsi(Translater, EventId, DevId)));
        its.SetAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES);
        its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsCtlr, 1);
        Assert.Equal(1, s.Vm.Vm.SignalMsi(Translater, EventId, DevId));
        RunToLpi(s);
    }

    [Fact]
    public void Movi_movall_and_mapc_retarget_the_lpi_and_a_target_without_lpis_refuses_the_msi()
    {
        using var s = new ItsVm(a =>
        {
            SetUp(a, 0);                                // only vCPU 0's redistributor enables LPIs
            Arm64Guest.Ucall(a, UcallSync);
            WaitForLpi(a);
        }, irq: IrqHandler, vcpus: 2);
        RunToSync(s.Vm);
        Queue(s, 0, [.. MapEvent, Mapc(1, 1), Movi(DevId, EventId, 1)]);
        // vgic_its_resolve_lpi: the collection's vCPU (1) has LPIs disabled → -EBUSY.
        Assert.Equal(Errno.EBUSY, Fails(() => s.Vm.Vm.SignalMsi(Translater, EventId, DevId)));
        // MOVI to an unmapped collection is refused (E_ITS_MOVI_UNMAPPED_COLLECTION). MOVALL 1 → 0 moves the LPI's
        // target_vcpu only: vgic_its_resolve_lpi goes through the ITE's collection, still on vCPU 1 → -EBUSY.
        Queue(s, MapEvent.Length + 2, Movi(DevId, EventId, 7), Movall(1, 0));
        Assert.Equal(Errno.EBUSY, Fails(() => s.Vm.Vm.SignalMsi(Translater, EventId, DevId)));
        // MAPC retargets collection 1 to vCPU 0 (update_affinity_collection).
        Queue(s, MapEvent.Length + 4, Mapc(1, 0));
        Assert.Equal(1, s.Vm.Vm.SignalMsi(Translater, EventId, DevId));
        RunToLpi(s);
    }

    [Fact]
    public void Clear_drops_the_pending_lpi_and_an_irqfd_msi_route_with_a_devid_raises_it()
    {
        using var s = new ItsVm(a =>
        {
            SetUp(a, MapEvent.Length);
            Arm64Guest.Ucall(a, UcallSync);
            a.Mrs(X(22), IccHppir1);                    // after CLEAR: nothing
            Arm64Guest.Ucall(a, UcallSync);
            WaitForLpi(a);
        }, irq: IrqHandler);
        s.Commands(MapEvent);
        RunToSync(s.Vm);
        Assert.Equal(1, s.Vm.Vm.SignalMsi(Translater, EventId, DevId));
        Queue(s, MapEvent.Length, Clear(DevId, EventId));
        RunToSync(s.Vm);
        Assert.Equal(1023UL, s.Vm.Vcpus[0].GetX(22));
        // kvm_set_routing_entry keeps the MSI route's flags and devid; irqfd_inject → kvm_set_msi → vgic_its_inject_msi.
        s.Vm.Vm.SetGsiRouting([GsiRoute.ToMsi(5, Translater, EventId, DevId)]);
        using var efd = s.Vm.Kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var reg = s.Vm.Vm.AssignIrqFd(efd, 5);
        efd.Signal();
        RunToLpi(s);
    }

    [Fact]
    public void The_guest_reads_the_its_frame_and_a_restore_with_a_bad_collection_entry_fails()
    {
        using var s = new ItsVm(a =>
        {
            a.MovImm(X(2), ItsBase);
            a.Ldr(X(19), X(2), GitsTyper);              // a 64-bit access
            a.Ldr(W(20), X(2), GitsIidr);
            a.Ldr(X(22), X(2), GitsCtlr);               // a 64-bit access to a 32-bit register: no register, 0
            a.MovImm(X(2), ItsBase + 0xffe8);
            a.Ldr(W(21), X(2), 0);                      // GITS_PIDR2
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        s.Vm.RunToDone(0);
        var v = s.Vm.Vcpus[0];
        Assert.Equal(0x1ef71UL, v.GetX(19));
        Assert.Equal(0x4b00_043bUL, v.GetX(20));
        Assert.Equal(0x3bUL, v.GetX(21));                                   // GIC_PIDR2_ARCH_GICv3 | 0x0b
        Assert.Equal(0UL, v.GetX(22));
        // vgic_its_restore_cte: a target beyond the online vCPUs → EINVAL.
        var its = s.Its!;
        its.SetAttribute64(KVM_DEV_ARM_VGIC_GRP_ITS_REGS, GitsBaser1, CollTable | (1UL << 63));
        s.Mem.Write(CollTable - Tables, (1UL << 63) | (5UL << 16) | 3);
        Assert.Equal(Errno.EINVAL, Fails(() => its.SetAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_RESTORE_TABLES)));
    }

    [Fact]
    public void An_its_without_a_vgic_exists_but_signal_msi_needs_the_in_kernel_irqchip()
    {
        using var t = new Arm64TestVm(Fail);
        t.AddVcpu();
        // kvm_register_vgic_device registers the ITS ops with the GICv3's; kvm_send_userspace_msi:
        // "!kvm_arch_irqchip_in_kernel(kvm)" → EINVAL.
        using var its = t.Vm.CreateVgicIts(ItsBase);
        Assert.Equal(Errno.EINVAL, Fails(() => t.Vm.SignalMsi(Translater, EventId, DevId)));
    }

    [Fact]
    public void A_disabled_lpi_waits_for_inv_and_save_pending_tables_records_it()
    {
        using var s = new ItsVm(a =>
        {
            SetUp(a, MapEvent.Length);
            Arm64Guest.Ucall(a, UcallSync);
            a.Mrs(X(22), IccHppir1);                    // disabled in the configuration table: not a candidate
            // Enable it in memory, then GICR_INVLPIR makes the redistributor reread the byte.
            a.MovImm(X(2), Prop + (Lpi - 8192));
            a.MovImm(X(3), 0xa1);
            a.Strb(W(3), X(2), 0);
            a.MovImm(X(2), Redist);
            a.MovImm(X(3), Lpi);
            a.Str(X(3), X(2), 0xa0);
            a.Mrs(X(24), IccHppir1);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        s.Mem.Write(Prop - Tables + (Lpi - 8192), (byte)0xa0);
        s.Commands(MapEvent);
        RunToSync(s.Vm);
        Assert.Equal(1, s.Vm.Vm.SignalMsi(Translater, EventId, DevId));
        // vgic_v3_save_pending_tables: the pending LPI's bit in vCPU 0's pending table.
        s.Vm.Gic.SetAttribute(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES);
        Assert.Equal((byte)(1 << (int)(Lpi % 8)), s.Mem.Read<byte>(Pend - Tables + Lpi / 8));
        s.Vm.RunToDone(0);
        var v = s.Vm.Vcpus[0];
        Assert.Equal(1023UL, v.GetX(22));
        Assert.Equal((ulong)Lpi, v.GetX(24));
    }
}
