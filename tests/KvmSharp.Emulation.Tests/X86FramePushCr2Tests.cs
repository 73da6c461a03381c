// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// EmulatorConfig.X86FramePushFaultLeavesCr2 (X86/Emulate/X86Emulator.Exceptions.cs DeliverException): the like-this-host
/// preset answers what Linux 6.18 kvm_pvm was observed to do when an event's frame cannot be pushed (RSP on an unmapped
/// page; the conformance cases of PageWalkAndFrameCases on /dev/kvm, 2026-12-07: HostDeviations
/// .KvmPvmDoubleFaultFromAFramePushLeavesCr2), the upstream preset what Intel SDM Vol. 3A 4.7 and 6.15 Table 6-5 ask.
/// The expected values for the like-this-host preset are those the real kernel gave.
/// </summary>
public sealed class X86FramePushCr2Tests
{
    private const ulong UnmappedStackTop = 0x4000_1000, IstTop = 0x8_a000, Cr2Before = 0x1234_5000;
    private const int DfVector = 8, PfVector = 14;

    private static void Ud2OnAnUnmappedStack(Assembler a)
    {
        a.mov(rsp, (long)UnmappedStackTop);
        a.ud2();
        a.hlt();
    }

    /// <summary>
    /// Runs <paramref name="program"/> (48 halting gates, CR2 = <see cref="Cr2Before"/>, the gate of
    /// <paramref name="istVector"/> on IST1; with <paramref name="interrupt"/> KVM_INTERRUPT 0x21 on an unmapped RSP):
    /// the exit, CR2 after it and the deliveries.
    /// </summary>
    private static (KvmExitReason Exit, ulong Cr2, IReadOnlyList<Delivery> Deliveries) Run(EmulatorConfig config, Action<Assembler> program,
        int istVector, bool interrupt = false)
    {
        using var kernel = new EmulatedKernel(config);
        using var kvm = Kvm.Open(kernel);
        using var g = IdtGuest.Create(kvm, program, Enumerable.Range(0, 48).Select(v => new IdtVector(v)), 48 * 16 - 1);
        var s = g.Vcpu.GetSregs();
        s.cr2 = Cr2Before;
        s.tr = Gdt.TaskState;
        g.Vcpu.SetSregs(s);
        var mem = g.Guest.Memory;
        mem.Write(Layout.Tss + 0x24, IstTop);
        ulong gate = IdtGuest.IdtGpa + (ulong)istVector * 16;
        mem.Write(gate, mem.Read<ulong>(gate) | (1UL << 32));
        if (interrupt)
        {
            var r = g.Vcpu.GetRegs();
            r.rsp = UnmappedStackTop;
            g.Vcpu.SetRegs(r);
            g.Vcpu.InjectInterrupt(0x21);
        }
        var exit = g.Vcpu.RunBounded();
        return (exit.Reason, g.Vcpu.GetSregs().cr2, g.Deliveries);
    }

    [Fact]
    public void The_switch_is_on_only_in_the_like_this_host_preset()
    {
        Assert.True(EmulatorConfig.LikeThisHost().X86FramePushFaultLeavesCr2);
        Assert.False(EmulatorConfig.X86_64().X86FramePushFaultLeavesCr2);
        Assert.False(new EmulatorConfig().X86FramePushFaultLeavesCr2);
    }

    [Fact]
    public void Like_this_host_delivers_the_double_fault_with_cr2_left_as_it_was()
    {
        // kvm_pvm: one delivery, #DF(0), RIP on the UD2, CR2 0x12345000.
        var (exit, cr2, d) = Run(EmulatorConfig.LikeThisHost(), Ud2OnAnUnmappedStack, DfVector);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
        Assert.Equal((8UL, (ulong?)0UL, Cr2Before), (d.Single().Vector, d.Single().ErrorCode, d.Single().Cr2));
        Assert.Equal(Cr2Before, cr2);
    }

    [Fact]
    public void Upstream_delivers_the_double_fault_with_cr2_on_the_stack_page()
    {
        var (exit, _, d) = Run(EmulatorConfig.X86_64(), Ud2OnAnUnmappedStack, DfVector);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
        Assert.Equal(8UL, d.Single().Vector);
        Assert.InRange(d.Single().Cr2, UnmappedStackTop - 0x1000, UnmappedStackTop - 1);
    }

    [Fact]
    public void Like_this_host_shuts_down_where_upstream_delivers_the_page_fault_on_its_ist()
    {
        // kvm_pvm: the failed push of #UD's frame is #DF at once; #DF without IST → KVM_EXIT_SHUTDOWN, CR2 kept.
        var (exit, cr2, d) = Run(EmulatorConfig.LikeThisHost(), Ud2OnAnUnmappedStack, PfVector);
        Assert.Equal((KvmExitReason.KVM_EXIT_SHUTDOWN, Cr2Before, 0), (exit, cr2, d.Count));
        // SDM Table 6-5: benign then #PF is serial: #PF(W) on IST1, CR2 on the stack page.
        (exit, cr2, d) = Run(EmulatorConfig.X86_64(), Ud2OnAnUnmappedStack, PfVector);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
        Assert.Equal((14UL, (ulong?)2UL), (d.Single().Vector, d.Single().ErrorCode));
        Assert.InRange(cr2, UnmappedStackTop - 0x1000, UnmappedStackTop - 1);
    }

    [Fact]
    public void Like_this_host_delivers_an_interrupts_push_fault_as_a_page_fault_without_loading_cr2()
    {
        // kvm_pvm: #PF error 2 on IST1, RIP on the HLT, CR2 0x12345000.
        var (exit, cr2, d) = Run(EmulatorConfig.LikeThisHost(), a => { a.hlt(); a.hlt(); }, PfVector, interrupt: true);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
        Assert.Equal((14UL, (ulong?)2UL, Cr2Before), (d.Single().Vector, d.Single().ErrorCode, d.Single().Cr2));
        Assert.Equal(Cr2Before, cr2);
        (exit, cr2, d) = Run(EmulatorConfig.X86_64(), a => { a.hlt(); a.hlt(); }, PfVector, interrupt: true);
        Assert.Equal((14UL, (ulong?)2UL), (d.Single().Vector, d.Single().ErrorCode));
        Assert.InRange(cr2, UnmappedStackTop - 0x1000, UnmappedStackTop - 1);
    }
}
