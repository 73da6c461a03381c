// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Vm.Irqchip.cs, Vcpu.Lapic.cs and irqfd with an irqchip on every kernel: the bytes the SDK sends, what it decodes,
/// its typed errors. The kernel's rules are conformance cases (KvmSharp.Conformance/Cases/IrqchipRules.cs).
/// </summary>
public class IrqchipTests : KernelTest
{
    /// <summary>Keeps the argument bytes of the irqchip ioctls that pass through.</summary>
    private sealed class Recorder(IKernel inner) : DelegatingKernel(inner)
    {
        public List<(uint Request, byte[] Arg)> Calls { get; } = [];

        public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
        {
            long rc = base.Ioctl(fd, request, arg);
            if (request == KvmIoctls.KVM_SET_GSI_ROUTING || request == KvmIoctls.KVM_SIGNAL_MSI || request == KvmIoctls.KVM_IRQ_LINE_STATUS)
                Calls.Add((request, arg.ToArray()));
            return rc;
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Create_irqchip_sets_the_mode_and_a_second_one_is_a_typed_eexist(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.Equal(IrqchipMode.None, vm.Irqchip);
        vm.CreateIrqchip();
        Assert.Equal(IrqchipMode.Full, vm.Irqchip);
        var ex = AssertErrno(Errno.EEXIST, vm.CreateIrqchip);
        Assert.Equal("KVM_CREATE_IRQCHIP", ex.Operation);
        ex = AssertErrno(Errno.EEXIST, () => vm.EnableSplitIrqchip(24));
        Assert.Contains("KVM_CAP_SPLIT_IRQCHIP", ex.Request, StringComparison.Ordinal);
        Assert.Equal(IrqchipMode.Full, vm.Irqchip);
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.EnableSplitIrqchip(-1));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Set_gsi_routing_writes_the_header_and_48_byte_entries(string kernel)
    {
        using var inner = Open(kernel);
        var recorder = new Recorder(inner.Kernel);
        using var kvm = Kvm.Open(recorder);
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        vm.SetGsiRouting([GsiRoute.ToIrqchip(3, IrqchipId.PicSlave, 2), GsiRoute.ToMsi(9, 0x1_fee0_1000, 0x41, devid: 7)]);
        var (_, arg) = Assert.Single(recorder.Calls);
        Assert.Equal(8 + 2 * 48, arg.Length);
        uint U(int at) => BinaryPrimitives.ReadUInt32LittleEndian(arg.AsSpan(at));
        Assert.Equal((2u, 0u), (U(0), U(4)));
        Assert.Equal((3u, KvmConstants.KVM_IRQ_ROUTING_IRQCHIP, 0u, KvmConstants.KVM_IRQCHIP_PIC_SLAVE, 2u), (U(8), U(12), U(16), U(24), U(28)));
        Assert.Equal((9u, KvmConstants.KVM_IRQ_ROUTING_MSI, KvmConstants.KVM_MSI_VALID_DEVID), (U(56), U(60), U(64)));
        Assert.Equal((0xfee01000u, 1u, 0x41u, 7u), (U(72), U(76), U(80), U(84)));
        var ex = AssertErrno(Errno.EINVAL, () => vm.SetGsiRouting([GsiRoute.ToIrqchip(1, IrqchipId.Ioapic, 24)]));
        Assert.Equal("KVM_SET_GSI_ROUTING", ex.Operation);
        Assert.Contains("nr=1", ex.Request, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Irq_line_returns_the_status_and_the_chip_states_decode(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        Assert.Equal(1, vm.SetIrqLine(1, true));
        Assert.Equal(2, vm.SetIrqLine(1, false));
        Assert.Equal(-1, vm.SetIrqLine(20, true));
        var master = vm.GetPicState(IrqchipId.PicMaster);
        Assert.Equal((byte)0x02, master.Irr);
        Assert.Equal((byte)0, master.Imr);
        var io = vm.GetIoapicState();
        Assert.Equal(1u << 20, io.Irr);
        Assert.True(io.Redirection(20).Masked);
        Assert.Throws<ArgumentOutOfRangeException>(() => io.Redirection(24));
        Assert.Throws<ArgumentException>(() => vm.GetPicState(IrqchipId.Ioapic));
        var pic = master.State;
        pic.imr = 0xfb;
        vm.SetPicState(IrqchipId.PicMaster, new PicState(pic));
        Assert.Equal((byte)0xfb, vm.GetPicState(IrqchipId.PicMaster).Imr);
        // PIC pin 0 is masked now, and so is IOAPIC pin 0 (as after reset): no route takes GSI 0.
        Assert.Equal(-1, vm.SetIrqLine(0, true));
        var ex = AssertErrno(Errno.EINVAL, () => vm.GetIrqchipRaw((IrqchipId)3));
        Assert.Contains("chip_id=3", ex.Request, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Lapic_state_round_trips_and_signal_msi_returns_the_kernels_count(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.EnableSplitIrqchip(24);
        Assert.Equal(-1, vm.SignalMsi(0xfee00000, 0x30));
        using var vcpu = vm.CreateVcpu();
        var lapic = vcpu.GetLapic();
        Assert.Equal((0, 0x50014u, 0xffu), (lapic.Id, lapic.Version, lapic.Svr));
        Assert.Equal(0x700u, lapic.Lvt(3));
        Assert.Equal(0, vm.SignalMsi(0xfee00000, 0x30));
        lapic.SoftwareEnabled = true;
        lapic.Tpr = 0x10;
        vcpu.SetLapic(lapic);
        Assert.Equal(1, vm.SignalMsi(0xfee00000, 0x30, devid: 1));
        var back = vcpu.GetLapic();
        Assert.True(back.IsRequested(0x30));
        Assert.False(back.IsInService(0x30));
        Assert.Equal(0x10u, back.Ppr);
        Assert.Throws<ArgumentOutOfRangeException>(() => back[0x21]);
        Assert.Throws<ArgumentException>(() => new LapicState(new byte[16]));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Irqfd_is_accepted_with_an_irqchip_and_a_resampler_needs_the_full_one(string kernel)
    {
        using var kvm = Open(kernel);
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var resample = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using (var vm = kvm.CreateVm())
        {
            vm.CreateIrqchip();
            using (vm.AssignIrqFd(e, 5, resample))
            {
                var busy = AssertErrno(Errno.EBUSY, () => vm.AssignIrqFd(e, 6));
                Assert.IsNotType<IrqchipRequiredException>(busy);
            }
            using var again = vm.AssignIrqFd(e, 6);
        }
        using (var vm = kvm.CreateVm())
        {
            vm.EnableSplitIrqchip(24);
            using var plain = vm.AssignIrqFd(e, 5);
            var ex = Assert.Throws<IrqchipRequiredException>(() => vm.AssignIrqFd(resample, 6, e));
            Assert.Equal(Errno.EINVAL, ex.Errno);
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Lapic_without_an_irqchip_is_einval_and_msi_einval(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var ex = AssertErrno(Errno.EINVAL, () => vcpu.GetLapic());
        Assert.Equal("KVM_GET_LAPIC", ex.Operation);
        ex = AssertErrno(Errno.EINVAL, () => vm.SignalMsi(0xfee00000, 0x30));
        Assert.Equal("KVM_SIGNAL_MSI", ex.Operation);
        AssertErrno(Errno.ENXIO, () => vm.GetIoapicState());
    }
}
