// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// What the KVM_RUN after a KVM_EXIT_IO IN or a KVM_EXIT_MMIO read does before anything else (arch/x86/kvm/x86.c
/// kvm_arch_vcpu_ioctl_run: "if (unlikely(vcpu->arch.complete_userspace_io)) { ... r = cui(vcpu); ... }" comes
/// before "if (!vcpu->wants_to_run) { r = -EINTR; goto out; }"): the answer userspace left in kvm_run is consumed
/// even when immediate_exit is set, so a VMM that pauses a vCPU for a snapshot with immediate_exit finds the
/// instruction finished. Ported from tests/KvmSharp.Emulation.Tests/VcpuTests.cs
/// (A_pending_in_completes_even_when_immediate_exit_is_set), which checked it on the emulator only.
/// </summary>
public static class PendingExitCompletion
{
    private const byte Port = 0x10;
    private const ulong MmioGpa = 0x40_0000;

    [ConformanceCase("arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_run: complete_userspace_io (complete_fast_pio_in) runs before immediate_exit's EINTR: " +
                     "a 64-bit guest's IN AL has its answer in AL and RIP past the IN when KVM_RUN returns EINTR; the next KVM_RUN goes on from there")]
    public static void a_pending_port_in_completes_before_immediate_exit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            a.mov(eax, 0x1234_5600);
            a.@in(al, Port);
            a.@out(Port, al);
            a.hlt();
        });
        var vcpu = guest.Vcpu;
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && !exit.IoIsOut, $"expected an IN exit, got {exit.ToString()}");
        ulong inRip = vcpu.GetRegs().rip;
        exit.IoData[0] = 0x5a;
        vcpu.ImmediateExit = true;
        Assert.True(vcpu.Run().Interrupted);
        var regs = vcpu.GetRegs();
        // IN AL merges into the upper bytes of EAX (complete_fast_pio_in: size < 4 keeps RAX's other bits).
        Assert.Equal((0x1234_565aUL, inRip + 2), (regs.rax, regs.rip));
        vcpu.ImmediateExit = false;
        exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, $"expected the OUT exit, got {exit.ToString()}");
        Assert.Equal(0x5a, exit.IoData[0]);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_run: complete_emulated_mmio runs before immediate_exit's EINTR: a 64-bit guest's " +
                     "4-byte MMIO read has the answer in EAX (zero-extended into RAX) and RIP past the load when KVM_RUN returns EINTR")]
    public static void a_pending_mmio_read_completes_before_immediate_exit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            a.mov(rax, ulong.MaxValue);
            a.mov(rbx, MmioGpa);
            a.mov(eax, __dword_ptr[rbx]);
            a.@out(Port, al);
            a.hlt();
        });
        guest.IdentityMap(MmioGpa);
        var vcpu = guest.Vcpu;
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && !exit.MmioIsWrite, $"expected an MMIO read, got {exit.ToString()}");
        Assert.Equal((MmioGpa, 4), (exit.MmioAddress, exit.MmioData.Length));
        BitConverter.TryWriteBytes(exit.MmioData, 0x8899_aabbu);
        vcpu.ImmediateExit = true;
        Assert.True(vcpu.Run().Interrupted);
        Assert.Equal(0x8899_aabbUL, vcpu.GetRegs().rax);
        vcpu.ImmediateExit = false;
        exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, $"expected the OUT exit, got {exit.ToString()}");
        Assert.Equal(0xbb, exit.IoData[0]);
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_run → complete_emulated_pio: a real-mode guest's IN AL (emulated) is finished " +
                     "by the next KVM_RUN even with immediate_exit set: AL holds the answer and IP is past the IN when KVM_RUN returns EINTR")]
    public static void a_pending_real_mode_port_in_completes_before_immediate_exit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a =>
        {
            a.@in(al, Port);
            a.@out(Port, al);
            a.hlt();
        }, backing: GuestMemoryBacking.HostMemory);
        var vcpu = guest.Vcpu;
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && !exit.IoIsOut, $"expected an IN exit, got {exit.ToString()}");
        exit.IoData[0] = 0xa5;
        vcpu.ImmediateExit = true;
        Assert.True(vcpu.Run().Interrupted);
        var regs = vcpu.GetRegs();
        Assert.Equal((0xa5UL, 2UL), (regs.rax & 0xff, regs.rip));
        vcpu.ImmediateExit = false;
        exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, $"expected the OUT exit, got {exit.ToString()}");
        Assert.Equal(0xa5, exit.IoData[0]);
    }
    [ConformanceCase("arch/x86/kvm/x86.c complete_fast_pio_in: \"if (unlikely(!kvm_is_linear_rip(vcpu, vcpu->arch.cui_linear_rip))) { vcpu->arch.pio.count = 0; " +
                     "return 1; }\" — when userspace moved RIP (KVM_SET_REGS) after an IN exit, the answer is dropped: AL keeps its value and the guest runs from the new RIP " +
                     "(kvm_pvm: dropped too, but the guest resumes past the IN, see KvmPvmResumesPastADroppedIn)")]
    public static void a_pending_port_in_is_dropped_when_rip_moved(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            var other = a.CreateLabel();
            a.mov(eax, 0x1234_5666);
            a.@in(al, Port);
            a.hlt();
            a.Label(ref other);
            a.@out(Port, al);
            a.hlt();
        });
        var vcpu = guest.Vcpu;
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && !exit.IoIsOut, $"expected an IN exit, got {exit.ToString()}");
        exit.IoData[0] = 0x5a;
        // mov eax, imm32 (5 bytes), in al, imm8 (2), hlt (1): the OUT is at +8.
        vcpu.SetRegs(vcpu.GetRegs() with { rip = LongModeGuest.CodeGpa + 8 });
        exit = vcpu.Run();
        var regs = vcpu.GetRegs();
        if (HostDeviations.KvmPvmResumesPastADroppedIn(ctx.Target.IsReal))
        {
            // The answer is dropped as upstream drops it, but the guest resumes past the IN (the HLT there), not at the RIP set.
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"expected the HLT after the IN, got {exit.ToString()}, RIP 0x{regs.rip:X}, RAX 0x{regs.rax:X}");
            Assert.Equal((LongModeGuest.CodeGpa + 8, 0x1234_5666UL), (regs.rip, regs.rax));
            return;
        }
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, $"expected the OUT exit, got {exit.ToString()}, RIP 0x{regs.rip:X}, RAX 0x{regs.rax:X}");
        Assert.Equal(0x66, exit.IoData[0]);
        Assert.Equal(0x1234_5666UL, regs.rax);
    }
}
