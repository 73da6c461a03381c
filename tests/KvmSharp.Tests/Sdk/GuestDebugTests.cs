// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Vcpu.GuestDebug.cs (KVM_SET_GUEST_DEBUG) and the KVM_EXIT_DEBUG members of <see cref="VcpuExit"/>, on every
/// kernel. The kernel rules themselves are conformance cases (KvmSharp.Conformance/Cases/GuestDebug.cs).
/// </summary>
public class GuestDebugTests : KernelTest
{
    /// <summary>Keeps the bytes of every KVM_SET_GUEST_DEBUG that passes through.</summary>
    private sealed class Recorder(IKernel inner) : DelegatingKernel(inner)
    {
        public List<byte[]> Calls { get; } = [];

        public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
        {
            if (request == KvmIoctls.KVM_SET_GUEST_DEBUG) Calls.Add(arg.ToArray());
            return base.Ioctl(fd, request, arg);
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void SetGuestDebug_sends_control_and_debug_registers_where_the_kernel_reads_them(string kernel)
    {
        using var inner = Open(kernel);
        var recorder = new Recorder(inner.Kernel);
        using var kvm = Kvm.Open(recorder);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, [0x1000, 0x2000, 0, 0, 0, 0, 0, 0x405]);
        vcpu.EnableSingleStep(alsoSoftwareBreakpoints: true);
        vcpu.SetHardwareBreakpoint(0x1234, singleStep: true);
        vcpu.DisableGuestDebug();
        Assert.Equal(4, recorder.Calls.Count);
        Assert.All(recorder.Calls, c => Assert.Equal(72, c.Length));
        uint Control(int i) => BinaryPrimitives.ReadUInt32LittleEndian(recorder.Calls[i]);
        ulong Reg(int i, int n) => BinaryPrimitives.ReadUInt64LittleEndian(recorder.Calls[i].AsSpan(8 + 8 * n));
        Assert.Equal(0x20001u, Control(0));
        Assert.Equal((0x1000UL, 0x2000UL, 0x405UL), (Reg(0, 0), Reg(0, 1), Reg(0, 7)));
        Assert.Equal(0x10003u, Control(1));
        Assert.Equal(0x20003u, Control(2));
        Assert.Equal((0x1234UL, 0x401UL), (Reg(2, 0), Reg(2, 7)));
        Assert.Equal(0u, Control(3));
        Assert.All(recorder.Calls[3], b => Assert.Equal(0, b));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void More_than_eight_debug_registers_are_refused_before_any_call(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Throws<ArgumentException>(() => vcpu.SetGuestDebug(GuestDebugFlags.Enable, new ulong[9]));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_refused_call_is_a_KvmException_naming_the_request_and_its_values(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetGuestDebug(GuestDebugFlags.InjectDebugException);
        var e = Assert.Throws<KvmException>(() => vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.InjectBreakpointException));
        Assert.Equal(Errno.EBUSY, e.Errno);
        Assert.Equal("KVM_SET_GUEST_DEBUG", e.Operation);
        Assert.Contains("control=0x80001", e.Request, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Single_step_and_a_breakpoint_decode_in_place(string kernel)
    {
        using var kvm = Open(kernel);
        Assert.True(kvm.SupportsGuestDebug);
        Assert.True(kvm.SupportedGuestDebugFlags.HasFlag(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep | GuestDebugFlags.UseHardwareBreakpoints));
        using var g = LongModeGuest.Create(kvm, a => { a.mov(eax, 1); a.inc(eax); a.inc(eax); a.hlt(); });
        const ulong code = LongModeGuest.CodeGpa;
        g.Vcpu.SetHardwareBreakpoint(code + 7);
        var exit = g.Vcpu.Run();
        Assert.False(exit.IsSingleStep);
        Assert.Equal((1u, code + 7, 0xffff0ff1UL), (exit.DebugException, exit.DebugPc, exit.DebugDr6));
        Assert.StartsWith($"KVM_EXIT_DEBUG exception=1 pc=0x{code + 7:X} dr6=0xFFFF0FF1", exit.ToString(), StringComparison.Ordinal);
        g.Vcpu.EnableSingleStep();
        exit = g.Vcpu.Run();
        Assert.True(exit.IsSingleStep);
        Assert.Equal((1u, code + 9, 0xffff4ff0UL), (exit.DebugException, exit.DebugPc, exit.DebugDr6));
        Assert.Equal(3UL, g.Vcpu.GetRegs().rax);
        g.Vcpu.DisableGuestDebug();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
    }
}
