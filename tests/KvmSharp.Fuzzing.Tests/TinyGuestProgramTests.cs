// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>What the differential fuzzer's 64-bit guest programs contain (TinyGuestProgram.LongMode), decoded.</summary>
public sealed class TinyGuestProgramTests
{
    [Fact]
    public void Long_mode_programs_draw_outs_of_each_size_with_and_without_rep_but_never_ins()
    {
        var seen = new HashSet<(Mnemonic, bool Rep)>();
        for (ulong seed = 1; seed <= 200; seed++)
        {
            foreach (var i in Decode(TinyGuestProgram.LongMode(seed, 0x100000)))
            {
                Assert.False(i.Mnemonic is Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd, $"seed {seed}: {i}");
                if (i.Mnemonic is Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd) seen.Add((i.Mnemonic, i.HasRepPrefix));
            }
        }
        foreach (var mnemonic in new[] { Mnemonic.Outsb, Mnemonic.Outsw, Mnemonic.Outsd })
        {
            Assert.Contains((mnemonic, true), seen);
            Assert.Contains((mnemonic, false), seen);
        }
    }

    [Fact]
    public void Long_mode_programs_with_string_in_draw_ins_of_each_size_rep_and_direction_inside_the_data_page()
    {
        var seen = new HashSet<(Mnemonic, bool Rep, bool Down)>();
        bool batches = false, zero = false;
        for (ulong seed = 1; seed <= 300; seed++)
        {
            var program = Decode(TinyGuestProgram.LongMode(seed, 0x100000, false, stringIn: true, rings: false, withReported: false, out var entries));
            Assert.Null(entries);
            for (int n = 0; n < program.Count; n++)
            {
                var i = program[n];
                if (i.Mnemonic is not (Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd)) continue;
                // mov edx, port; lea rdi, [r15 + off]; (mov ecx, count); (std); ins; (cld)
                bool down = program[n - 1].Mnemonic == Mnemonic.Std;
                int k = n - (down ? 2 : 1);
                long count = 1;
                if (i.HasRepPrefix)
                {
                    Assert.Equal((Mnemonic.Mov, Register.ECX), (program[k].Mnemonic, program[k].Op0Register));
                    count = program[k--].Immediate32;
                }
                var lea = program[k];
                Assert.Equal((Mnemonic.Lea, Register.RDI, Register.R15), (lea.Mnemonic, lea.Op0Register, lea.MemoryBase));
                Assert.Equal((Mnemonic.Mov, Register.EDX), (program[k - 1].Mnemonic, program[k - 1].Op0Register));
                Assert.InRange(program[k - 1].Immediate32, (uint)TinyGuestProgram.PortBase, (uint)TinyGuestProgram.PortBase + 15);
                if (down) Assert.Equal(Mnemonic.Cld, program[n + 1].Mnemonic);
                // Every element inside the data page, whichever way rDI walks.
                int size = i.Mnemonic switch { Mnemonic.Insb => 1, Mnemonic.Insw => 2, _ => 4 };
                long first = (long)lea.MemoryDisplacement64, span = Math.Max(count, 1) * size;
                long low = down ? first - span + size : first, high = down ? first + size : first + span;
                Assert.True(low >= 0 && high <= 0x1000, $"seed {seed}: {i} at r15+0x{first:X} count {count}");
                seen.Add((i.Mnemonic, i.HasRepPrefix, down));
                batches |= count * size > 1024;
                zero |= i.HasRepPrefix && count == 0;
            }
        }
        foreach (var mnemonic in new[] { Mnemonic.Insb, Mnemonic.Insw, Mnemonic.Insd })
            foreach (bool rep in new[] { false, true })
                foreach (bool down in new[] { false, true })
                    Assert.Contains((mnemonic, rep, down), seen);
        Assert.True(batches, "no REP INS longer than the 1024-byte read-ahead buffer");
        Assert.True(zero, "no REP INS with RCX = 0");
    }

    [Fact]
    public void Ins_and_ring_changes_come_from_streams_of_their_own()
    {
        // The seed's own instructions are a subsequence of the program with INS and ring changes.
        for (ulong seed = 1; seed <= 100; seed++)
        {
            var plain = Decode(TinyGuestProgram.LongMode(seed, 0x100000)).Select(i => i.Code).ToList();
            var more = Decode(TinyGuestProgram.LongMode(seed, 0x100000, false, stringIn: true, rings: true, withReported: true, out _)).Select(i => i.Code).ToList();
            plain.RemoveAt(plain.Count - 1); // the last HLT: ring programs add their handlers after it
            int at = 0;
            foreach (var code in more) if (at < plain.Count && code == plain[at]) at++;
            Assert.True(at == plain.Count, $"seed {seed}: the plain program's instruction {at} ({plain[Math.Min(at, plain.Count - 1)]}) is missing");
        }
    }

    [Fact]
    public void Ring_programs_go_to_ring_3_by_iretq_or_sysretq_and_back_by_a_fault_without_port_io_at_cpl_3()
    {
        var back = new HashSet<string>();
        var to = new HashSet<Mnemonic>();
        int ringPrograms = 0;
        for (ulong seed = 1; seed <= 300; seed++)
        {
            byte[] code = TinyGuestProgram.LongMode(seed, 0x100000, false, stringIn: true, rings: true, withReported: false, out var entries);
            Assert.Equal(TinyGuestProgram.RingStream(seed) is not null, entries is not null);
            if (entries is null) continue;
            ringPrograms++;
            var program = Decode(code);
            var ips = program.Select(i => i.IP + 0x100000).ToHashSet();
            Assert.True(ips.IsSupersetOf([entries.Handler, entries.GpHandler, entries.PfHandler, entries.SyscallEntry]), $"seed {seed}: {entries}");
            bool user = false;
            for (int n = 0; n < program.Count; n++)
            {
                var i = program[n];
                if (i.IP + 0x100000 >= entries.Handler) break;
                if (i.Mnemonic is Mnemonic.Iretq or Mnemonic.Sysretq)
                {
                    Assert.False(user);
                    user = true;
                    to.Add(i.Mnemonic);
                    // The image: CS 0x33 and SS 0x2B (IRETQ pushes them), RFLAGS with IF and IOPL 0.
                    ulong flags = i.Mnemonic == Mnemonic.Iretq ? program[n - 4].GetImmediate(0) : program[n - 1].GetImmediate(1);
                    Assert.Equal(0x202UL, flags & 0x3302);
                    if (i.Mnemonic == Mnemonic.Iretq)
                        Assert.Equal((0x2BUL, 0x33UL), (program[n - 6].GetImmediate(0), program[n - 3].GetImmediate(0)));
                    continue;
                }
                if (!user) continue;
                Assert.False(i.Mnemonic is Mnemonic.In or Mnemonic.Out or Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd
                    or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd or Mnemonic.Int or Mnemonic.Int3 or Mnemonic.Syscall, $"seed {seed}: {i} at CPL 3");
                if (i.Mnemonic == Mnemonic.Hlt)
                {
                    back.Add("hlt");
                    user = false;
                }
                else if (i.MemoryBase == Register.R14 && i.MemoryDisplacement64 >= 0x20_0000)
                {
                    // The #PF path: a 7-byte load or store the handler skips.
                    Assert.Equal(7, i.Length);
                    back.Add(i.Op0Kind == Iced.Intel.OpKind.Memory ? "store" : "load");
                    user = false;
                }
            }
            Assert.False(user, $"seed {seed}: the program stays at CPL 3");
        }
        Assert.InRange(ringPrograms, 60, 140);
        Assert.Equal(new HashSet<Mnemonic> { Mnemonic.Iretq, Mnemonic.Sysretq }, to);
        Assert.Equal(new HashSet<string> { "hlt", "load", "store" }, back);
    }

    [Fact]
    public void Software_interrupts_and_syscall_at_cpl_3_are_drawn_only_with_reported_divergences()
    {
        var seen = new HashSet<Mnemonic>();
        for (ulong seed = 1; seed <= 300; seed++)
        {
            byte[] without = TinyGuestProgram.LongMode(seed, 0x100000, false, stringIn: true, rings: true, withReported: false, out var entries);
            if (entries is null) continue;
            Assert.DoesNotContain(Decode(without).TakeWhile(i => i.IP + 0x100000 < entries.Handler),
                i => i.Mnemonic is Mnemonic.Int or Mnemonic.Int3 or Mnemonic.Syscall);
            byte[] with = TinyGuestProgram.LongMode(seed, 0x100000, false, stringIn: true, rings: true, withReported: true, out entries);
            seen.UnionWith(Decode(with).TakeWhile(i => i.IP + 0x100000 < entries!.Handler).Select(i => i.Mnemonic));
        }
        Assert.Superset(new HashSet<Mnemonic> { Mnemonic.Int, Mnemonic.Int3, Mnemonic.Syscall }, seen);
    }

    private static List<Instruction> Decode(byte[] code)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code));
        var list = new List<Instruction>();
        while (decoder.IP < (ulong)code.Length) list.Add(decoder.Decode());
        return list;
    }
}
