// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// INS whose destination is not writable guest memory (a KVM_MEM_READONLY slot, or a GPA no slot covers): the batch
/// userspace supplied through KVM_EXIT_IO is written at the next KVM_RUN (complete_emulated_pio →
/// x86_emulate_insn's writeback), and that write becomes emulated MMIO (x86.c emulator_write_emulated →
/// emulator_read_write → emulator_read_write_onepage: emulator_write_phys fails, vcpu_mmio_write finds no device,
/// the page's bytes are an MMIO fragment) which KVM hands to userspace 8 bytes per KVM_EXIT_MMIO
/// (complete_emulated_mmio: "Go forward to the next mmio piece"). Found by the differential fuzzer (seed 2, call 94:
/// a 1024-byte REP INSB into a read-only logging slot). A 64-bit <see cref="LongModeGuest"/> runs the INS, then
/// OUT <see cref="EndPort"/>.
/// </summary>
public static class StringPortIoToMmio
{
    private const ushort Port = 0x512;
    private const byte EndPort = 0x11;
    private const ulong ReadOnlyGpa = 0x20_0000, UnbackedGpa = 0x30_0000;

    /// <summary>RFLAGS.RF.</summary>
    private const ulong Rf = 0x1_0000;

    private abstract record Exit(ulong Rcx, ulong Rdi, ulong Rip, ulong Rflags);

    private sealed record IoIn(int Size, uint Count, byte[] Data, ulong Rcx, ulong Rdi, ulong Rip, ulong Rflags) : Exit(Rcx, Rdi, Rip, Rflags);

    private sealed record MmioWrite(ulong Gpa, byte[] Data, ulong Rcx, ulong Rdi, ulong Rip, ulong Rflags) : Exit(Rcx, Rdi, Rip, Rflags);

    /// <summary>
    /// Runs INS (<paramref name="ins"/>) at <see cref="LongModeGuest.CodeGpa"/> + 0x10 with RCX/RDI/DF as given, a
    /// 2-page read-only slot at <see cref="ReadOnlyGpa"/> (holding 0xEE) and nothing at <see cref="UnbackedGpa"/>, both
    /// identity-mapped. Each KVM_EXIT_IO (IN) is answered with bytes 0x40 + 3·k + 0x11·exit; every exit is recorded
    /// with the registers at it. Returns the exits, the registers at the end marker and the read-only slot's bytes.
    /// </summary>
    private static (List<Exit> Exits, kvm_regs End, byte[] ReadOnly) Run(CaseContext ctx, Action<Iced.Intel.Assembler> ins, ulong count, ulong destination, bool df = false)
    {
        using var kvm = ctx.OpenKvm();
        using var g = LongModeGuest.Create(kvm, GuestMemoryBacking.HostMemory, a =>
        {
            ins(a);
            a.@out(EndPort, al);
        });
        if (g.Vm.CheckExtension(KvmCaps.KVM_CAP_READONLY_MEM) == 0) Skip("KVM_CAP_READONLY_MEM is 0 on this VM");
        using var memory = g.Vm.AllocateMemory(0x2000);
        memory.GetSpan(0, 0x2000).Fill(0xEE);
        using var slot = g.Vm.AddMemorySlot(1, ReadOnlyGpa, memory, MemorySlotFlags.ReadOnly);
        foreach (ulong page in new[] { ReadOnlyGpa, ReadOnlyGpa + 0x1000, UnbackedGpa, UnbackedGpa + 0x1000 }) g.IdentityMap(page);
        var start = g.Vcpu.GetRegs();
        (start.rdx, start.rcx, start.rdi) = (Port, count, destination);
        start.rflags = 2 | (df ? 0x400UL : 0);
        g.Vcpu.SetRegs(start);
        var exits = new List<Exit>();
        int ioExits = 0;
        for (int n = 0; n < 1000; n++)
        {
            var exit = g.Vcpu.Run();
            var r = g.Vcpu.GetRegs();
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == EndPort) return (exits, r, memory.GetSpan(0, 0x2000).ToArray());
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == Port && !exit.IoIsOut)
            {
                var data = exit.IoData;
                for (int b = 0; b < data.Length; b++) data[b] = Fill(ioExits, b);
                ioExits++;
                exits.Add(new IoIn(exit.IoSize, exit.IoCount, data.ToArray(), r.rcx, r.rdi, r.rip, r.rflags));
                continue;
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioIsWrite, exit.ToString());
            exits.Add(new MmioWrite(exit.MmioAddress, exit.MmioData.ToArray(), r.rcx, r.rdi, r.rip, r.rflags));
        }
        throw new Xunit.Sdk.XunitException("the guest never reached its end marker");
    }

    /// <summary>Where the INS is (RCX, RDX, RDI and RFLAGS come from KVM_SET_REGS).</summary>
    private const ulong InsRip = LongModeGuest.CodeGpa;

    /// <summary>RIP after the INS (<paramref name="insLength"/> bytes) and the 2-byte OUT of the end marker.</summary>
    private static ulong EndRip(int insLength) => InsRip + (ulong)insLength + 2;

    private static byte Fill(int exit, int b) => (byte)(0x40 + 3 * b + 0x11 * exit);

    /// <summary>
    /// The KVM_EXIT_MMIO pieces of one batch: a fragment per page (emulator_read_write: "Crossing a page boundary?"),
    /// 8 bytes each from its start, the last shorter.
    /// </summary>
    private static IEnumerable<(ulong Gpa, int Length)> Pieces(ulong gpa, int bytes)
    {
        while (bytes > 0)
        {
            int fragment = (int)Math.Min((ulong)bytes, 0x1000 - (gpa & 0xfff));
            for (int at = 0; at < fragment; at += 8) yield return (gpa + (ulong)at, Math.Min(8, fragment - at));
            gpa += (ulong)fragment;
            bytes -= fragment;
        }
    }

    /// <summary>Asserts that <paramref name="exits"/> are one IN batch per entry of <paramref name="batches"/>, each followed by its MMIO pieces carrying the batch's data.</summary>
    private static void AssertBatches(List<Exit> exits, int size, params (ulong Gpa, uint Count)[] batches)
    {
        int at = 0;
        foreach (var (gpa, count) in batches)
        {
            var io = Assert.IsType<IoIn>(exits[at++]);
            Assert.Equal((size, count), (io.Size, io.Count));
            var pieces = Pieces(gpa, (int)count * size).ToList();
            var writes = exits.Skip(at).Take(pieces.Count).ToList();
            Assert.Equal(pieces, writes.Select(w => Assert.IsType<MmioWrite>(w)).Select(w => (w.Gpa, w.Data.Length)));
            Assert.Equal(io.Data, writes.Cast<MmioWrite>().SelectMany(w => w.Data));
            at += pieces.Count;
        }
        Assert.Equal(at, exits.Count);
    }

    [ConformanceCase("emulate.c pio_in_emulated (REP, DF = 0: one OP_MEM_STR write of the batch) → x86.c emulator_read_write / vcpu_mmio_write → complete_emulated_mmio: a REP INSB of 20 bytes into a KVM_MEM_READONLY slot exits KVM_EXIT_IO (count 20, registers unchanged), then KVM_EXIT_MMIO writes of 8, 8 and 4 bytes at consecutive GPAs carrying the IN data; x86_emulate_instruction writes RCX/RDI back before the first (RIP stays on the REP instruction: string_insn_completed; RFLAGS.RF set, as x86_emulate_insn sets it for REP string instructions until they complete), and the slot is unchanged")]
    public static void rep_insb_into_a_read_only_slot_is_written_as_8_byte_mmio_exits(CaseContext ctx)
    {
        ulong dest = ReadOnlyGpa + 0x7F3;
        var (exits, end, ro) = Run(ctx, a => a.rep.insb(), count: 20, destination: dest);
        AssertBatches(exits, 1, (dest, 20));
        Assert.Equal((20UL, dest, InsRip), (exits[0].Rcx, exits[0].Rdi, exits[0].Rip));
        Assert.All(exits.Skip(1), e => Assert.Equal((0UL, dest + 20, InsRip), (e.Rcx, e.Rdi, e.Rip)));
        Assert.Equal((0UL, dest + 20, EndRip(2)), (end.rcx, end.rdi, end.rip));
        // emulate.c x86_emulate_insn sets RF for a REP string instruction and clears it on completion: RF is 0 at the
        // IN exit (no writeback), 1 at the MMIO exits (written back, RIP still on the INS), 0 at the end.
        Assert.Equal(0UL, exits[0].Rflags & Rf);
        Assert.All(exits.Skip(1), e => Assert.Equal(Rf, e.Rflags & Rf));
        Assert.Equal(0UL, end.rflags & Rf);
        Assert.All(ro, b => Assert.Equal(0xEE, b));
    }

    [ConformanceCase("emulate.c pio_in_emulated: batches of min3(in_page, 1024 / size, count) — a REP INSB of 1100 bytes into a GPA without a memslot is a 1024-byte batch written as 128 8-byte KVM_EXIT_MMIO writes, then the REP restarts for 76 bytes (9 pieces of 8, one of 4); RCX/RDI at each piece are those after its batch")]
    public static void rep_insb_into_an_unbacked_gpa_comes_in_1024_byte_batches_of_mmio_pieces(CaseContext ctx)
    {
        var (exits, end, _) = Run(ctx, a => a.rep.insb(), count: 1100, destination: UnbackedGpa);
        AssertBatches(exits, 1, (UnbackedGpa, 1024), (UnbackedGpa + 1024, 76));
        Assert.Equal((1100UL, UnbackedGpa), (exits[0].Rcx, exits[0].Rdi));
        Assert.Equal((76UL, UnbackedGpa + 1024, InsRip), (exits[1].Rcx, exits[1].Rdi, exits[1].Rip));
        Assert.Equal((76UL, UnbackedGpa + 1024), (exits[129].Rcx, exits[129].Rdi));
        Assert.Equal((0UL, UnbackedGpa + 1100, InsRip), (exits[^1].Rcx, exits[^1].Rdi, exits[^1].Rip));
        Assert.Equal((0UL, UnbackedGpa + 1100, EndRip(2)), (end.rcx, end.rdi, end.rip));
    }

    [ConformanceCase("emulate.c pio_in_emulated: in_page counts bytes, not elements — a REP INSW of 600 words 6 bytes before the end of a read-only page reads 6 words, and x86.c emulator_read_write splits their write at the page boundary into two fragments (6 bytes each, one KVM_EXIT_MMIO apiece); then batches of 512 and 82 words in 8-byte pieces")]
    public static void rep_insw_into_a_read_only_slot_splits_a_batch_at_the_page_boundary(CaseContext ctx)
    {
        ulong dest = ReadOnlyGpa + 0xFFA;
        var (exits, end, ro) = Run(ctx, a => a.rep.insw(), count: 600, destination: dest);
        AssertBatches(exits, 2, (dest, 6), (dest + 12, 512), (dest + 12 + 1024, 82));
        Assert.Equal([(dest, 6), (ReadOnlyGpa + 0x1000, 6)], exits.Skip(1).Take(2).Cast<MmioWrite>().Select(w => (w.Gpa, w.Data.Length)));
        Assert.Equal((0UL, dest + 1200, EndRip(3)), (end.rcx, end.rdi, end.rip));
        Assert.All(ro, b => Assert.Equal(0xEE, b));
    }

    [ConformanceCase("emulate.c em_in without REP: INSW into a read-only slot is one KVM_EXIT_IO then one 2-byte KVM_EXIT_MMIO write with RDI advanced and RIP past the instruction (the instruction completed); RCX is untouched")]
    public static void insw_without_rep_into_a_read_only_slot_is_one_mmio_write(CaseContext ctx)
    {
        ulong dest = ReadOnlyGpa + 0x100;
        var (exits, end, _) = Run(ctx, a => a.insw(), count: 9, destination: dest);
        AssertBatches(exits, 2, (dest, 1));
        Assert.Equal((9UL, dest + 2, InsRip + 2), (exits[1].Rcx, exits[1].Rdi, exits[1].Rip));
        Assert.Equal((9UL, dest + 2, EndRip(2)), (end.rcx, end.rdi, end.rip));
    }

    [ConformanceCase("emulate.c pio_in_emulated with DF = 1: elements are written one by one (no OP_MEM_STR); x86.c x86_emulate_instruction takes the first element's MMIO write (mmio_needed) before EMULATION_RESTART, so a REP INSB of 3 into a read-only slot exits IN (count 3), MMIO (1 byte, RCX 2, RDI down by 1), and the rest of the batch is dropped: the next execution decodes afresh (init_decode_cache clears io_read) and asks for 2, then 1")]
    public static void rep_insb_backwards_into_a_read_only_slot_drops_the_rest_of_each_batch(CaseContext ctx)
    {
        ulong dest = ReadOnlyGpa + 0x10;
        var (exits, end, _) = Run(ctx, a => a.rep.insb(), count: 3, destination: dest, df: true);
        Assert.Equal(6, exits.Count);
        Assert.Equal([3u, 2u, 1u], exits.OfType<IoIn>().Select(e => e.Count));
        var writes = exits.OfType<MmioWrite>().ToList();
        Assert.Equal([dest, dest - 1, dest - 2], writes.Select(w => w.Gpa));
        Assert.Equal([Fill(0, 0), Fill(1, 0), Fill(2, 0)], writes.Select(w => Assert.Single(w.Data)));
        Assert.Equal([2UL, 1UL, 0UL], writes.Select(w => w.Rcx));
        Assert.Equal((0UL, dest - 3, EndRip(2)), (end.rcx, end.rdi, end.rip));
    }
}
