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

    private static List<Instruction> Decode(byte[] code)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code));
        var list = new List<Instruction>();
        while (decoder.IP < (ulong)code.Length) list.Add(decoder.Decode());
        return list;
    }
}
