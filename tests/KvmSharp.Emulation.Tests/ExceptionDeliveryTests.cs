// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Exception delivery paths of the emulator that this host's kernel cannot show (INT3 fails there, see
/// HostDeviations.KvmPvmSoftwareInterruptsFail) or that need set-ups the conformance guests do not have: IST stacks,
/// a frame that cannot be pushed, real-mode INT n, IRETQ's checks, and garbage descriptor tables.
/// </summary>
public sealed class ExceptionDeliveryTests
{
    private const ulong Gdt = 0x5000, Idt = 0x6000, Handler = 0x7000, Tss = 0x8000, IstTop = 0x10_0000;

    /// <summary>A RawGuest in long mode with a GDT (null, 64-bit code 0x08, data 0x10) and one 64-bit gate per vector, all to <see cref="Handler"/>.</summary>
    private static RawGuest Guest(EmulatedKernel k, Action<Iced.Intel.Assembler> program, Action<Iced.Intel.Assembler> handler, int ist = 0, ulong rsp = 0x30_0000)
    {
        var g = new RawGuest(k);
        g.LongMode(program, rsp);
        g.Write64(Gdt + 8, 0x00af_9b00_0000_ffffUL);  // code: P, DPL 0, type 0xB, L=1, G=1
        g.Write64(Gdt + 16, 0x00cf_9300_0000_ffffUL); // data: P, DPL 0, type 0x3, D/B=1, G=1
        g.Write(Handler, RawGuest.Assemble(64, Handler, handler));
        for (ulong v = 0; v < 32; v++)
        {
            g.Write64(Idt + v * 16, (Handler & 0xffff) | (8UL << 16) | ((ulong)ist << 32) | (0x8eUL << 40) | (((Handler >> 16) & 0xffff) << 48));
            g.Write64(Idt + v * 16 + 8, Handler >> 32);
        }
        g.Write64(Tss + 0x24, IstTop); // IST1
        var s = g.Sregs;
        s.gdt = new kvm_dtable { @base = Gdt, limit = 23 };
        s.idt = new kvm_dtable { @base = Idt, limit = 32 * 16 - 1 };
        s.tr = new kvm_segment { @base = Tss, limit = 0x67, selector = 0x18, type = 11, present = 1 };
        g.Sregs = s;
        return g;
    }

    [Fact]
    public void Int3_is_delivered_with_rip_past_it_and_iretq_resumes()
    {
        using var k = new EmulatedKernel();
        using var g = Guest(k, a => { a.int3(); a.mov(ebx, 0x42); a.hlt(); }, h => { a_copyFrame(h); h.iretq(); });
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(0x42UL, g.Regs.rbx);
        Assert.Equal(RawGuest.CodeGpa + 1, g.Read64(0x9000)); // saved RIP: past the one-byte INT3
        Assert.Equal(8UL, g.Read64(0x9008));
        Assert.Equal(0x30_0000UL, g.Read64(0x9018));
        Assert.Equal(0x30_0000UL, g.Regs.rsp);
    }

    /// <summary>Copies the five-qword frame to 0x9000 without touching the stack.</summary>
    private static void a_copyFrame(Iced.Intel.Assembler h)
    {
        for (int i = 0; i < 5; i++)
        {
            h.mov(rax, __qword_ptr[rsp + 8 * i]);
            h.mov(__qword_ptr[0x9000 + 8 * i], rax);
        }
        h.mov(__qword_ptr[0x9028], rsp);
    }

    [Fact]
    public void An_ist_gate_switches_to_the_tss_stack()
    {
        using var k = new EmulatedKernel();
        using var g = Guest(k, a => { a.ud2(); a.hlt(); }, h => { a_copyFrame(h); h.hlt(); }, ist: 1);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(IstTop - 40, g.Read64(0x9028));
        Assert.Equal(RawGuest.CodeGpa, g.Read64(0x9000));
        Assert.Equal(0x30_0000UL, g.Read64(0x9018)); // the interrupted RSP is in the frame
    }

    [Fact]
    public void A_frame_that_cannot_be_pushed_ends_in_a_triple_fault_with_cr2_set()
    {
        // The upstream preset: like this host (kvm_pvm) the push's #PF loads no CR2 (X86FramePushCr2Tests).
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        // RSP beyond the 6 MiB the page tables map: #UD → #PF on the push → #PF again → #DF → #PF → shutdown.
        using var g = Guest(k, a => { a.ud2(); a.hlt(); }, h => h.hlt(), rsp: 0x80_0000);
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
        Assert.Equal(RawGuest.CodeGpa, g.Regs.rip);
        Assert.Equal(0x80_0000UL, g.Regs.rsp);
        Assert.Equal(0x7f_fff8UL, g.Sregs.cr2); // the #DF frame's first push (SS at aligned RSP - 8)
    }

    [Fact]
    public void Iretq_to_a_selector_beyond_the_gdt_is_general_protection()
    {
        using var k = new EmulatedKernel();
        using var g = Guest(k, a =>
        {
            a.mov(rax, rsp);
            a.push(0x10);
            a.push(rax);
            a.pushfq();
            a.push(0x28); // beyond the GDT limit
            a.push(0);
            a.iretq();
        }, h => { h.pop(rcx); h.hlt(); });
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(0x28UL, g.Regs.rcx); // #GP(selector)
    }

    [Fact]
    public void Real_mode_int_n_goes_through_the_ivt_and_iret_returns()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.RealMode(a => { a.@int(0x21); a.mov(bx, 0x99); a.hlt(); });
        // IVT at linear 0 (IDTR base 0, limit 0x3ff): vector 0x21 → 0x1000:0x0200, i.e. linear 0x10200.
        g.Write64(0x21 * 4, 0x1000_0200);
        g.Write(0x1_0200, RawGuest.Assemble(16, 0x200, h => { h.mov(cx, 0x77); h.iret(); }));
        var s = g.Sregs;
        s.idt = new kvm_dtable { @base = 0, limit = 0x3ff };
        g.Sregs = s;
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(0x77UL, g.Regs.rcx & 0xffff);
        Assert.Equal(0x99UL, g.Regs.rbx & 0xffff);
        Assert.Equal(0xfff0UL, g.Regs.rsp & 0xffff);
    }

    [Fact]
    public void Garbage_descriptor_tables_never_escape_as_dotnet_exceptions()
    {
        var rng = new Random(7);
        byte[] junk = new byte[0x1000];
        for (int round = 0; round < 50; round++)
        {
            using var k = new EmulatedKernel();
            using var g = Guest(k, a => { a.ud2(); a.iretq(); a.hlt(); }, h => h.iretq());
            rng.NextBytes(junk);
            g.Write(round % 2 == 0 ? Idt : Gdt, junk);
            var s = g.Sregs;
            s.tr.@base = (ulong)rng.NextInt64();
            g.Sregs = s;
            long rc = g.RunOnce();
            Assert.True(rc <= 0, $"KVM_RUN returned {rc}: a positive value is neither success nor -errno");
        }
    }
}
