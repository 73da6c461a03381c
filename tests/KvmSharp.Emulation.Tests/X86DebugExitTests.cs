// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_EXIT_DEBUG's dr7 and the accesses that raise no data or I/O breakpoint in the upstream x86 preset
/// (X86/Emulate/X86Emulator.GuestDebug.cs DataBreakpointTrap; Vcpu/KvmRunPage.cs SetDebugExit):
/// <list type="bullet">
/// <item>svm.c db_interception "kvm_run->debug.arch.dr7 = svm->vmcb->save.dr7" / vmx.c handle_exception_nmi
/// "kvm_run->debug.arch.dr7 = vmcs_readl(GUEST_DR7)": a hardware #DB's exit reports the DR7 KVM loaded (x86.c
/// kvm_update_dr7: guest_debug_dr7 under USE_HW_BP, else the guest's). kvm_vcpu_do_singlestep and
/// kvm_vcpu_check_code_breakpoint leave dr7 as it was.</item>
/// <item>INS/OUTS: intercepted and emulated by KVM (the port access goes to userspace or an in-kernel device; x86.c
/// complete_emulated_pio), and KVM's emulator checks no data breakpoint, so their memory accesses raise none.</item>
/// <item>Exception and interrupt frame pushes: whether such implicit accesses match a data breakpoint the manuals do not
/// say; the emulator raises none (GuestDebug.cs DataBreakpointTrap), pinned here for real-mode #DE and INT n.</item>
/// <item>I/O breakpoints (DR7 RW = 10 with CR4.DE = 1, Intel SDM Vol. 3A 18.2.4): IN/OUT are intercepted (vmx.c
/// handle_io / svm.c io_interception → x86.c kvm_fast_pio or the emulator) and neither checks DR7 for an I/O
/// breakpoint (x86.c kvm_vcpu_check_hw_bp is only called with type 0, execute), so none is raised.</item>
/// </list>
/// </summary>
public sealed class X86DebugExitTests
{
    private const ulong Code = LongModeGuest.CodeGpa, Data = 0x8_9000;
    private const ulong Active = 0xffff0ff0, Bs = 1UL << 14;
    private const ushort Port = 0x10;

    private static ulong Dr7(int n, int rw, int len, bool global = false)
    {
        ulong lenBits = len switch { 1 => 0, 2 => 1, 4 => 3, 8 => 2, _ => throw new ArgumentOutOfRangeException(nameof(len)) };
        return (1UL << (2 * n + (global ? 1 : 0))) | ((ulong)rw << (16 + 4 * n)) | (lenBits << (18 + 4 * n));
    }

    private static ulong Length(Action<Assembler> program) => (ulong)LongModeGuest.Assemble(program).Length;

    private static void SetHostBreakpoints(KvmSharp.Vcpu vcpu, ulong dr7, params ulong[] db)
    {
        Span<ulong> regs = stackalloc ulong[8];
        for (int n = 0; n < db.Length; n++) regs[n] = db[n];
        regs[7] = dr7;
        vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
    }

    private static void AssertDebugExit(VcpuExit exit, ulong pc, ulong dr6)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
        Assert.Equal(1u, exit.DebugException);
        Assert.Equal(pc, exit.DebugPc);
        Assert.Equal(dr6, exit.DebugDr6);
    }

    [Fact]
    public void Host_data_breakpoint_exit_reports_guest_debug_dr7_and_a_later_step_exit_leaves_it()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        using var g = LongModeGuest.Create(kvm, a => { a.mov(__dword_ptr[Data], eax); a.nop(); a.hlt(); });
        ulong dr7 = 0x600 | Dr7(0, rw: 1, len: 4);
        SetHostBreakpoints(g.Vcpu, dr7, Data);
        ulong after = Code + Length(a => a.mov(__dword_ptr[Data], eax));
        var exit = g.Vcpu.RunBounded();
        AssertDebugExit(exit, after, Active | 1);
        Assert.Equal(dr7, exit.DebugDr7);
        // kvm_vcpu_do_singlestep writes dr6, pc, exception — not dr7, which keeps the last value.
        g.Vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.SingleStep);
        exit = g.Vcpu.RunBounded();
        AssertDebugExit(exit, after + 1, Active | Bs);
        Assert.Equal(dr7, exit.DebugDr7);
    }

    [Fact]
    public void Single_stepped_guest_data_breakpoint_exit_reports_the_guests_dr7()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        ulong guestDr7 = 0x400 | Dr7(0, rw: 1, len: 4, global: true);
        void Program(Assembler a)
        {
            a.mov(rax, (long)Data);
            a.mov(dr0, rax);
            a.mov(rax, (long)guestDr7);
            a.mov(dr7, rax);
            a.mov(__dword_ptr[Data], eax);
            a.hlt();
        }
        using var g = LongModeGuest.Create(kvm, Program);
        g.Vcpu.EnableSingleStep();
        VcpuExit exit;
        int steps = 0;
        do exit = g.Vcpu.RunBounded();
        while (exit.Reason == KvmExitReason.KVM_EXIT_DEBUG && (exit.DebugDr6 & 1) == 0 && ++steps < 10);
        ulong after = Code + Length(a =>
        {
            a.mov(rax, (long)Data);
            a.mov(dr0, rax);
            a.mov(rax, (long)guestDr7);
            a.mov(dr7, rax);
            a.mov(__dword_ptr[Data], eax);
        });
        // SINGLESTEP without USE_HW_BP: the hardware holds the guest's DR7 (kvm_update_dr7), and the exit reports it.
        AssertDebugExit(exit, after, Active | Bs | 1);
        Assert.Equal(guestDr7, exit.DebugDr7);
        Assert.Equal(Active, g.Vcpu.GetDebugRegs().dr6); // the guest's DR6 is not touched
    }

    [Fact]
    public void Ins_write_raises_no_data_breakpoint_but_a_later_store_does()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        void Program(Assembler a)
        {
            a.mov(edi, (uint)Data);
            a.mov(dx, Port);
            a.insd();
            a.mov(ebx, 0x55);
            a.mov(__dword_ptr[Data], eax);
            a.hlt();
        }
        using var g = LongModeGuest.Create(kvm, Program);
        SetHostBreakpoints(g.Vcpu, 0x400 | Dr7(0, rw: 1, len: 4), Data);
        var exit = g.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, exit.Reason);
        Assert.False(exit.IoIsOut);
        exit.IoData[..4].Fill(0x5a);
        // Completing the INS writes Data: no KVM_EXIT_DEBUG for it; the MOV's write to the same dword exits.
        exit = g.Vcpu.RunBounded();
        AssertDebugExit(exit, Code + Length(a =>
        {
            a.mov(edi, (uint)Data);
            a.mov(dx, Port);
            a.insd();
            a.mov(ebx, 0x55);
            a.mov(__dword_ptr[Data], eax);
        }), Active | 1);
        Assert.Equal(0x55UL, g.Vcpu.GetRegs().rbx);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rep_ins_write_raises_no_data_breakpoint(bool down)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        void Program(Assembler a)
        {
            a.mov(edi, (uint)(down ? Data + 4 : Data));
            a.mov(dx, Port);
            a.mov(ecx, 2);
            if (down) a.std();
            a.rep.insw();
            a.cld();
            a.mov(ebx, 0x55);
            a.hlt();
        }
        using var g = LongModeGuest.Create(kvm, Program);
        SetHostBreakpoints(g.Vcpu, 0x400 | Dr7(0, rw: 3, len: 8), Data);
        VcpuExit exit;
        int runs = 0;
        while ((exit = g.Vcpu.RunBounded()).Reason == KvmExitReason.KVM_EXIT_IO && ++runs < 5) exit.IoData.Fill(0x5a);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        Assert.Equal(0x55UL, g.Vcpu.GetRegs().rbx);
        Assert.Equal(0x5a5au, g.Memory.Read<ushort>(Data + 2));
    }

    [Fact]
    public void Outs_read_to_an_in_kernel_device_raises_no_data_breakpoint()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        // OUTSB of 0xff from Data to the in-kernel master PIC's mask register (port 0x21: no exit), then a read of Data.
        static void Head(Assembler a)
        {
            a.mov(esi, (uint)Data);
            a.mov(dx, 0x21);
            a.outsb();
            a.mov(eax, __dword_ptr[Data]);
        }
        using var g = LongModeGuest.Create(kvm, VmType.Default, null, vm => vm.CreateIrqchip(), a => { Head(a); a.hlt(); });
        g.Memory.Write<byte>(Data, 0xff);
        SetHostBreakpoints(g.Vcpu, 0x400 | Dr7(0, rw: 3, len: 1), Data);
        AssertDebugExit(g.Vcpu.RunBounded(), Code + Length(Head), Active | 1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Exception_frame_push_notes_no_data_breakpoint(bool softwareInterrupt)
    {
        // Real mode: the frame (FLAGS, CS, IP) of #DE, or of INT 0x20, goes to 0x6ffe..0x6ffa below SP 0x7000
        // (X86Emulator.RealModeEvents.cs, pushed through Push → AccessMemory); a host write breakpoint on the IP slot is
        // not hit by it, the handler's own store to that slot hits.
        const ulong Handler = 0x1200, Slot = 0x6ffa;
        const byte Vector = 0x20;
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        using var mem = vm.AllocateMemory(HaltTimerGuest.MemSize);
        vm.AddMemorySlot(0, 0, mem);
        mem.Write(HaltTimerGuest.Code, HaltTimerGuest.Assemble16(HaltTimerGuest.Code, a =>
        {
            if (softwareInterrupt)
            {
                a.@int(Vector);
                return;
            }
            a.xor(cx, cx);
            a.div(cx);
        }));
        static void Body(Assembler a)
        {
            a.mov(ebx, 0x55);
            a.mov(__word_ptr.es[(uint)Slot], ax);
        }
        mem.Write(Handler, HaltTimerGuest.Assemble16(Handler, a => { Body(a); a.hlt(); }));
        mem.Write<uint>((softwareInterrupt ? Vector : 0UL) * 4, (uint)Handler); // IVT[vector] = 0000:1200
        using var vcpu = vm.CreateVcpu(0);
        HaltTimerGuest.SetUp(vcpu);
        SetHostBreakpoints(vcpu, 0x400 | Dr7(0, rw: 1, len: 2), Slot);
        var exit = vcpu.RunBounded();
        AssertDebugExit(exit, Handler + (ulong)HaltTimerGuest.Assemble16(Handler, Body).Length, Active | 1);
        Assert.Equal(0x55UL, vcpu.GetRegs().rbx);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Io_breakpoints_are_not_raised(bool host)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        ulong ioDr7 = 0x400 | Dr7(0, rw: 2, len: 1, global: true);
        void Program(Assembler a)
        {
            if (!host)
            {
                a.mov(rax, (long)Port);
                a.mov(dr0, rax);
                a.mov(rax, (long)ioDr7);
                a.mov(dr7, rax);
            }
            a.@out((byte)Port, al);
            a.@in(al, (byte)Port);
            a.mov(ebx, 0x55);
            a.hlt();
        }
        using var g = IdtGuest.Create(kvm, Program, Enumerable.Range(0, 32).Select(v => new IdtVector(v)));
        var s = g.Vcpu.GetSregs();
        s.cr4 |= 1UL << 3; // CR4.DE: RW = 10 is an I/O breakpoint
        g.Vcpu.SetSregs(s);
        if (host) SetHostBreakpoints(g.Vcpu, ioDr7, Port);
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, g.Vcpu.RunBounded().Reason);
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, g.Vcpu.RunBounded().Reason);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        Assert.Empty(g.Deliveries);
        Assert.Equal(0x55UL, g.Vcpu.GetRegs().rbx);
        Assert.Equal(Active, g.Vcpu.GetDebugRegs().dr6);
    }
}
