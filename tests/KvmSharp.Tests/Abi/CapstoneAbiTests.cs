// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Disassembly;

namespace KvmSharp.Tests.Abi;

/// <summary>
/// The capstone 4 binding (Disassembly/CapstoneNative.cs): its numbers and the <c>cs_insn</c> layout against capstone
/// 4.0.2's include/capstone/capstone.h (offsets as gcc lays the struct out: offsetof over that header gave id 0,
/// address 8, size 16, bytes 18, mnemonic 34, op_str 66, detail 232, sizeof 240), and the engine's handle lifetime on
/// the library itself (package libcapstone4; the tests that need it skip without it).
/// </summary>
public sealed class CapstoneAbiTests
{
    private const string Missing = "the library libcapstone.so.4 (package libcapstone4) is not installed";

    [Fact]
    public void The_numbers_are_capstone_4s()
    {
        Assert.Equal("libcapstone.so.4", CapstoneNative.LibraryName);
        Assert.Equal(1, CapstoneNative.CS_ARCH_ARM64); // enum cs_arch: CS_ARCH_ARM = 0, CS_ARCH_ARM64
        Assert.Equal(0, CapstoneNative.CS_MODE_LITTLE_ENDIAN);
        Assert.Equal(2, CapstoneNative.CS_OPT_DETAIL); // enum cs_opt_type: CS_OPT_INVALID, CS_OPT_SYNTAX, CS_OPT_DETAIL
        Assert.Equal(32, CapstoneNative.CS_MNEMONIC_SIZE);
        Assert.Equal(1, (int)CapstoneArchitecture.Arm64);
        Assert.Equal(0, (int)CapstoneMode.LittleEndian);
    }

    [Theory]
    [InlineData(nameof(CsInsn.id), 0)]
    [InlineData(nameof(CsInsn.address), 8)]
    [InlineData(nameof(CsInsn.size), 16)]
    [InlineData(nameof(CsInsn.bytes), 18)]
    [InlineData(nameof(CsInsn.mnemonic), 34)]
    [InlineData(nameof(CsInsn.op_str), 66)]
    [InlineData(nameof(CsInsn.detail), 232)]
    public void Cs_insn_field_is_at_the_capstone_4_offset(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<CsInsn>(field));

    [Fact]
    public void Cs_insn_is_240_bytes() => Assert.Equal(240, Unsafe.SizeOf<CsInsn>());

    [Fact]
    public void A_missing_or_foreign_library_is_refused_without_an_exception()
    {
        Assert.False(Capstone.IsAvailable("libcapstone-missing.so.4"));
        Assert.Null(Capstone.LibraryVersion("libcapstone-missing.so.4"));
        Assert.False(Capstone.TryOpen(CapstoneArchitecture.Arm64, CapstoneMode.LittleEndian, out Capstone? engine, "libcapstone-missing.so.4"));
        Assert.Null(engine);
        // libc loads but exports no cs_open: refused.
        Assert.False(Capstone.IsAvailable("libc.so.6"));
    }

    [SkippableFact]
    public void The_library_is_capstone_4()
    {
        Skip.IfNot(Capstone.IsAvailable(), Missing);
        Assert.Equal(4, Capstone.LibraryVersion()!.Value.Major);
    }

    [SkippableFact]
    public void An_engine_decodes_one_word_at_the_given_address()
    {
        Skip.IfNot(Capstone.IsAvailable(), Missing);
        Assert.True(Capstone.TryOpen(CapstoneArchitecture.Arm64, CapstoneMode.LittleEndian, out Capstone? engine));
        using (engine)
        {
            // BL with imm26 = 0x10 at 0x1000: the target 0x1000 + 0x40 (Arm ARM C6.2.34).
            Assert.True(engine.TryDisassembleOne([0x10, 0x00, 0x00, 0x94], 0x1000, out CapstoneInstruction bl));
            Assert.Equal(new CapstoneInstruction(bl.Id, 0x1000, 4, "bl", "#0x1040"), bl);
            Assert.Equal("bl #0x1040", bl.ToString());
            Assert.True(engine.TryDisassembleOne([0xC0, 0x03, 0x5F, 0xD6], 0, out CapstoneInstruction ret));
            Assert.Equal("ret", ret.ToString()); // capstone leaves a trailing space in op_str: trimmed
            Assert.Equal(0, engine.LastError);
            // UDF #0: capstone 4 has no encoding for it.
            Assert.False(engine.TryDisassembleOne([0, 0, 0, 0], 0, out _));
            Assert.False(engine.TryDisassembleOne([], 0, out _));
        }
    }

    [SkippableFact]
    public void Disposing_an_engine_closes_its_handle_and_none_is_left_open()
    {
        Skip.IfNot(Capstone.IsAvailable(), Missing);
        int before = CapstoneHandle.Live;
        var engines = new List<Capstone>();
        for (int i = 0; i < 50; i++)
        {
            Assert.True(Capstone.TryOpen(CapstoneArchitecture.Arm64, CapstoneMode.LittleEndian, out Capstone? engine));
            Assert.True(engine.TryDisassembleOne([0x1F, 0x20, 0x03, 0xD5], 0, out CapstoneInstruction nop));
            Assert.Equal("nop", nop.Mnemonic);
            engines.Add(engine);
        }
        Assert.Equal(before + 50, CapstoneHandle.Live);
        foreach (Capstone engine in engines)
        {
            engine.Dispose();
            Assert.True(engine.Handle.IsClosed);
            engine.Dispose(); // twice is harmless
            Assert.Throws<ObjectDisposedException>(() => engine.TryDisassembleOne([0x1F, 0x20, 0x03, 0xD5], 0, out _));
        }
        // Every cs_close returned CS_ERR_OK (a failed one leaves the count up).
        Assert.Equal(before, CapstoneHandle.Live);
    }
}
