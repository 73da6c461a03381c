// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// One guest access that crosses a page boundary into MMIO (no memslot): x86.c emulator_read_write splits it
/// ("Crossing a page boundary?") and emulator_read_write_onepage makes each page that is neither guest memory nor
/// taken by an in-kernel device (vcpu_mmio_read / vcpu_mmio_write) an MMIO fragment (KVM_MAX_MMIO_FRAGMENTS = 2). The
/// first fragment's first 8 bytes are the KVM_EXIT_MMIO; complete_emulated_mmio sends the rest, 8 bytes per exit, one
/// per KVM_RUN. A write's instruction completes before the first exit; a read's after the last, with the pieces
/// userspace supplied assembled in order. Found by the differential fuzzer (CoalescedGuestRun: mov [r14+0xFFC], rax
/// with two MMIO pages, where the emulator ended KVM_RUN with KVM_INTERNAL_ERROR_EMULATION). A 64-bit
/// <see cref="LongModeGuest"/> runs one instruction with RDI = the address, RSI (and RDX) = the value, then OUT
/// <see cref="EndPort"/>.
/// </summary>
public static class MmioFragmentRules
{
    private const string Source = "arch/x86/kvm/x86.c emulator_read_write / emulator_read_write_onepage / complete_emulated_mmio";
    private const byte EndPort = 0x11;

    /// <summary>Two identity-mapped pages no memslot covers.</summary>
    private const ulong MmioGpa = 0x30_0000;

    /// <summary>The end of slot 0 (2 MiB): the page above is MMIO.</summary>
    private const ulong RamEnd = LongModeGuest.MemorySize;

    private const ulong Value = 0x1122_3344_5566_7788, High = 0x99AA_BBCC_DDEE_FF00;

    private sealed record MmioExit(bool Write, ulong Gpa, byte[] Data, ulong Rip);

    /// <summary>
    /// Runs <paramref name="instruction"/> at <see cref="LongModeGuest.CodeGpa"/>, answering the k-th MMIO read with
    /// bytes 0xA0 + 0x10·k + b. Returns the MMIO exits, the registers at the end marker and the last 16 bytes of slot 0.
    /// </summary>
    private static (List<MmioExit> Exits, kvm_regs End, byte[] RamTail) Run(CaseContext ctx, Action<Assembler> instruction, ulong address, Action<Vm>? prepare = null)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, GuestMemoryBacking.HostMemory, a =>
        {
            instruction(a);
            a.@out(EndPort, al);
        }, address, Value, High);
        foreach (ulong page in new[] { MmioGpa, MmioGpa + 0x1000, RamEnd }) g.IdentityMap(page);
        g.Memory.Fill(RamEnd - 16, 16, 0xEE);
        prepare?.Invoke(g.Vm);
        var exits = new List<MmioExit>();
        int reads = 0;
        for (int n = 0; n < 20; n++)
        {
            var exit = g.Vcpu.Run();
            var r = g.Vcpu.GetRegs();
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == EndPort)
            {
                byte[] tail = new byte[16];
                g.Memory.Read(RamEnd - 16, tail);
                return (exits, r, tail);
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, exit.ToString());
            var data = exit.MmioData;
            if (!exit.MmioIsWrite)
            {
                for (int b = 0; b < data.Length; b++) data[b] = Answer(reads, b);
                reads++;
            }
            exits.Add(new MmioExit(exit.MmioIsWrite, exit.MmioAddress, data.ToArray(), r.rip));
        }
        throw new Xunit.Sdk.XunitException("the guest never reached its end marker");
    }

    private static byte Answer(int read, int b) => (byte)(0xA0 + 0x10 * read + b);

    private static byte[] Bytes(params ulong[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>The instruction's end: the end marker's RIP less its 2 bytes.</summary>
    private static ulong After(kvm_regs end) => end.rip - 2;

    private static void AssertExits(List<MmioExit> exits, bool write, params (ulong Gpa, int Length)[] expected) =>
        Assert.Equal(expected.Select(e => (write, e.Gpa, e.Length)), exits.Select(e => (e.Write, e.Gpa, e.Data.Length)));

    [ConformanceCase(Source + ": an 8-byte MOV to 4 bytes before the end of an MMIO page is two fragments of 4 bytes, two KVM_EXIT_MMIO writes on consecutive KVM_RUNs (the low half at the first page's end, the high half at the next page's start); RIP is past the MOV at both (a write's instruction completes before its exits)")]
    public static void an_8_byte_write_across_two_mmio_pages_is_two_exits(CaseContext ctx)
    {
        var (exits, end, _) = Run(ctx, a => a.mov(__qword_ptr[rdi], rsi), MmioGpa + 0xFFC);
        AssertExits(exits, write: true, (MmioGpa + 0xFFC, 4), (MmioGpa + 0x1000, 4));
        Assert.Equal(Bytes(Value), exits.SelectMany(e => e.Data));
        Assert.All(exits, e => Assert.Equal(After(end), e.Rip));
    }

    [ConformanceCase(Source + " / read_prepare: an 8-byte MOV from 4 bytes before the end of an MMIO page exits twice as 4-byte KVM_EXIT_MMIO reads (RIP still on the MOV); the two answers are assembled, the first page's low, into RAX")]
    public static void an_8_byte_read_across_two_mmio_pages_assembles_the_answers(CaseContext ctx)
    {
        var (exits, end, _) = Run(ctx, a => a.mov(rax, __qword_ptr[rdi]), MmioGpa + 0xFFC);
        AssertExits(exits, write: false, (MmioGpa + 0xFFC, 4), (MmioGpa + 0x1000, 4));
        Assert.All(exits, e => Assert.Equal(LongModeGuest.CodeGpa, e.Rip));
        Assert.Equal(BitConverter.ToUInt64(exits.SelectMany(e => e.Data).ToArray()), end.rax);
        Assert.Equal(0xB3B2_B1B0_A3A2_A1A0UL, end.rax);
    }

    [ConformanceCase(Source + ": an 8-byte MOV across the end of slot 0 writes its low half to guest memory (emulator_write_phys) and exits once for the high half, 4 bytes at the next page")]
    public static void a_write_half_in_ram_half_in_mmio_exits_for_the_mmio_half(CaseContext ctx)
    {
        var (exits, end, ram) = Run(ctx, a => a.mov(__qword_ptr[rdi], rsi), RamEnd - 4);
        AssertExits(exits, write: true, (RamEnd, 4));
        Assert.Equal(Bytes(Value)[4..], exits[0].Data);
        Assert.Equal(Bytes(Value)[..4], ram[12..]);
        Assert.Equal(After(end), exits[0].Rip);
    }

    [ConformanceCase(Source + ": an 8-byte MOV from across the end of slot 0 reads its low half from guest memory and exits once for the high half; RAX holds both")]
    public static void a_read_half_in_ram_half_in_mmio_exits_for_the_mmio_half(CaseContext ctx)
    {
        var (exits, end, _) = Run(ctx, a => a.mov(rax, __qword_ptr[rdi]), RamEnd - 4);
        AssertExits(exits, write: false, (RamEnd, 4));
        Assert.Equal(0xA3A2_A1A0_EEEE_EEEEUL, end.rax);
    }

    [ConformanceCase(Source + " / vcpu_mmio_write: an ioeventfd on the second page's first 4 bytes (KVM_MMIO_BUS) takes that fragment in the kernel; the 8-byte MOV across the pages exits once, for the first page's 4 bytes, and the eventfd is signalled")]
    public static void an_in_kernel_device_takes_one_fragment(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var fd = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
        IDisposable? registration = null;
        try
        {
            var (exits, _, _) = Run(ctx, a => a.mov(__qword_ptr[rdi], rsi), MmioGpa + 0xFFC,
                vm => registration = vm.RegisterIoEventFd(fd, IoEventFdSpace.Mmio, MmioGpa + 0x1000, 4));
            AssertExits(exits, write: true, (MmioGpa + 0xFFC, 4));
            Assert.Equal(Bytes(Value)[..4], exits[0].Data);
            Assert.True(fd.TryRead(out ulong count) && count == 1, "the ioeventfd signalled once");
        }
        finally
        {
            registration?.Dispose();
        }
    }

    // The SSE cases move the value through the stack with MOV and MOVDQU, which KVM's emulator knows: on Linux 6.18
    // kvm_pvm a MOVQ xmm0, rsi (66 48 0F 6E C6) ends KVM_RUN with KVM_INTERNAL_ERROR_EMULATION even with no MMIO near
    // it (probed: as the first instruction, and after a RAM or MMIO access) — a trait of this host, not of fragments.
    [ConformanceCase(Source + ": a 16-byte MOVDQU to 4 bytes before the end of an MMIO page is fragments of 4 and 12 bytes, the second sent as 8 then 4 (\"Go forward to the next mmio piece\"): three KVM_EXIT_MMIO writes carrying the 16 bytes in order")]
    public static void a_16_byte_sse_write_across_two_mmio_pages_is_sent_in_8_byte_pieces(CaseContext ctx)
    {
        var (exits, end, _) = Run(ctx, a =>
        {
            a.mov(__qword_ptr[rsp - 16], rsi);
            a.mov(__qword_ptr[rsp - 8], rdx);
            a.movdqu(xmm0, __xmmword_ptr[rsp - 16]);
            a.movdqu(__xmmword_ptr[rdi], xmm0);
        }, MmioGpa + 0xFFC);
        AssertExits(exits, write: true, (MmioGpa + 0xFFC, 4), (MmioGpa + 0x1000, 8), (MmioGpa + 0x1008, 4));
        Assert.Equal(Bytes(Value, High), exits.SelectMany(e => e.Data));
        Assert.All(exits, e => Assert.Equal(After(end), e.Rip));
    }

    [ConformanceCase(Source + " / read_prepare: a 16-byte MOVDQU from 8 bytes before the end of an MMIO page exits as two 8-byte reads; XMM0 holds the answers in order")]
    public static void a_16_byte_sse_read_across_two_mmio_pages_assembles_the_answers(CaseContext ctx)
    {
        var (exits, end, _) = Run(ctx, a =>
        {
            a.movdqu(xmm0, __xmmword_ptr[rdi]);
            a.movdqu(__xmmword_ptr[rsp - 16], xmm0);
            a.mov(rax, __qword_ptr[rsp - 16]);
            a.mov(rdx, __qword_ptr[rsp - 8]);
        }, MmioGpa + 0xFF8);
        AssertExits(exits, write: false, (MmioGpa + 0xFF8, 8), (MmioGpa + 0x1000, 8));
        Assert.Equal((0xA7A6_A5A4_A3A2_A1A0UL, 0xB7B6_B5B4_B3B2_B1B0UL), (end.rax, end.rdx));
    }
}
