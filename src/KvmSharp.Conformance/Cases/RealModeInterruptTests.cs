// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Exceptions and software interrupts in real mode, delivered through the IVT (Intel SDM Vol. 3A 20.1.4, Vol. 2A INT n
/// "REAL-ADDRESS-MODE"; arch/x86/kvm/emulate.c __emulate_int_real; x86.c kvm_inject_exception drops the error code
/// outside protected mode). One slot at GPA 0: the IVT sends vector v to 0200:4v, where <c>mov al, v; hlt</c> waits;
/// the code runs at 1000:0000 (GPA 0x10000), SS = 0, SP = 0x8000. Every expectation was probed on this host (Linux
/// 6.18 kvm_pvm) with a C program first.
/// </summary>
public static class RealModeInterruptTests
{
    private const ulong MemSize = 0x20000, CodeGpa = 0x10000, StubGpa = 0x2000;
    private const ushort CodeSegment = 0x1000, StubSegment = 0x200, StartSp = 0x8000;
    private const ulong If = 1UL << 9, Of = 1UL << 11, Ac = 1UL << 18;

    private sealed class Guest(Vm vm, AnonymousMemory mem, Vcpu vcpu) : IDisposable
    {
        public Vm Vm { get; } = vm;
        public AnonymousMemory Mem { get; } = mem;
        public Vcpu Vcpu { get; } = vcpu;

        /// <summary>The three words at SS:SP (IP, CS, FLAGS of the last frame).</summary>
        public (ushort Ip, ushort Cs, ushort Flags) Frame()
        {
            ulong sp = Vcpu.GetRegs().rsp & 0xffff;
            return (Mem.Read<ushort>(sp), Mem.Read<ushort>(sp + 2), Mem.Read<ushort>(sp + 4));
        }

        public void Dispose()
        {
            Vcpu.Dispose();
            Vm.Dispose();
            Mem.Dispose();
        }
    }

    private static Guest Create(Kvm kvm, Action<Assembler> program, ushort idtLimit = 0x3ff, ulong rflags = 2, ushort sp = StartSp)
    {
        var vm = kvm.CreateVm();
        var mem = vm.AllocateMemory(MemSize);
        vm.AddMemorySlot(0, 0, mem);
        for (int v = 0; v < 256; v++)
        {
            mem.Write<uint>((ulong)v * 4, ((uint)StubSegment << 16) | (uint)(v * 4));
            mem.Write(StubGpa + (ulong)v * 4, [0xb0, (byte)v, 0xf4, 0xf4]); // mov al, v; hlt; hlt
        }
        var asm = new Assembler(16);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), 0);
        mem.Write(CodeGpa, stream.ToArray());
        var vcpu = vm.CreateVcpu(0);
        var s = vcpu.GetSregs();
        (s.cs.@base, s.cs.selector) = (CodeGpa, CodeSegment);
        (s.ds.@base, s.ds.selector, s.ss.@base, s.ss.selector) = (0, 0, 0, 0);
        (s.idt.@base, s.idt.limit) = (0, idtLimit);
        vcpu.SetSregs(s);
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = rflags, rsp = sp, rax = 0x1234 });
        return new Guest(vm, mem, vcpu);
    }

    /// <summary>The run halted in the stub of <paramref name="vector"/>, CS = 0200.</summary>
    private static void AssertInHandler(Guest g, VcpuExit exit, int vector, string what)
    {
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()}");
        var r = g.Vcpu.GetRegs();
        var cs = g.Vcpu.GetSregs().cs;
        Assert.True((ulong)vector == (r.rax & 0xff) && (ulong)(vector * 4 + 3) == r.rip, $"{what}: AL 0x{r.rax & 0xff:X}, IP 0x{r.rip:X}");
        Assert.Equal((StubSegment, (ulong)StubSegment << 4), (cs.selector, cs.@base));
    }

    [ConformanceCase("SDM Vol. 3A 20.1.4, x86.c kvm_inject_exception: a fault in real mode (#DE from DIV, #UD from LLDT or SLDT, #GP from a word at DS:0xFFFF, #SS from PUSH at SP = 1) goes to IVT[vector] with FLAGS, CS and the faulting IP pushed, no error code; KVM_GET_VCPU_EVENTS keeps the vector with has_error_code 0")]
    public static void real_mode_faults_go_through_the_ivt(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (string What, Action<Assembler> Body, int Vector, ushort Ip, ushort Flags, ulong Sp)[] faults =
        [
            ("#DE", a => { a.xor(bl, bl); a.div(bl); }, 0, 2, 0x46, StartSp - 6),
            ("#UD (LLDT)", a => { a.xor(ax, ax); a.lldt(ax); }, 6, 2, 0x46, StartSp - 6),
            ("#UD (SLDT)", a => { a.xor(ax, ax); a.sldt(ax); }, 6, 2, 0x46, StartSp - 6),
            ("#GP", a => a.mov(ax, __word_ptr[0xffff]), 13, 0, 0x2, StartSp - 6),
            // The frame of a fault is written with SP wrapping at 16 bits and no limit check (this host).
            ("#SS", a => { a.mov(sp, 1); a.push(ax); }, 12, 3, 0x2, 0xfffb),
        ];
        foreach (var (what, body, vector, ip, flags, sp) in faults)
        {
            using var g = Create(kvm, a => { body(a); a.hlt(); });
            AssertInHandler(g, g.Vcpu.Run(), vector, what);
            Assert.Equal((ip, CodeSegment, flags), g.Frame());
            var r = g.Vcpu.GetRegs();
            Assert.True(sp == r.rsp && flags == r.rflags, $"{what}: rsp 0x{r.rsp:X} rflags 0x{r.rflags:X}");
            var e = g.Vcpu.GetEvents();
            Assert.True((vector, 0, 0u) == (e.exception_nr, e.exception_has_error_code, e.exception_error_code), $"{what}: nr {e.exception_nr} has_error_code {e.exception_has_error_code}");
        }
    }

    [ConformanceCase("emulate.c em_int / __emulate_int_real, SDM Vol. 2A INT n/INTO/INT3: INT n, INT3 and INTO (OF set) push FLAGS, CS and the IP after the instruction and clear IF, TF and AC; INTO with OF clear does nothing; INT n whose push crosses SS:0xFFFF is #SS at the INT's IP")]
    public static void real_mode_software_interrupts_go_through_the_ivt(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Flags = 0x2 | If | Of | Ac | 0x3000 | 0x4;
        (string What, Action<Assembler> Body, int Vector, ushort Ip)[] cases =
        [
            ("int 0x21", a => a.@int(0x21), 0x21, 2),
            ("int3", a => a.int3(), 3, 1),
            ("into", a => a.into(), 4, 1),
            ("int 0x7f", a => a.@int(0x7f), 0x7f, 2),
        ];
        foreach (var (what, body, vector, ip) in cases)
        {
            using var g = Create(kvm, a => { body(a); a.hlt(); }, rflags: Flags);
            AssertInHandler(g, g.Vcpu.Run(), vector, what);
            Assert.Equal((ip, CodeSegment, (ushort)(Flags & 0xffff)), g.Frame());
            var r = g.Vcpu.GetRegs();
            Assert.Equal((StartSp - 6UL, Flags & ~(If | Ac)), (r.rsp, r.rflags));
            Assert.Equal(0, g.Vcpu.GetEvents().exception_nr); // not through the exception queue
        }
        using (var g = Create(kvm, a => { a.into(); a.hlt(); }))
        {
            var exit = g.Vcpu.Run();
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
            Assert.Equal((2UL, (ushort)CodeSegment, (ulong)StartSp), (g.Vcpu.GetRegs().rip, g.Vcpu.GetSregs().cs.selector, g.Vcpu.GetRegs().rsp));
        }
        using (var g = Create(kvm, a => { a.@int(0x21); a.hlt(); }, sp: 1))
        {
            AssertInHandler(g, g.Vcpu.Run(), 12, "int 0x21 at SP = 1");
            Assert.Equal((ushort)0, g.Frame().Ip);
            Assert.Equal(0xfffbUL, g.Vcpu.GetRegs().rsp);
        }
    }

    [ConformanceCase("x86.c kvm_vcpu_ioctl_interrupt / kvm_check_and_inject_events: KVM_INTERRUPT wakes a real-mode HLT (no in-kernel irqchip: KVM_EXIT_HLT first) and the interrupt goes through the IVT with the IP after the HLT, whatever IF says")]
    public static void kvm_interrupt_wakes_a_real_mode_hlt(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (bool sti in new[] { true, false })
        {
            using var g = Create(kvm, a => { if (sti) a.sti(); a.hlt(); a.hlt(); });
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            g.Vcpu.InjectInterrupt(0x30);
            AssertInHandler(g, g.Vcpu.Run(), 0x30, $"sti {sti}");
            ushort ip = sti ? (ushort)2 : (ushort)1;
            Assert.Equal((ip, CodeSegment, (ushort)(sti ? 0x202 : 0x2)), g.Frame());
            Assert.Equal(2UL, g.Vcpu.GetRegs().rflags);
        }
    }

    [ConformanceCase("SDM Vol. 2A INT n REAL-ADDRESS-MODE: an IVT entry beyond IDTR.limit is #GP, and #GP/#DF beyond it end in a shutdown (kvm_pvm: HostDeviations.KvmPvmRealModeIgnoresIvtLimit)")]
    public static void real_mode_ivt_limit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool ignores = HostDeviations.KvmPvmRealModeIgnoresIvtLimit(ctx.Target.IsReal);
        using (var g = Create(kvm, a => { a.@int(0x21); a.hlt(); }, idtLimit: 0))
        {
            var exit = g.Vcpu.Run();
            if (ignores) AssertInHandler(g, exit, 0x21, "limit 0");
            else
            {
                Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, exit.Reason);
                Assert.Equal(0UL, g.Vcpu.GetRegs().rip);
            }
        }
        using (var g = Create(kvm, a => { a.@int(0x21); a.hlt(); }, idtLimit: 13 * 4 + 3))
        {
            var exit = g.Vcpu.Run();
            AssertInHandler(g, exit, ignores ? 0x21 : 13, "limit 0x37");
            Assert.Equal(ignores ? (ushort)2 : (ushort)0, g.Frame().Ip);
        }
    }

    [ConformanceCase("SDM Vol. 2A INT n: INT 0x80 … 0xFF go through the IVT like any vector (kvm_pvm: KVM_RUN never finishes them, HostDeviations.KvmPvmRealModeHighSoftwareInterruptsSpin)")]
    public static void real_mode_int_of_a_high_vector(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Create(kvm, a => { a.@int(0x80); a.hlt(); });
        if (!HostDeviations.KvmPvmRealModeHighSoftwareInterruptsSpin(ctx.Target.IsReal))
        {
            AssertInHandler(g, g.Vcpu.Run(), 0x80, "int 0x80");
            Assert.Equal((ushort)2, g.Frame().Ip);
            return;
        }
        // A kick after a while ends the run: interrupted, RIP still on the INT, nothing pushed.
        using var kick = new Timer(_ => g.Vcpu.Kick(), null, 300, Timeout.Infinite);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Interrupted, exit.ToString());
        var r = g.Vcpu.GetRegs();
        Assert.Equal((0UL, (ulong)StartSp), (r.rip, r.rsp));
    }
}
