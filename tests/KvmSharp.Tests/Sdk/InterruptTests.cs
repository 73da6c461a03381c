// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Vcpu.Interrupts.cs (KVM_INTERRUPT, KVM_NMI, the kvm_run interrupt fields) on every kernel: what the SDK sends, what
/// it reads back, and its typed errors. The kernel's rules are conformance cases
/// (KvmSharp.Conformance/Cases/InterruptInjection.cs).
/// </summary>
public class InterruptTests : KernelTest
{
    /// <summary>Keeps the request, argument bytes and value of every interrupt ioctl that passes through.</summary>
    private sealed class Recorder(IKernel inner) : DelegatingKernel(inner)
    {
        public List<(uint Request, byte[] Arg)> Calls { get; } = [];

        public List<(uint Request, ulong Value)> ValueCalls { get; } = [];

        public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
        {
            long rc = base.Ioctl(fd, request, arg);
            if (request == KvmIoctls.KVM_INTERRUPT) Calls.Add((request, arg.ToArray()));
            return rc;
        }

        public override long Ioctl(KernelFd fd, uint request, ulong arg)
        {
            long rc = base.Ioctl(fd, request, arg);
            if (request == KvmIoctls.KVM_NMI) ValueCalls.Add((request, arg));
            return rc;
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Inject_interrupt_sends_a_four_byte_kvm_interrupt_and_inject_nmi_no_argument(string kernel)
    {
        using var inner = Open(kernel);
        var recorder = new Recorder(inner.Kernel);
        using var kvm = Kvm.Open(recorder);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.InjectInterrupt(0xfe);
        vcpu.InjectNmi();
        var (request, arg) = Assert.Single(recorder.Calls);
        Assert.Equal(4, arg.Length);
        Assert.Equal(0xfeu, BinaryPrimitives.ReadUInt32LittleEndian(arg));
        Assert.Equal([(KvmIoctls.KVM_NMI, 0UL)], recorder.ValueCalls);
        var events = vcpu.GetEvents();
        Assert.Equal((1, 0xfe, 1), (events.interrupt_injected, events.interrupt_nr, events.nmi_pending));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Run_page_interrupt_fields_are_read_and_written_in_place(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.False(vcpu.RequestInterruptWindow);
        Assert.False(vcpu.ReadyForInterruptInjection);
        vcpu.RequestInterruptWindow = true;
        Assert.True(vcpu.RequestInterruptWindow);
        vcpu.Cr8 = 7;

        // Nothing runs (immediate_exit), but KVM_RUN writes if_flag, ready_for_interrupt_injection, cr8, apic_base.
        var regs = vcpu.GetRegs();
        regs.rflags = 0x202;
        vcpu.SetRegs(regs);
        vcpu.ImmediateExit = true;
        var exit = vcpu.Run();
        Assert.True(exit.Interrupted);
        Assert.True(exit.InterruptFlag && exit.ReadyForInterruptInjection);
        Assert.True(vcpu.InterruptFlag && vcpu.ReadyForInterruptInjection);
        Assert.Equal(7UL, vcpu.Cr8);
        Assert.Equal(7UL, vcpu.GetSregs().cr8);
        Assert.Equal(vcpu.GetSregs().apic_base, vcpu.ApicBase);
        Assert.True(vcpu.RequestInterruptWindow);

        vcpu.InjectInterrupt(0x20);
        vcpu.Run();
        Assert.False(vcpu.ReadyForInterruptInjection);
        Assert.True(vcpu.InterruptFlag);

        vcpu.Cr8 = 16; // above 15: KVM_RUN refuses it (x86.c kvm_set_cr8)
        var e = AssertErrno(Errno.EINVAL, () => vcpu.Run());
        Assert.Equal("KVM_RUN", e.Operation);
    }

    [Fact]
    public void On_arm64_interrupt_injection_is_a_kvm_exception_with_the_request()
    {
        // arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl: no KVM_INTERRUPT or KVM_NMI, an unknown request is EINVAL.
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(2);
        var irq = AssertErrno(Errno.EINVAL, () => vcpu.InjectInterrupt(0x21));
        Assert.Equal("KVM_INTERRUPT", irq.Operation);
        Assert.Contains("vcpu=2 irq=0x21", irq.Message, StringComparison.Ordinal);
        var nmi = AssertErrno(Errno.EINVAL, () => vcpu.InjectNmi());
        Assert.Equal(("KVM_NMI", "vcpu=2"), (nmi.Operation, nmi.Request));
    }
}
