// SPDX-License-Identifier: MIT
using System.ComponentModel;
using System.Globalization;
using System.Text.RegularExpressions;
using KvmSharp.Disassembly;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="A64Disassembler"/>: arm64 trace lines disassembled by capstone 4 (libcapstone.so.4, package libcapstone4),
/// checked against GNU objdump (aarch64-linux-gnu-objdump, the oracle) on words GNU as assembled; the ".inst 0x…"
/// fallback for words capstone 4 does not decode and for a machine without the library. Tests that need capstone, or
/// binutils-aarch64-linux-gnu, skip with the reason when it is missing.
/// </summary>
public sealed partial class A64DisassemblyTests
{
    private const string NoCapstone = "the library libcapstone.so.4 (package libcapstone4) is not installed";

    private const string MissingLibrary = "libcapstone-missing.so.4";

    /// <summary>ARMv8.0 base (integer, loads and stores, exclusives, branches, system), FP/SIMD, CRC32 and AES.</summary>
    private const string Source = """
        add x0, x0, x1
        add w3, w4, #12
        sub x0, x0, #1
        subs x1, x2, x3, lsl #4
        cmp x0, #5
        mov x0, #5
        movz x9, #0x900, lsl #16
        movk x9, #0x1234, lsl #32
        mov x0, #-1
        mov x1, x2
        mov x0, sp
        and x0, x1, #0xff
        orr w2, w3, w4
        eor x5, x6, x7, ror #3
        tst x0, #1
        lsl x0, x1, #3
        asr x2, x3, x4
        ror x0, x1, #3
        ubfx x0, x1, #4, #8
        sxtw x0, w1
        uxtb w0, w1
        neg x0, x1
        mvn w0, w1
        ngc x0, x1
        cmn w0, #1
        madd x0, x1, x2, x3
        mul x0, x1, x2
        udiv w0, w1, w2
        ldr x0, [x1]
        ldr x0, [x1, #8]
        ldr w2, [x3, x4, lsl #2]
        ldrb w0, [x1], #1
        ldrh w0, [x1, #2]!
        ldrsw x0, [x1, #4]
        ldur x0, [x1, #-3]
        strb w0, [x9]
        str x0, [sp, #-16]!
        stp x29, x30, [sp, #-16]!
        ldp x29, x30, [sp], #16
        ldxr x0, [x1]
        stxr w2, x0, [x1]
        ldar x0, [x1]
        stlr w0, [x1]
        prfm pldl1keep, [x0]
        ret
        br x16
        blr x8
        b 1f
        bl 1f
        b.eq 1f
        b.ne 1f
        cbz x0, 1f
        cbnz w1, 1f
        tbz x0, #3, 1f
        tbnz w0, #31, 1f
        adr x0, 1f
        1:
        b 1b
        bl 1b
        b.lt 1b
        nop
        hvc #0
        svc #0
        brk #0x1234
        wfi
        isb
        dsb sy
        dmb ish
        mrs x0, sctlr_el1
        msr vbar_el1, x0
        msr daifset, #2
        tlbi vmalle1
        ic iallu
        dc civac, x0
        at s1e1r, x0
        eret
        csel x0, x1, x2, eq
        csinc w0, w1, w2, ne
        cset x0, lt
        clz x0, x1
        rev w0, w1
        fmov d0, x1
        fadd d0, d1, d2
        fmul s0, s1, s2
        fcvtzs x0, d1
        scvtf d0, x1
        ldr q0, [x1]
        add v0.4s, v1.4s, v2.4s
        dup v0.16b, w1
        ld1 {v0.16b}, [x0]
        crc32b w0, w1, w2
        aese v0.16b, v1.16b
        """;

    /// <summary>Where objdump places the words (--adjust-vma): PC-relative targets are absolute from here.</summary>
    private const ulong Base = 0x40_0000;

    private sealed record Line(ulong Pc, uint Word, string Mnemonic, string Operands);

    [GeneratedRegex(@"^\s*([0-9a-f]+):\s+([0-9a-f]{8})\s+(\S+)\s*(.*)$")]
    private static partial Regex ObjdumpLine();

    [GeneratedRegex(@"#(-?)(0x[0-9a-f]+|[0-9]+)")]
    private static partial Regex Immediate();

    /// <summary>
    /// <paramref name="source"/> assembled by aarch64-linux-gnu-as -march=<paramref name="march"/> and disassembled by
    /// aarch64-linux-gnu-objdump -d at <see cref="Base"/>; skips when binutils-aarch64-linux-gnu is missing.
    /// </summary>
    private static List<Line> Objdump(string source, string march)
    {
        string dir = Directory.CreateTempSubdirectory("kvmsharp-a64dis").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "t.s"), source + "\n");
            string listing;
            try
            {
                GccBuild.Run("aarch64-linux-gnu-as", [$"-march={march}", "-o", "t.o", "t.s"], dir);
                listing = GccBuild.Run("aarch64-linux-gnu-objdump", ["-d", $"--adjust-vma=0x{Base:x}", "t.o"], dir);
            }
            catch (Win32Exception e) // the process could not start: the tool is not installed
            {
                throw new SkipException($"aarch64-linux-gnu-as/objdump (package binutils-aarch64-linux-gnu) is not available: {e.Message}");
            }
            var lines = new List<Line>();
            foreach (string text in listing.Split('\n'))
            {
                Match m = ObjdumpLine().Match(text);
                if (!m.Success) continue;
                lines.Add(new Line(ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    uint.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture), m.Groups[3].Value, m.Groups[4].Value.Trim()));
            }
            return lines;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static readonly HashSet<string> PcRelative = new(StringComparer.Ordinal) { "b", "bl", "cbz", "cbnz", "tbz", "tbnz", "adr", "adrp" };

    /// <summary>
    /// objdump's operands in capstone's spelling: no "// comment" nor "&lt;symbol&gt;", a PC-relative target as "#0x…",
    /// lower case, every immediate in decimal (objdump prints "#0x1" where capstone prints "#1", and the reverse).
    /// </summary>
    private static string NormaliseObjdump(string mnemonic, string operands)
    {
        int comment = operands.IndexOf("//", StringComparison.Ordinal);
        if (comment >= 0) operands = operands[..comment];
        operands = Regex.Replace(operands, @"\s*<[^>]*>", "").Trim();
        if (PcRelative.Contains(mnemonic) || mnemonic.StartsWith("b.", StringComparison.Ordinal))
        {
            int last = operands.LastIndexOf(' ') + 1;
            operands = operands[..last] + "#0x" + operands[last..];
        }
        return Normalise(operands);
    }

    private static string Normalise(string operands) =>
        Immediate().Replace(operands.ToLowerInvariant().Trim(), m =>
        {
            string digits = m.Groups[2].Value;
            ulong value = digits.StartsWith("0x", StringComparison.Ordinal)
                ? ulong.Parse(digits[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)
                : ulong.Parse(digits, CultureInfo.InvariantCulture);
            return "#" + m.Groups[1].Value + value.ToString(CultureInfo.InvariantCulture);
        });

    private static string Mnemonic(string text) => text.Split(' ', 2)[0];

    private static string Operands(string text) => text.Contains(' ', StringComparison.Ordinal) ? text.Split(' ', 2)[1] : "";

    [SkippableFact]
    public void Capstone_agrees_with_objdump_on_each_words_mnemonic_and_operands()
    {
        Skip.IfNot(A64Disassembler.IsAvailable, NoCapstone);
        List<Line> lines = Objdump(Source, "armv8-a+crc+crypto");
        Assert.True(lines.Count >= 90, $"objdump listed {lines.Count} words");
        var differences = new List<string>();
        int operandsCompared = 0;
        foreach (Line line in lines)
        {
            Assert.True(A64Disassembler.TryFormat(line.Word, line.Pc, out string text), $"0x{line.Word:x8} ({line.Mnemonic} {line.Operands}): {text}");
            string mnemonic = Mnemonic(text);
            // The one alias the two print differently: objdump's "mov x0, #5" is capstone's "movz x0, #0x5" (and
            // "mov x0, #-1" its "movn x0, #0"): MOV (wide immediate) is an alias of MOVZ/MOVN, Arm ARM C6.2.191/192.
            if (line.Mnemonic == "mov" && mnemonic is "movz" or "movn")
            {
                Assert.Equal(NormaliseObjdump(line.Mnemonic, line.Operands), MoveWideValue(mnemonic, Operands(text)));
                operandsCompared++;
                continue;
            }
            if (mnemonic != line.Mnemonic)
            {
                differences.Add($"0x{line.Word:x8}: objdump {line.Mnemonic}, capstone {mnemonic}");
                continue;
            }
            string expected = NormaliseObjdump(line.Mnemonic, line.Operands);
            if (expected != Normalise(Operands(text))) differences.Add($"0x{line.Word:x8}: objdump {line.Mnemonic} {expected}, capstone {text}");
            else operandsCompared++;
        }
        Assert.True(differences.Count == 0, string.Join("\n", differences));
        Assert.Equal(lines.Count, operandsCompared);
    }

    /// <summary>capstone's "x9, #0x900, lsl #16" (MOVZ) or "x0, #0" (MOVN) as objdump prints the MOV alias: "x9, #150994944".</summary>
    private static string MoveWideValue(string mnemonic, string operands)
    {
        string[] parts = operands.Split(", ");
        ulong imm = ulong.Parse(Normalise(parts[1])[1..], CultureInfo.InvariantCulture);
        int shift = parts.Length > 2 ? int.Parse(Normalise(parts[2])["lsl #".Length..], CultureInfo.InvariantCulture) : 0;
        ulong value = imm << shift;
        if (mnemonic == "movn") value = parts[0].StartsWith('w') ? ~value & 0xFFFF_FFFF : ~value;
        return $"{parts[0]}, #{value.ToString(CultureInfo.InvariantCulture)}";
    }

    [SkippableFact]
    public void A_pc_relative_branch_shows_its_target_from_the_pc()
    {
        Skip.IfNot(A64Disassembler.IsAvailable, NoCapstone);
        // BL imm26 = 0x10: PC + 0x40; B.EQ imm19 = -2: PC - 8; CBZ x1 imm19 = 6: PC + 0x18; ADRP x0 imm = 1: the PC's
        // 4 KiB page + 0x1000 (Arm ARM C6.2.34, C6.2.26, C6.2.47, C6.2.11). GNU as leaves ADRP to the linker (a
        // relocation), so it has no place in the objdump comparison.
        Assert.Equal("bl #0x100040", A64Disassembler.Format(0x9400_0010, 0x10_0000));
        Assert.Equal("bl #0x40", A64Disassembler.Format(0x9400_0010, 0));
        Assert.Equal("b.eq #0x100ff8", A64Disassembler.Format(0x54FF_FFC0, 0x10_1000));
        Assert.Equal("cbz x1, #0x100030", A64Disassembler.Format(0xB400_00C1, 0x10_0018));
        Assert.Equal("adrp x0, #0x101000", A64Disassembler.Format(0xB000_0000, 0x10_0123));
        Assert.True(A64Disassembler.TryFormat(0x8B01_0000, 0, out string add));
        Assert.Equal("add x0, x0, x1", add);
    }

    [SkippableFact]
    public void A_word_capstone_4_does_not_decode_is_shown_as_its_word()
    {
        Skip.IfNot(A64Disassembler.IsAvailable, NoCapstone);
        List<Line> lines = Objdump("ptrue p0.d\nld1d {z0.d}, p0/z, [x0]\nldadd x0, x1, [x2]\nfadd h0, h1, h2\nudf #0", "armv8.2-a+sve+fp16");
        // SVE, the ARMv8.1 atomics (LSE), FP16 and UDF: GNU objdump decodes them, capstone 4 does not.
        Assert.Equal(["ptrue", "ld1d", "ldadd", "fadd", "udf"], lines.Select(l => l.Mnemonic));
        foreach (Line line in lines)
        {
            Assert.False(A64Disassembler.TryFormat(line.Word, line.Pc, out string text), $"{line.Mnemonic}: {text}");
            Assert.Equal($".inst 0x{line.Word:x8}", text);
            Assert.Equal(text, A64Disassembler.Format(line.Word, line.Pc));
        }
    }

    [Fact]
    public void Without_the_library_every_word_is_shown_as_its_word()
    {
        using var engine = new A64DisassemblerEngine(MissingLibrary);
        Assert.False(engine.IsAvailable);
        Assert.Null(engine.Capstone);
        Assert.False(engine.TryFormat(0x8B01_0000, 0x10_0000, out string text));
        Assert.Equal(".inst 0x8b010000", text);
        Assert.Equal(".inst 0xd65f03c0", engine.Format(0xD65F_03C0, 0));
        var traced = new TracedInstruction(0x10_0000, new byte[] { 0x00, 0x00, 0x01, 0x8B }) { Architecture = GuestArchitecture.Arm64 };
        Assert.Equal(".inst 0x8b010000", traced.DisassembleWith(engine));
        Assert.Equal("(bad)", (traced with { Bytes = new byte[] { 1, 2 } }).DisassembleWith(engine));
        Assert.Equal("(not readable)", (traced with { Bytes = ReadOnlyMemory<byte>.Empty }).DisassembleWith(engine));
        // x86 is Iced's either way.
        Assert.Equal("nop", new TracedInstruction(0x10_0000, new byte[] { 0x90 }).DisassembleWith(engine));
    }

    [SkippableFact]
    public void With_the_library_the_same_trace_line_is_disassembled()
    {
        Skip.IfNot(A64Disassembler.IsAvailable, NoCapstone);
        var traced = new TracedInstruction(0x10_0000, new byte[] { 0x00, 0x00, 0x01, 0x8B }) { Architecture = GuestArchitecture.Arm64 };
        Assert.Equal("add x0, x0, x1", traced.Disassembly);
        Assert.Equal("0x100000  add x0, x0, x1", traced.ToString());
        using var missing = new A64DisassemblerEngine(MissingLibrary);
        Assert.Equal(".inst 0x8b010000", traced.DisassembleWith(missing));
    }

    [SkippableFact]
    public void Disposing_an_engine_closes_its_capstone_handle()
    {
        Skip.IfNot(A64Disassembler.IsAvailable, NoCapstone);
        var engine = new A64DisassemblerEngine(Capstone.DefaultLibraryName);
        Assert.Equal("nop", engine.Format(0xD503_201F, 0));
        CapstoneHandle handle = engine.Capstone!.Handle;
        Assert.False(handle.IsClosed);
        engine.Dispose();
        Assert.True(handle.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => engine.Format(0xD503_201F, 0));
        // An engine never used opens nothing, and disposing it closes nothing.
        var unused = new A64DisassemblerEngine(Capstone.DefaultLibraryName);
        unused.Dispose();
        // The process's engine is another one, still open.
        Assert.Equal("nop", A64Disassembler.Format(0xD503_201F, 0));
    }

    [SkippableFact]
    public void Formatting_from_many_threads_at_once_gives_each_its_own_text()
    {
        Skip.IfNot(A64Disassembler.IsAvailable, NoCapstone);
        // One csh is not thread-safe; Capstone serialises its calls. Each thread formats its own branch target.
        Parallel.For(0, 64, i =>
        {
            ulong pc = 0x10_0000 + (ulong)i * 0x1000;
            for (int k = 0; k < 200; k++) Assert.Equal($"bl #0x{pc + 0x40:x}", A64Disassembler.Format(0x9400_0010, pc));
        });
    }

    [SkippableFact]
    public void An_arm64_micro_vm_trace_shows_each_instruction_disassembled()
    {
        Skip.IfNot(A64Disassembler.IsAvailable, NoCapstone);
        Arm64Kernel.Run(kvm => TraceShowsDisassembly(kvm));
    }

    private static void TraceShowsDisassembly(Kvm kvm)
    {
        var p = new Arm64Program();
        var a = p.Asm;
        var start = p.Export("_start");
        var twice = p.Export("twice_plus7");
        var helper = a.CreateLabel();
        a.Bind(start);
        p.ExitWith(0);
        a.Bind(helper);
        a.AddImm(X(0), X(0), 7);
        a.Ret();
        a.Bind(twice);
        a.Mov(X(10), X(30));
        a.Add(X(0), X(0), X(0));
        a.Bl(helper);
        a.Mov(X(30), X(10));
        a.Ret();
        GuestImage image = p.Build(start);
        using var vm = MicroVm.Create(image, Arm64Kernel.Options(kvm) with { TraceInstructions = 1000 });
        CallResult r = vm.Call("twice_plus7", 5);
        Assert.Equal(17UL, r.Value);
        var lines = r.Trace!.Instructions.Select(i => i.ToString()).ToList();
        string show = string.Join("\n", lines);
        ulong f = image.Resolve("twice_plus7");
        ulong h = f - 8; // the helper's two words stand right before the function
        Assert.True(lines.Contains($"0x{f:X}  mov x10, x30"), show);
        Assert.True(lines.Contains($"0x{f + 4:X}  add x0, x0, x0"), show);
        Assert.True(lines.Contains($"0x{f + 8:X}  bl #0x{h:x}"), show);
        Assert.True(lines.Contains($"0x{h:X}  add x0, x0, #7"), show);
        Assert.True(lines.Contains($"0x{h + 4:X}  ret"), show);
        Assert.True(lines.Contains($"0x{f + 16:X}  ret"), show);
        Assert.Contains(lines, l => l.EndsWith("  blr x16", StringComparison.Ordinal)); // the trampoline's call
        // Every word of this trace is ARMv8.0 base: none falls back to ".inst".
        Assert.DoesNotContain(lines, l => l.Contains(".inst", StringComparison.Ordinal));
    }
}
