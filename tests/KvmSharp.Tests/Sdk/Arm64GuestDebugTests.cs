// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// arm64 host debugging through the SDK (Arm64VcpuDebug.cs, Vcpu.GuestDebug.cs, VcpuExit.Arm64Debug) on the emulated
/// arm64 kernel: the 520-byte struct under request 0x4208AE9B, software step exits (EC 0x32, handle_exit.c
/// kvm_handle_guest_debug) at the next PC, and guest.c's EINVAL for control bits outside KVM_GUESTDBG_VALID_MASK.
/// No arm64 host here: the emulated kernel is the one arm64 kernel these run on.
/// </summary>
public class Arm64GuestDebugTests
{
    private const ulong Code = 0x800;

    private static readonly uint[] Program =
    [
        0xD2900001, // 0x800 mov x1, #0x8000
        0x91001463, // 0x804 add x3, x3, #5
        0xD2800547, // 0x808 mov x7, #42
        0x14000000, // 0x80c b .
    ];

    /// <summary>Keeps the request and bytes of every KVM_SET_GUEST_DEBUG (either layout) that passes through.</summary>
    private sealed class Recorder(IKernel inner) : DelegatingKernel(inner)
    {
        public List<(uint Request, byte[] Bytes)> Calls { get; } = [];

        public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
        {
            if (request == KvmIoctls.KVM_SET_GUEST_DEBUG || request == KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64)
                Calls.Add((request, arg.ToArray()));
            return base.Ioctl(fd, request, arg);
        }
    }

    /// <summary>An emulated arm64 VM with <see cref="Program"/> at <see cref="Code"/> and one vCPU started there.</summary>
    private sealed class StepVm : IDisposable
    {
        public StepVm(bool initThroughSdk = true)
        {
            Kernel = new EmulatedKernel(EmulatorConfig.Arm64());
            Recorder = new Recorder(Kernel);
            Kvm = Kvm.Open(Recorder);
            Vm = Kvm.CreateVm();
            Host = Vm.AllocateMemory(0x10000);
            byte[] code = new byte[Program.Length * 4];
            for (int i = 0; i < Program.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(code.AsSpan(i * 4), Program[i]);
            Host.Write(Code, code);
            Slot = Vm.AddMemorySlot(0, 0, Host);
            Vcpu = Vm.CreateVcpu(0);
            var init = Vm.PreferredTarget();
            init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2;
            if (initThroughSdk)
            {
                Vcpu.Init(init);
            }
            else
            {
                // KVM_ARM_VCPU_INIT behind the SDK's back: the vCPU's architecture is not known to it.
                Assert.Equal(0, Kvm.Kernel.Ioctl(Vcpu.Handle, KvmArm64Ioctls.KVM_ARM_VCPU_INIT, KvmCall.Bytes(ref init)));
            }
            Vcpu.SetPc(Code);
        }

        public EmulatedKernel Kernel { get; }

        public Recorder Recorder { get; }

        public Kvm Kvm { get; }

        public Vm Vm { get; }

        public AnonymousMemory Host { get; }

        public MemorySlot Slot { get; }

        public Vcpu Vcpu { get; }

        /// <summary>One run that must end in a software step exit with the PC at <paramref name="pc"/>.</summary>
        public void Step(ulong pc)
        {
            VcpuExit exit = Vcpu.Run();
            Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
            Assert.True(exit.IsArm64SoftwareStep, exit.Arm64Debug.ToString());
            Arm64DebugExit debug = exit.Arm64Debug;
            Assert.Equal(Arm64DebugExit.SoftwareStepClass, debug.ExceptionClass);
            Assert.True(debug.IsSoftwareStep);
            // handle_exit.c: hsr_high = upper_32_bits(esr) (0 for a step) and run->flags = KVM_DEBUG_ARCH_HSR_HIGH_VALID.
            Assert.True(debug.HsrHighValid);
            Assert.Equal((0u, (ulong)debug.Hsr), (debug.HsrHigh, debug.Esr));
            Assert.Equal(pc, Vcpu.GetPc());
        }

        public void Dispose()
        {
            Vcpu.Dispose();
            Slot.Dispose();
            Host.Dispose();
            Vm.Dispose();
            Kvm.Dispose();
            Kernel.Dispose();
        }
    }

    [Fact]
    public void Single_step_through_the_typed_api_exits_with_EC_0x32_at_each_next_pc()
    {
        using var t = new StepVm();
        t.Vcpu.SetGuestDebug(Arm64GuestDebugOptions.SingleStep);
        t.Step(0x804);
        t.Step(0x808);
        Assert.Equal(5UL, t.Vcpu.GetX(3));
        t.Step(0x80c);
        Assert.Equal(42UL, t.Vcpu.GetX(7));
        t.Step(0x80c); // b . : the branch to itself completes and is stepped again
        t.Vcpu.DisableArm64GuestDebug();
        Assert.Single(t.Recorder.Calls, c => BinaryPrimitives.ReadUInt32LittleEndian(c.Bytes) == 0);
        Assert.All(t.Recorder.Calls, c => Assert.Equal((KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64, 520), (c.Request, c.Bytes.Length)));
    }

    [Fact]
    public void Vcpu_SetGuestDebug_on_an_arm64_vcpu_sends_the_arm64_struct()
    {
        using var t = new StepVm();
        t.Vcpu.EnableSingleStep();
        t.Step(0x804);
        t.Step(0x808);
        t.Vcpu.DisableGuestDebug();
        // Off, then on again without running in between: the next run steps the mov at 0x808.
        t.Vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);
        t.Step(0x80c);
        Assert.Equal(3, t.Recorder.Calls.Count);
        Assert.All(t.Recorder.Calls, c => Assert.Equal((KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64, 520), (c.Request, c.Bytes.Length)));
        Assert.Equal([3u, 0u, 3u], t.Recorder.Calls.Select(c => BinaryPrimitives.ReadUInt32LittleEndian(c.Bytes)));
    }

    [Fact]
    public void A_vcpu_initialized_behind_the_sdk_is_found_to_be_arm64_by_the_refused_x86_request()
    {
        using var t = new StepVm(initThroughSdk: false);
        t.Vcpu.EnableSingleStep();
        t.Step(0x804);
        // First the x86 request (EINVAL on arm64: kvm_arch_vcpu_ioctl's default), then the arm64 one; later calls go
        // straight to arm64's.
        t.Vcpu.DisableGuestDebug();
        Assert.Equal([KvmIoctls.KVM_SET_GUEST_DEBUG, KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64, KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64],
            t.Recorder.Calls.Select(c => c.Request));
    }

    [Fact]
    public void Control_bits_outside_the_arm64_mask_are_EINVAL_naming_the_operation_and_change_nothing()
    {
        using var t = new StepVm();
        t.Vcpu.SetGuestDebug(Arm64GuestDebugOptions.SingleStep);
        // guest.c: "if (dbg->control & ~KVM_GUESTDBG_VALID_MASK) return -EINVAL" — x86's INJECT_DB (1 << 18) is not in it.
        var e = Assert.Throws<KvmException>(() => t.Vcpu.SetGuestDebug(
            new Arm64GuestDebugOptions { Flags = GuestDebugFlags.Enable | GuestDebugFlags.InjectDebugException }));
        Assert.Equal((Errno.EINVAL, "KVM_SET_GUEST_DEBUG"), (e.Errno, e.Operation));
        Assert.Contains("arm64 control=0x40001", e.Request, StringComparison.Ordinal);
        var viaVcpu = Assert.Throws<KvmException>(() => t.Vcpu.SetGuestDebug(GuestDebugFlags.BlockInterrupts | GuestDebugFlags.Enable));
        Assert.Equal((Errno.EINVAL, "KVM_SET_GUEST_DEBUG"), (viaVcpu.Errno, viaVcpu.Operation));
        // The refused calls left single-step on.
        t.Step(0x804);
    }

    [Fact]
    public void Hardware_breakpoints_and_watchpoints_are_sent_in_the_arm64_arrays()
    {
        using var t = new StepVm();
        t.Vcpu.SetGuestDebug(new Arm64GuestDebugOptions
        {
            Flags = GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints,
            Breakpoints = [Arm64DebugRegisterPair.ExecuteBreakpoint(0x808)],
            Watchpoints = [new(0x8000, 0x1FF7)],
        });
        t.Vcpu.SetHardwareBreakpoint(0x80c, singleStep: true);
        var (first, second) = (t.Recorder.Calls[0].Bytes, t.Recorder.Calls[1].Bytes);
        ulong At(byte[] b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(offset));
        Assert.Equal(0x20001u, BinaryPrimitives.ReadUInt32LittleEndian(first));
        Assert.Equal((0x1E7UL, 0x808UL, 0x1FF7UL, 0x8000UL), (At(first, 8), At(first, 136), At(first, 264), At(first, 392)));
        Assert.Equal(0x20003u, BinaryPrimitives.ReadUInt32LittleEndian(second));
        Assert.Equal((0x1E7UL, 0x80cUL, 0UL, 0UL), (At(second, 8), At(second, 136), At(second, 264), At(second, 392)));
    }

    [Fact]
    public void X86_debug_registers_on_an_arm64_vcpu_are_refused_before_any_call_pointing_at_the_arm64_api()
    {
        using var t = new StepVm();
        var e = Assert.Throws<ArgumentException>(() => t.Vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, [0x808]));
        Assert.Contains("Arm64GuestDebugOptions", e.Message, StringComparison.Ordinal);
        Assert.Empty(t.Recorder.Calls);
    }

    [Fact]
    public void The_debug_exit_is_decoded_in_place_with_and_without_hsr_high()
    {
        byte[] page = new byte[4096];
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(KvmRunLayout.exit_reason), (uint)KvmExitReason.KVM_EXIT_DEBUG);
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(32), 0xD200_0050); // EC 0x34 (watchpoint), IL, WnR
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(36), 0x0000_0012);
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(40), 0x8008);
        var exit = new VcpuExit(page, interrupted: false);
        Arm64DebugExit old = exit.Arm64Debug;
        Assert.False(old.HsrHighValid); // flags 0: a kernel before 5.19
        Assert.Equal((Arm64DebugExit.WatchpointClass, 0xD200_0050UL, 0x8008UL), (old.ExceptionClass, old.Esr, old.Far));
        Assert.False(exit.IsArm64SoftwareStep);
        BinaryPrimitives.WriteUInt16LittleEndian(page.AsSpan(KvmRunLayout.flags), KvmArm64GuestDebug.KVM_DEBUG_ARCH_HSR_HIGH_VALID);
        Arm64DebugExit current = new VcpuExit(page, interrupted: false).Arm64Debug;
        Assert.True(current.HsrHighValid);
        Assert.Equal(0x12_D200_0050UL, current.Esr);
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(32), 0xCA00_0022); // EC 0x32: a software step
        Assert.True(new VcpuExit(page, interrupted: false).IsArm64SoftwareStep);
        Assert.False(new VcpuExit(page, interrupted: true).IsArm64SoftwareStep);
    }
}
