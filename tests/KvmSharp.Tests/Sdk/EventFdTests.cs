// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Kernel.Tracing;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// EventFd, Vm.RegisterIoEventFd / IoEventFdRegistration and Vm.AssignIrqFd on every kernel: what the SDK sends, its
/// typed refusals and what it leaves open. The kernel's rules are conformance cases (Cases/IoEventFdRules.cs,
/// Cases/EventFdFileRules.cs).
/// </summary>
public class EventFdTests : KernelTest
{
    /// <summary>Keeps the argument bytes of every KVM_IOEVENTFD / KVM_IRQFD that passes through, with its result.</summary>
    private sealed class Recorder(IKernel inner) : DelegatingKernel(inner)
    {
        public List<(uint Request, byte[] Arg, long Rc)> Calls { get; } = [];

        public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
        {
            long rc = base.Ioctl(fd, request, arg);
            if (request == KvmIoctls.KVM_IOEVENTFD || request == KvmIoctls.KVM_IRQFD) Calls.Add((request, arg.ToArray(), rc));
            return rc;
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Signal_add_and_read_move_the_counter(string kernel)
    {
        using var kvm = Open(kernel);
        using var e = kvm.CreateEventFd(2, EventFdOptions.NonBlocking);
        e.Signal();
        e.Add(10);
        Assert.Equal(13UL, e.Read());
        Assert.False(e.TryRead(out ulong none));
        Assert.Equal(0UL, none);
        e.Add(ulong.MaxValue - 1);
        Assert.False(e.TryAdd(1));
        var ex = AssertErrno(Errno.EAGAIN, () => e.Signal());
        Assert.Equal("write(eventfd)", ex.Operation);
        AssertErrno(Errno.EINVAL, () => e.Add(ulong.MaxValue));
        Assert.True(e.TryRead(out ulong all));
        Assert.Equal(ulong.MaxValue - 1, all);

        using var sem = kvm.CreateEventFd(2, EventFdOptions.Semaphore | EventFdOptions.NonBlocking);
        Assert.Equal([1UL, 1UL], new[] { sem.Read(), sem.Read() });
        AssertErrno(Errno.EAGAIN, () => sem.Read());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void TryRead_needs_a_non_blocking_eventfd_and_unknown_options_are_einval(string kernel)
    {
        using var kvm = Open(kernel);
        using var e = kvm.CreateEventFd();
        Assert.Throws<InvalidOperationException>(() => e.TryRead(out _));
        var ex = AssertErrno(Errno.EINVAL, () => kvm.CreateEventFd(0, (EventFdOptions)2));
        Assert.Equal("eventfd2", ex.Operation);
        Assert.Contains("flags=0x2", ex.Request, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Register_sends_the_kvm_ioeventfd_and_dispose_deassigns_the_same(string kernel)
    {
        using var inner = Open(kernel);
        var recorder = new Recorder(inner.Kernel);
        using var kvm = Kvm.Open(recorder);
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        var registration = vm.RegisterIoEventFd(e, IoEventFdSpace.Pio, 0x64, 2, datamatch: 0xbeef);
        Assert.True(registration.IsRegistered);
        registration.Dispose();
        Assert.False(registration.IsRegistered);
        registration.Dispose();
        Assert.Equal(2, recorder.Calls.Count);
        foreach (var (call, deassign) in recorder.Calls.Zip([false, true]))
        {
            Assert.Equal(KvmIoctls.KVM_IOEVENTFD, call.Request);
            Assert.Equal(64, call.Arg.Length);
            Assert.Equal(0, call.Rc);
            var b = call.Arg.AsSpan();
            Assert.Equal(0xbeefUL, BinaryPrimitives.ReadUInt64LittleEndian(b));
            Assert.Equal(0x64UL, BinaryPrimitives.ReadUInt64LittleEndian(b[8..]));
            Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(b[16..]));
            Assert.Equal(e.Handle.Number, BinaryPrimitives.ReadInt32LittleEndian(b[20..]));
            Assert.Equal(KvmConstants.KVM_IOEVENTFD_FLAG_PIO | KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH | (deassign ? KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
                BinaryPrimitives.ReadUInt32LittleEndian(b[24..]));
        }
        // Deassigned for real: the same registration can be made again.
        using var again = vm.RegisterIoEventFd(e, IoEventFdSpace.Pio, 0x64, 2, datamatch: 0xbeef);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Refusals_are_kvm_exceptions_with_the_values_asked(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        var ex = AssertErrno(Errno.EINVAL, () => vm.RegisterIoEventFd(e, IoEventFdSpace.Mmio, 0xd000_0000, 3));
        Assert.Equal("KVM_IOEVENTFD", ex.Operation);
        Assert.Contains("assign mmio addr=0xD0000000 len=3", ex.Request, StringComparison.Ordinal);
        ex = AssertErrno(Errno.EINVAL, () => vm.RegisterIoEventFd(e, IoEventFdSpace.Mmio, 0xd000_0000, 0, datamatch: 1));
        Assert.Contains("datamatch=0x1", ex.Request, StringComparison.Ordinal);
        using var first = vm.RegisterIoEventFd(e, IoEventFdSpace.Mmio, 0xd000_0000, 4);
        ex = AssertErrno(Errno.EEXIST, () => vm.RegisterIoEventFd(e, IoEventFdSpace.Mmio, 0xd000_0000, 4, datamatch: 9));
        Assert.Contains("EEXIST", ex.Message, StringComparison.Ordinal);
        first.Unregister();
        Assert.False(first.IsRegistered);
        first.Unregister(); // nothing left to do

        // Removed behind the registration's back (a raw DEASSIGN): Unregister reports the kernel's ENOENT.
        var second = vm.RegisterIoEventFd(e, IoEventFdSpace.Mmio, 0xd000_0000, 4);
        var raw = new kvm_ioeventfd { addr = 0xd000_0000, len = 4, fd = e.Handle.Number, flags = KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN };
        Assert.Equal(0, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_IOEVENTFD, KvmCall.Bytes(ref raw)));
        ex = AssertErrno(Errno.ENOENT, second.Unregister);
        Assert.Contains("deassign mmio addr=0xD0000000 len=4", ex.Request, StringComparison.Ordinal);
        second.Dispose();
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Assign_irqfd_without_an_irqchip_is_a_typed_refusal_and_deassign_succeeds(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var resample = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        var ex = Assert.Throws<IrqchipRequiredException>(() => vm.AssignIrqFd(e, 5));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal("KVM_IRQFD", ex.Operation);
        Assert.Contains("in-kernel irqchip", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"assign fd={e.Handle.Number} gsi=5", ex.Request, StringComparison.Ordinal);
        ex = Assert.Throws<IrqchipRequiredException>(() => vm.AssignIrqFd(e, 5, resample));
        Assert.Contains($"resamplefd={resample.Handle.Number}", ex.Request, StringComparison.Ordinal);
        vm.DeassignIrqFd(e, 5);
        e.Dispose();
        // A descriptor that is not an eventfd: the kernel's EINVAL from eventfd_ctx_fdget, as a KvmException.
        var raw = new kvm_irqfd { fd = (uint)kvm.Handle.Number, flags = KvmConstants.KVM_IRQFD_FLAG_DEASSIGN };
        Assert.Equal(-(long)Errno.EINVAL, vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_IRQFD, KvmCall.Bytes(ref raw)));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_registration_whose_eventfd_is_closed_stays_with_the_vm_and_dispose_does_nothing(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        using var registration = vm.RegisterIoEventFd(e, IoEventFdSpace.Pio, 0x80, 1);
        e.Dispose();
        Assert.Throws<ObjectDisposedException>(registration.Unregister);
        registration.Dispose();
        Assert.True(registration.IsRegistered, "the kernel still holds it: nothing could deassign it");
        using var other = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        AssertErrno(Errno.EEXIST, () => vm.RegisterIoEventFd(other, IoEventFdSpace.Pio, 0x80, 1));
    }

    [Fact]
    public void An_eventfd_of_another_kernel_is_an_argument_error()
    {
        using var emulated = new EmulatedKernel();
        using var kvm = Kvm.Open(emulated);
        using var other = new EmulatedKernel();
        using var foreign = EventFd.Create(other, 0, EventFdOptions.NonBlocking);
        using var vm = kvm.CreateVm();
        Assert.Throws<ArgumentException>(() => vm.RegisterIoEventFd(foreign, IoEventFdSpace.Pio, 0x10, 1));
        Assert.Throws<ArgumentException>(() => vm.AssignIrqFd(foreign, 1));
        Assert.Throws<ArgumentException>(() => vm.DeassignIrqFd(foreign, 1));
    }

    [Fact]
    public void The_emulated_kernel_keeps_a_registered_eventfd_until_the_vm_goes_and_leaks_nothing()
    {
        using var emulated = new EmulatedKernel();
        using (var kvm = Kvm.Open(emulated))
        {
            var vm = kvm.CreateVm();
            var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
            var lengthZero = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
            _ = vm.RegisterIoEventFd(e, IoEventFdSpace.Mmio, 0xd000_0000, 4);
            _ = vm.RegisterIoEventFd(lengthZero, IoEventFdSpace.Mmio, 0xd000_1000, 0); // two references: MMIO + fast MMIO
            Assert.Equal(2, emulated.LiveEventFdContexts);
            e.Dispose();
            lengthZero.Dispose();
            Assert.Equal(2, emulated.LiveEventFdContexts);
            Assert.Empty(EmulatorInvariants.Check(emulated));
            vm.Dispose();
            Assert.Equal(0, emulated.LiveEventFdContexts);
        }
        Assert.Equal(0, emulated.OpenFdCount);
        Assert.Equal(0, emulated.LiveVmCount);
    }

    [Fact]
    public void Tracing_names_eventfds_and_closes_them_through_itself()
    {
        var lines = new List<string>();
        using var emulated = new EmulatedKernel();
        using (var tracing = new TracingKernel(emulated, call => lines.Add(call.ToString()), comparable: true))
        using (var e = EventFd.Create(tracing, 3, EventFdOptions.NonBlocking))
        {
            Assert.Equal(3UL, e.Read());
        }
        Assert.Equal(["eventfd2(3, 0x800) = fd eventfd#1", "read(eventfd#1, 8) = 8", "close(eventfd#1) = 0"], lines);
        Assert.Equal(0, emulated.OpenFdCount);
    }

    [Fact]
    public void Tracing_decodes_kvm_ioeventfd_and_kvm_irqfd_with_the_eventfd_by_name()
    {
        var lines = new List<string>();
        using var emulated = new EmulatedKernel();
        using (var tracing = new TracingKernel(emulated, call => lines.Add(call.ToString()), comparable: true))
        using (var kvm = Kvm.Open(tracing))
        using (var vm = kvm.CreateVm())
        using (var e = kvm.CreateEventFd(options: EventFdOptions.NonBlocking))
        {
            vm.RegisterIoEventFd(e, IoEventFdSpace.Pio, 0x10, 1, datamatch: 7).Dispose();
            vm.DeassignIrqFd(e, 3);
        }
        Assert.Contains(lines, l => l.Contains("KVM_IOEVENTFD, {datamatch=0x7, addr=0x10, len=1, fd=eventfd#1, flags=DATAMATCH|PIO}) = 0", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("KVM_IOEVENTFD, {datamatch=0x7, addr=0x10, len=1, fd=eventfd#1, flags=DATAMATCH|PIO|DEASSIGN}) = 0", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("KVM_IRQFD, {fd=eventfd#1, gsi=3, flags=0x1, resamplefd=0}) = 0", StringComparison.Ordinal));
    }
}
