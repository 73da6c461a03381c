// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>The emulated instruction subset: results, flags and addressing, on 64-bit and real-mode guests.</summary>
public sealed class InstructionTests
{
    private const ulong CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;

    private static kvm_regs Run64(Action<Assembler> program, Action<RawGuest>? setup = null)
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            program(a);
            a.hlt();
        });
        setup?.Invoke(g);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        return g.Regs;
    }

    private static ulong Arith(ulong f) => f & (CF | PF | AF | ZF | SF | OF);

    [Fact]
    public void Add_sets_carry_zero_parity_and_aux_on_wraparound()
    {
        var r = Run64(a => { a.mov(al, 0xff); a.add(al, 1); });
        Assert.Equal(0UL, r.rax & 0xff);
        Assert.Equal(CF | PF | AF | ZF, Arith(r.rflags));
    }

    [Fact]
    public void Signed_overflow_sets_OF_and_SF()
    {
        var r = Run64(a => { a.mov(eax, 0x7fff_ffff); a.add(eax, 1); });
        Assert.Equal(0x8000_0000UL, r.rax);
        Assert.Equal(OF | SF | PF | AF, Arith(r.rflags));
    }

    [Fact]
    public void Cmp_and_jcc_follow_signed_and_unsigned_order()
    {
        // rbx collects one bit per condition that held for cmp(-1, 1): b=0 (unsigned 0xff.. > 1), l=1, a=1, g=0.
        var r = Run64(a =>
        {
            a.xor(ebx, ebx);
            a.mov(rcx, -1L);
            a.cmp(rcx, 1);
            a.setb(bl);
            a.setl(bh);
            a.seta(dl);
            a.setg(dh);
        });
        Assert.Equal(0x0100UL, r.rbx & 0xffff);
        Assert.Equal(0x0001UL, r.rdx & 0xffff);
    }

    [Fact]
    public void Sub_borrow_and_sbb_chain()
    {
        var r = Run64(a =>
        {
            a.mov(rax, 0);
            a.mov(rdx, 1);
            a.sub(rax, 1);      // CF = 1
            a.sbb(rdx, 0);      // 1 - 0 - 1 = 0
        });
        Assert.Equal(ulong.MaxValue, r.rax);
        Assert.Equal(0UL, r.rdx);
        Assert.Equal(ZF | PF, Arith(r.rflags));
    }

    [Fact]
    public void Logic_ops_clear_CF_and_OF_and_32_bit_writes_zero_extend()
    {
        var r = Run64(a =>
        {
            a.mov(rax, -1L);
            a.stc();
            a.and(eax, 0x80);
            a.mov(rbx, -1L);
            a.xor(ebx, ebx);
            a.mov(rcx, -1L);
            a.mov(cx, 0x1234);
            a.mov(rdx, -1L);
            a.mov(dh, 0);
        });
        Assert.Equal(0x80UL, r.rax);
        Assert.Equal(0UL, r.rbx);
        Assert.Equal(0xffff_ffff_ffff_1234UL, r.rcx);
        Assert.Equal(0xffff_ffff_ffff_00ffUL, r.rdx);
        Assert.Equal(ZF | PF, Arith(r.rflags)); // of the last flag-setting op: xor ebx, ebx
    }

    [Fact]
    public void Inc_keeps_CF_neg_sets_it()
    {
        var r = Run64(a =>
        {
            a.stc();
            a.mov(eax, 0xffff_ffff);
            a.inc(eax);
            a.setc(bl);
            a.mov(ecx, 5);
            a.neg(ecx);
        });
        Assert.Equal(0UL, r.rax);
        Assert.Equal(1UL, r.rbx & 0xff);
        Assert.Equal(0xffff_fffbUL, r.rcx);
        Assert.Equal(CF | SF | AF, Arith(r.rflags));
    }

    [Fact]
    public void Shifts_report_the_last_bit_out()
    {
        var r = Run64(a =>
        {
            a.mov(eax, 0x8000_0001);
            a.shl(eax, 1);      // CF = 1, result 2
            a.setc(bl);
            a.mov(ecx, 0x8000_0000);
            a.sar(ecx, 4);      // 0xf8000000
            a.mov(edx, 3);
            a.shr(edx, 1);      // CF = 1, result 1
        });
        Assert.Equal(2UL, r.rax);
        Assert.Equal(1UL, r.rbx & 0xff);
        Assert.Equal(0xf800_0000UL, r.rcx);
        Assert.Equal(1UL, r.rdx);
        Assert.Equal(CF, r.rflags & CF);
    }

    [Fact]
    public void Mul_imul_div()
    {
        var r = Run64(a =>
        {
            a.mov(rax, 0x1_0000_0000L);
            a.mov(rcx, 0x1_0000_0000L);
            a.mul(rcx);          // RDX:RAX = 2^64
            a.mov(r8, rdx);
            a.mov(rax, 100);
            a.xor(edx, edx);
            a.mov(rcx, 7);
            a.div(rcx);          // 14 r 2
            a.imul(r9, rax, -3); // -42
        });
        Assert.Equal(1UL, r.r8);
        Assert.Equal(14UL, r.rax);
        Assert.Equal(2UL, r.rdx);
        Assert.Equal(unchecked((ulong)-42L), r.r9);
    }

    [Fact]
    public void Divide_by_zero_without_an_IDT_is_a_triple_fault()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => { a.xor(ecx, ecx); a.div(rcx); a.hlt(); });
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
    }

    [Fact]
    public void Addressing_modes_base_index_scale_displacement_rip_relative_and_moffs()
    {
        var r = Run64(a =>
        {
            var data = a.CreateLabel();
            a.mov(rbx, 0x10_0000);
            a.mov(rsi, 2);
            a.mov(__qword_ptr[rbx + rsi * 4 + 8], 0x1234_5678);  // 0x100010
            a.mov(rax, __qword_ptr[0x10_0010]);                      // disp32 absolute
            a.mov(rcx, __qword_ptr[data]);                           // RIP-relative
            a.lea(rdx, __[rbx + rsi * 8 - 1]);
            a.movzx(r8d, __byte_ptr[rbx + 0x10]);
            a.movsx(r9, __byte_ptr[rbx + 0x11]);
            a.mov(al, __byte_ptr[0x10_0011UL]);                      // moffs (movabs)
            a.hlt();
            a.Label(ref data);
            a.dq(0xfeed_face_cafe_beefUL);
        });
        Assert.Equal(0x1234_5656UL, r.rax);
        Assert.Equal(0xfeed_face_cafe_beefUL, r.rcx);
        Assert.Equal(0x10_000fUL, r.rdx);
        Assert.Equal(0x78UL, r.r8);
        Assert.Equal(0x56UL, r.r9);
    }

    [Fact]
    public void Push_pop_call_ret_and_loop()
    {
        var r = Run64(a =>
        {
            var fn = a.CreateLabel();
            var loop = a.CreateLabel();
            var done = a.CreateLabel();
            a.mov(ecx, 5);
            a.xor(eax, eax);
            a.Label(ref loop);
            a.add(eax, ecx);
            a.loop(loop);          // 5+4+3+2+1
            a.push(rax);
            a.call(fn);
            a.pop(rbx);
            a.jmp(done);
            a.Label(ref fn);
            a.mov(rdx, __qword_ptr[rsp + 8]);
            a.ret();
            a.Label(ref done);
        });
        Assert.Equal(15UL, r.rax);
        Assert.Equal(15UL, r.rbx);
        Assert.Equal(15UL, r.rdx);
        Assert.Equal(0x30_0000UL, r.rsp);
    }

    [Fact]
    public void Rep_stos_and_movs_copy_memory_and_consume_rcx()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            a.mov(rdi, 0x10_0000);
            a.mov(rcx, 100);
            a.mov(al, 0x5a);
            a.cld();
            a.rep.stosb();
            a.mov(rsi, 0x10_0000);
            a.mov(rdi, 0x11_0000);
            a.mov(rcx, 12);
            a.rep.movsq();
            a.hlt();
        });
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(0UL, g.Regs.rcx);
        Assert.True(g.Memory.GetSpan(0x10_0000, 100).IndexOfAnyExcept((byte)0x5a) < 0);
        Assert.Equal(0, g.Memory.GetSpan(0x10_0064, 1)[0]);
        Assert.True(g.Memory.GetSpan(0x11_0000, 96).IndexOfAnyExcept((byte)0x5a) < 0);
        Assert.Equal(0x11_0060UL, g.Regs.rdi);
    }

    [Fact]
    public void Xchg_cmov_cpuid_cqo()
    {
        var r = Run64(a =>
        {
            a.mov(eax, 1);
            a.mov(ebx, 2);
            a.xchg(rax, rbx);
            a.mov(r12, rbx);
            a.mov(ecx, 7);
            a.cmp(ecx, 7);
            a.cmove(rsi, rcx);
            a.mov(r10, -5L);
            a.mov(rax, r10);
            a.cqo();
            a.mov(r11, rdx);
            a.mov(eax, 0);
            a.cpuid();
        });
        Assert.Equal(1UL, r.r12);
        // CPUID without KVM_SET_CPUID2 reads zeros; 32-bit writes clear the upper halves.
        Assert.Equal(0UL, r.rax);
        Assert.Equal(0UL, r.rbx);
        Assert.Equal(7UL, r.rsi);
        Assert.Equal(ulong.MaxValue, r.r11);
    }

    [Fact]
    public void Real_mode_uses_segment_bases_and_16_bit_addressing()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.RealMode(a =>
        {
            a.mov(ax, 0x3000);
            a.mov(es, ax);
            a.mov(bx, 0x10);
            a.mov(si, 0x4);
            a.mov(__word_ptr.es[bx + si], 0xbeef);   // 0x30000 + 0x14
            a.mov(cx, __word_ptr.es[0x14]);
            a.hlt();
        });
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(0xbeefUL, g.Regs.rcx & 0xffff);
        Assert.Equal(0xbeefUL, g.Read64(0x3_0014) & 0xffff);
        Assert.Equal(0x3000, g.Sregs.es.selector);
        Assert.Equal(0x3_0000UL, g.Sregs.es.@base);
    }
}
