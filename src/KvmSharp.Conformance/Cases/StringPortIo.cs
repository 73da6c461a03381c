// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// INS/OUTS with and without REP (arch/x86/kvm/emulate.c em_in/em_out, pio_in_emulated, the REP restart in
/// x86_emulate_insn; x86.c emulator_pio_in_out, complete_emulator_pio_in): what userspace sees through KVM_EXIT_IO
/// (direction, size, port, count, data_offset) and the registers after each exit and at the end. A real-mode guest
/// (<see cref="RealModeGuest"/>, ES = DS = CS) whose string instruction ends with an OUT to <see cref="EndPort"/>.
/// </summary>
public static class StringPortIo
{
    private const ushort Port = 0x510;
    private const byte EndPort = 0x11;
    private const ushort Source = 0x1000, Destination = 0x2000;

    /// <summary>KVM_PIO_PAGE_OFFSET * PAGE_SIZE: the page after struct kvm_run.</summary>
    private const ulong PioDataOffset = 4096;

    private record struct IoExit(bool Out, int Size, ushort Port, uint Count, ulong DataOffset, byte[] Data, ulong Rcx, ulong Rsi, ulong Rdi, ulong Rip);

    /// <summary>
    /// Runs a guest doing <paramref name="program"/> then OUT <see cref="EndPort"/>, with RCX/RSI/RDI/DF as given and
    /// <see cref="Source"/> holding bytes i * 7 + 1. Every KVM_EXIT_IO on <see cref="Port"/> is recorded (an IN is
    /// answered with 0xA0, 0xA1, … across exits); returns them and the guest at the end.
    /// </summary>
    private static (List<IoExit> Exits, kvm_regs End) Run(CaseContext ctx, Action<Assembler> program, ulong rcx, ulong rsi, ulong rdi,
        bool df = false, Action<RealModeGuest>? setUp = null)
    {
        using var kvm = ctx.OpenKvm();
        return Run(kvm, program, rcx, rsi, rdi, df, g =>
        {
            setUp?.Invoke(g);
            return null;
        });
    }

    /// <summary><see cref="Run(CaseContext, Action{Assembler}, ulong, ulong, ulong, bool, Action{RealModeGuest}?)"/> on <paramref name="kvm"/>; what <paramref name="setUp"/> returns is disposed before the guest.</summary>
    private static (List<IoExit> Exits, kvm_regs End) Run(Kvm kvm, Action<Assembler> program, ulong rcx, ulong rsi, ulong rdi,
        bool df, Func<RealModeGuest, IDisposable?> setUp)
    {
        using var guest = RealModeGuest.Create(kvm, a =>
        {
            program(a);
            a.@out(EndPort, al);
        }, backing: GuestMemoryBacking.HostMemory);
        byte[] pattern = new byte[0x1000];
        for (int n = 0; n < pattern.Length; n++) pattern[n] = (byte)(n * 7 + 1);
        guest.Host!.Write(Source, pattern);
        var s = guest.Vcpu.GetSregs();
        s.es = s.ds;
        guest.Vcpu.SetSregs(s);
        var r = guest.Vcpu.GetRegs();
        (r.rcx, r.rsi, r.rdi, r.rdx) = (rcx, rsi, rdi, Port);
        r.rflags = 2 | (df ? 0x400UL : 0);
        guest.Vcpu.SetRegs(r);
        using var resource = setUp(guest);
        var exits = new List<IoExit>();
        byte next = 0xA0;
        for (int n = 0; n < 10000; n++)
        {
            var exit = guest.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, exit.ToString());
            var regs = guest.Vcpu.GetRegs();
            if (exit.IoPort == EndPort) return (exits, regs);
            Assert.Equal(Port, exit.IoPort);
            var data = exit.IoData;
            if (!exit.IoIsOut)
            {
                for (int b = 0; b < data.Length; b++) data[b] = next++;
            }
            exits.Add(new IoExit(exit.IoIsOut, exit.IoSize, exit.IoPort, exit.IoCount, exit.IoDataOffset, data.ToArray(),
                regs.rcx, regs.rsi, regs.rdi, regs.rip));
        }
        throw new Xunit.Sdk.XunitException("the guest never reached its end marker");
    }

    private static byte Pattern(int offset) => (byte)(offset * 7 + 1);

    [ConformanceCase("emulate.c em_out: pio_out_emulated(..., 1) — a REP OUTSB to userspace is one KVM_EXIT_IO per byte with io.count 1 at data_offset KVM_PIO_PAGE_OFFSET * PAGE_SIZE; x86.c x86_emulate_instruction writes RCX/RSI back before each exit and RIP stays on the instruction (even after the last byte: string_insn_completed tests only REPE/REPNE), advancing on the next KVM_RUN")]
    public static void rep_outsb_exits_once_per_byte_with_rcx_and_rsi_updated(CaseContext ctx)
    {
        var (exits, end) = Run(ctx, a => a.rep.outsb(), rcx: 5, rsi: Source + 0x10, rdi: Destination);
        Assert.Equal(5, exits.Count);
        for (int n = 0; n < 5; n++)
        {
            var e = exits[n];
            Assert.Equal((true, 1, 1u, PioDataOffset), (e.Out, e.Size, e.Count, e.DataOffset));
            Assert.Equal(Pattern(0x10 + n), e.Data[0]);
            Assert.Equal((4UL - (ulong)n, (ulong)Source + 0x11 + (ulong)n, (ulong)Destination, 0UL), (e.Rcx, e.Rsi, e.Rdi, e.Rip));
        }
        Assert.Equal((0UL, (ulong)Source + 0x15, (ulong)Destination, 2UL + 2), (end.rcx, end.rsi, end.rdi, end.rip));
    }

    [ConformanceCase("emulate.c pio_in_emulated: a REP INSB reads ahead min(bytes left in rDI's page, 1024 / size, RCX) elements in one KVM_EXIT_IO (io.count); at the exit the registers are unchanged, and complete_emulator_pio_in stores what userspace wrote at data_offset to ES:DI on the next KVM_RUN")]
    public static void rep_insb_is_one_exit_whose_count_covers_the_batch(CaseContext ctx)
    {
        var (exits, end) = Run(ctx, a =>
        {
            a.rep.insb();
            a.mov(eax, __dword_ptr[Destination]);
            a.mov(bl, __byte_ptr[Destination + 4]);
        }, rcx: 5, rsi: 0x77, rdi: Destination);
        var e = Assert.Single(exits);
        Assert.Equal((false, 1, 5u, PioDataOffset), (e.Out, e.Size, e.Count, e.DataOffset));
        Assert.Equal((5UL, 0x77UL, (ulong)Destination, 0UL), (e.Rcx, e.Rsi, e.Rdi, e.Rip));
        Assert.Equal((0UL, 0x77UL, (ulong)Destination + 5), (end.rcx, end.rsi, end.rdi));
        Assert.Equal((0xA3A2A1A0UL, 0xA4UL), (end.rax & 0xffff_ffff, end.rbx & 0xff));
    }

    [ConformanceCase("emulate.c pio_in_emulated: n = min3(in_page, sizeof(rc->data) / size, count) — 5000 bytes from a page start come in batches of 1024, 600 words in 512 and 88, and 5 bytes 2 before a page end in 2 and 3; each batch is one exit and the REP restarts for the next")]
    public static void rep_ins_batches_are_bounded_by_the_read_ahead_buffer_and_the_page(CaseContext ctx)
    {
        var (exits, end) = Run(ctx, a => a.rep.insb(), rcx: 5000, rsi: 0, rdi: Destination);
        Assert.Equal([1024u, 1024u, 1024u, 1024u, 904u], exits.Select(e => e.Count));
        Assert.Equal([5000UL, 3976UL, 2952UL, 1928UL, 904UL], exits.Select(e => e.Rcx));
        Assert.Equal((0UL, (ulong)Destination + 5000), (end.rcx, end.rdi));

        (exits, end) = Run(ctx, a => a.rep.insw(), rcx: 600, rsi: 0, rdi: Destination);
        Assert.Equal([(2, 512u), (2, 88u)], exits.Select(e => (e.Size, e.Count)));
        Assert.Equal((0UL, (ulong)Destination + 1200), (end.rcx, end.rdi));

        (exits, end) = Run(ctx, a => a.rep.insb(), rcx: 5, rsi: 0, rdi: Destination + 0xffe);
        Assert.Equal([2u, 3u], exits.Select(e => e.Count));
        Assert.Equal([(ulong)Destination + 0xffe, (ulong)Destination + 0x1000], exits.Select(e => e.Rdi));
        Assert.Equal((0UL, (ulong)Destination + 0x1003), (end.rcx, end.rdi));
    }

    [ConformanceCase("emulate.c string_addr_inc: with DF = 1 OUTS walks rSI down and INS rDI down; pio_in_emulated's in_page is then rDI's offset in its page, so a REP INSB at a page start reads 1 element, then the rest")]
    public static void direction_flag_walks_rsi_and_rdi_down(CaseContext ctx)
    {
        var (exits, end) = Run(ctx, a => a.rep.outsb(), rcx: 3, rsi: Source + 4, rdi: Destination, df: true);
        Assert.Equal([Pattern(4), Pattern(3), Pattern(2)], exits.Select(e => e.Data[0]));
        Assert.Equal([(ulong)Source + 3, (ulong)Source + 2, (ulong)Source + 1], exits.Select(e => e.Rsi));
        Assert.Equal((0UL, (ulong)Source + 1), (end.rcx, end.rsi));

        (exits, end) = Run(ctx, a =>
        {
            a.rep.insb();
            a.mov(eax, __dword_ptr[Destination + 0x1000 - 3]);
            a.mov(bl, __byte_ptr[Destination + 0x1000 - 4]);
        }, rcx: 5, rsi: 0, rdi: Destination + 0x1000, df: true);
        Assert.Equal([1u, 4u], exits.Select(e => e.Count));
        Assert.Equal((0UL, (ulong)Destination + 0x1000 - 5), (end.rcx, end.rdi));
        // 0xA0 at rDI, 0xA1 below it, …
        Assert.Equal((0xA0A1A2A3UL, 0xA4UL), (end.rax & 0xffff_ffff, end.rbx & 0xff));
    }

    [ConformanceCase("emulate.c em_out / em_in without REP: OUTSW and OUTSD are one exit of size 2 and 4 (count 1) with RSI moved and RIP past the instruction at the exit; INSB stores one byte; RCX is untouched")]
    public static void outsw_outsd_and_insb_without_rep(CaseContext ctx)
    {
        var (exits, end) = Run(ctx, a =>
        {
            a.outsw();
            a.outsd();
            a.insb();
        }, rcx: 9, rsi: Source, rdi: Destination);
        Assert.Equal([(true, 2, 1u), (true, 4, 1u), (false, 1, 1u)], exits.Select(e => (e.Out, e.Size, e.Count)));
        Assert.Equal(new byte[] { Pattern(0), Pattern(1) }, exits[0].Data);
        Assert.Equal(new byte[] { Pattern(2), Pattern(3), Pattern(4), Pattern(5) }, exits[1].Data);
        Assert.Equal([((ulong)Source + 2, 1UL), ((ulong)Source + 6, 3UL)], exits.Take(2).Select(e => (e.Rsi, e.Rip)));
        Assert.Equal((9UL, (ulong)Source + 6, (ulong)Destination + 1), (end.rcx, end.rsi, end.rdi));
    }

    [ConformanceCase("emulate.c opcode 0x6E SrcSI: OUTS reads through DS, which a segment prefix overrides (FS here); x86_emulate_insn's first REP test: RCX = 0 does nothing and moves RIP on")]
    public static void outs_honours_a_segment_override_and_rcx_zero_does_nothing(CaseContext ctx)
    {
        var (exits, end) = Run(ctx, a => a.AddInstruction(Instruction.CreateOutsb(16, Register.FS, RepPrefixKind.Repe)), rcx: 2, rsi: 0, rdi: 0,
            setUp: g =>
            {
                var s = g.Vcpu.GetSregs();
                s.fs.@base = RealModeGuest.Gpa + Source + 0x40; // FS:0 is Source + 0x40
                s.fs.selector = (ushort)(s.fs.@base >> 4);
                g.Vcpu.SetSregs(s);
            });
        Assert.Equal([Pattern(0x40), Pattern(0x41)], exits.Select(e => e.Data[0]));
        Assert.Equal((0UL, 2UL), (end.rcx, end.rsi));

        (exits, end) = Run(ctx, a =>
        {
            a.rep.outsb();
            a.rep.insb();
        }, rcx: 0, rsi: Source, rdi: Destination);
        Assert.Empty(exits);
        Assert.Equal((0UL, (ulong)Source, (ulong)Destination, 6UL), (end.rcx, end.rsi, end.rdi, end.rip));
    }

    [ConformanceCase("x86.c emulator_pio_in_out → kvm_io_bus_write(KVM_PIO_BUS): every element of a REP OUTSB to a port an ioeventfd owns goes to it (the eventfd counts 3 signals) and none exits")]
    public static void rep_outsb_to_an_ioeventfd_port_signals_per_element_without_an_exit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var fd = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        var (exits, end) = Run(kvm, a => a.rep.outsb(), rcx: 3, rsi: Source, rdi: Destination, df: false,
            g => g.Vm.RegisterIoEventFd(fd, IoEventFdSpace.Pio, Port, 1));
        Assert.Empty(exits);
        Assert.Equal((0UL, (ulong)Source + 3), (end.rcx, end.rsi));
        Assert.True(fd.TryRead(out ulong signals), "the eventfd was signalled");
        Assert.Equal(3UL, signals);
    }

    [ConformanceCase("emulate.c register_address_increment → assign_register(..., ad_bytes): in 64-bit mode a REP OUTSB/INSD with a 67h prefix counts in ECX and walks ESI/EDI, and a 4-byte update zero-extends (\"64b: zero-extend\"), clearing RCX/RSI/RDI's upper halves; INSD's batch is bounded by 1024 / 4")]
    public static void address_size_override_in_64_bit_mode_counts_in_ecx(CaseContext ctx)
    {
        const ulong Data = LongModeGuest.CodeGpa + 0x800, Upper = 0xAB_0000_0000;
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, a =>
        {
            a.mov(dx, Port);
            a.mov(rcx, Upper | 2);
            a.mov(rsi, Upper | Data);
            a.AddInstruction(Instruction.CreateOutsb(32, Register.DS, RepPrefixKind.Repe));
            a.mov(r8, rcx);
            a.mov(r9, rsi);
            a.mov(rcx, Upper | 300);
            a.mov(rdi, Upper | (Data + 0x100));
            a.AddInstruction(Instruction.CreateInsd(32, RepPrefixKind.Repe));
            a.hlt();
        });
        g.Memory.Write(Data, new byte[] { 0x11, 0x22 });
        var seen = new List<(bool Out, int Size, uint Count)>();
        for (int n = 0; n < 8; n++)
        {
            var exit = g.Vcpu.Run();
            if (exit.Reason != KvmExitReason.KVM_EXIT_IO) break;
            seen.Add((exit.IoIsOut, exit.IoSize, exit.IoCount));
            if (!exit.IoIsOut) exit.IoData.Fill(0x5a);
        }
        Assert.Equal([(true, 1, 1u), (true, 1, 1u), (false, 4, 256u), (false, 4, 44u)], seen);
        var r = g.Vcpu.GetRegs();
        Assert.Equal((0UL, Data + 2), (r.r8, r.r9));
        Assert.Equal((0UL, Data + 0x100 + 1200), (r.rcx, r.rdi));
        Assert.Equal(0x5a5a5a5aU, g.Memory.Read<uint>(Data + 0x100 + 1196));
    }

    [ConformanceCase("x86.c emulator_pio_in_out → kvm_io_bus_write/kvm_io_bus_read(KVM_PIO_BUS): REP OUTSB and REP INSB on the in-kernel PIC's port 0x21 go to the PIC element by element (the last byte written is the IMR, every byte read is it) and none exits (i8259.c picdev_write/picdev_read)")]
    public static void rep_outsb_and_insb_on_the_in_kernel_pic_do_not_exit(CaseContext ctx)
    {
        const ulong Data = LongModeGuest.CodeGpa + 0x800;
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, VmType.Default, GuestMemoryBacking.HostMemory, vm => vm.CreateIrqchip(), a =>
        {
            a.mov(dx, 0x21);
            a.mov(ecx, 2);
            a.mov(rsi, Data);
            a.rep.outsb();
            a.@in(al, 0x21);
            a.mov(ecx, 3);
            a.mov(rdi, Data + 0x10);
            a.rep.insb();
            a.@out(EndPort, al);       // HLT would wait in the kernel with an in-kernel LAPIC
        });
        g.Memory.Write(Data, new byte[] { 0x12, 0x34 });
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == EndPort, exit.ToString());
        var r = g.Vcpu.GetRegs();
        Assert.Equal((0x34UL, 0UL, Data + 2, Data + 0x13), (r.rax & 0xff, r.rcx, r.rsi, r.rdi));
        Assert.Equal(0x0034_3434U, g.Memory.Read<uint>(Data + 0x10));
    }
}
