// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// CASP/CASPA/CASPL/CASPAL (FEAT_LSE compare and swap pair: A64Interpreter.Exclusive.cs CompareAndSwapPair) against
/// qemu-aarch64 -cpu max (case strings and a compiled-C 128-bit compare-and-swap loop, digests bit for bit), its
/// UNDEFINED encodings (odd Rs or Rt, Rt2 ≠ 11111: SIGILL under qemu too) and alignment; and LDTR*/STTR*
/// (A64Interpreter.Unprivileged.cs): their data against qemu (where user mode makes them ordinary loads and stores),
/// and their EL1 permission rules (EL0 permissions, no PAN, unless PSTATE.UAO = 1) checked by hand from the
/// pseudocode, which qemu's user mode cannot show.
/// </summary>
public class Arm64CaspUnprivilegedTests
{
    // ---- CASP against qemu: case strings (x11 = the data window, x13 = the zeroed 1 KiB scratch buffer) ----

    /// <summary>
    /// x4–x7 and x30 are not the harness's to clobber: kept in v5–v7 (clobbered z5–z7) around each case, and zeroed
    /// (the compiler left different values in the hosted and the guest builds).
    /// </summary>
    private const string Save = "mov v5.d[0], x4\nmov v5.d[1], x5\nmov v6.d[0], x6\nmov v6.d[1], x7\nmov v7.d[0], x30\n" +
        "mov x4, #0\nmov x5, #0\nmov x6, #0\nmov x7, #0\nmov x30, #0\n";

    /// <summary>Rs into v0 (x4, and x5 ^ x30: x30 is 0 unless a case uses it), then x4–x7 and x30 back.</summary>
    private const string Out = "\nmov v0.d[0], x4\neor x11, x5, x30\nmov v0.d[1], x11\nmov x4, v5.d[0]\nmov x5, v5.d[1]\nmov x6, v6.d[0]\nmov x7, v6.d[1]\nmov x30, v7.d[0]";

    /// <summary>x4:x5 = the window's first 16 bytes (the compare value), x6:x7 the next 16 (the new value).</summary>
    private const string Load = "ldp x4, x5, [x11]\nldp x6, x7, [x11, #16]\n";

    private static readonly string[] CaspCases =
    [
        // Success: memory holds the compare value; it becomes x7:x6, x4:x5 get the old value (= the compare value).
        Load + "stp x4, x5, [x13]\ncasp x4, x5, x6, x7, [x13]",
        Load + "stp x4, x5, [x13, #48]\nadd x13, x13, #48\ncaspa x4, x5, x6, x7, [x13]",
        Load + "add x13, x13, #512\nstp x4, x5, [x13]\ncaspl x4, x5, x6, x7, [x13]",
        Load + "add x13, x13, #1008\nstp x4, x5, [x13]\ncaspal x4, x5, x6, x7, [x13]",
        // Failure: both halves differ, only the low, only the high: memory unchanged, x4:x5 = memory.
        Load + "ldr q3, [x11, #32]\nstr q3, [x13]\ncasp x4, x5, x6, x7, [x13]",
        Load + "str x6, [x13]\nstr x5, [x13, #8]\ncaspa x4, x5, x6, x7, [x13]",
        Load + "str x4, [x13]\nstr x6, [x13, #8]\ncaspl x4, x5, x6, x7, [x13]",
        Load + "stp x4, x5, [x13]\neor x11, x5, #0x8000000000000000\nstr x11, [x13, #8]\ncaspal x4, x5, x6, x7, [x13]",
        // Twice: the first succeeds, the second (the same compare value) fails and reads the new value.
        Load + "stp x4, x5, [x13]\ncasp x4, x5, x6, x7, [x13]\ncasp x4, x5, x6, x7, [x13]",
        // 32-bit pairs: 8 bytes, W results zero-extend (x4/x5 start with non-zero upper halves).
        Load + "stp w4, w5, [x13]\ncasp w4, w5, w6, w7, [x13]",
        Load + "stp w4, w5, [x13, #8]\nadd x13, x13, #8\ncaspa w4, w5, w6, w7, [x13]",
        Load + "stp w5, w4, [x13]\ncaspl w4, w5, w6, w7, [x13]",
        Load + "str w4, [x13]\ncaspal w4, w5, w6, w7, [x13]",
        Load + "stp w4, w5, [x13]\ncaspal w4, w5, w6, w7, [x13]\ncasp w4, w5, w6, w7, [x13]",
        // Rs = x30: the pair is x30:xzr (the compare's high half is 0; the old high half is discarded).
        "ldr x30, [x11]\nldp x6, x7, [x11, #16]\nstr x30, [x13]\ncasp x30, xzr, x6, x7, [x13]",
        "ldr x30, [x11]\nldp x6, x7, [x11, #16]\nstp x30, x7, [x13]\ncasp x30, xzr, x6, x7, [x13]",
        // Rt = x30: the new value is xzr:x30.
        Load + "ldr x30, [x11, #40]\nstp x4, x5, [x13]\ncasp x4, x5, x30, xzr, [x13]",
        "ldr w30, [x11]\nldp x6, x7, [x11, #16]\nstr w30, [x13]\ncaspal w30, wzr, w6, w7, [x13]",
    ];

    /// <summary>
    /// LDTR*/STTR* at EL0 under qemu's user mode, and at EL1 with the MMU off in the emulator: ordinary accesses (all
    /// aligned: with the MMU off every data access is Device-nGnRnE, where an unaligned one faults).
    /// </summary>
    private static readonly string[] UnprivilegedCases =
    [
        "ldtr x11, [x11]\nfmov d0, x11",
        "ldtr x11, [x11, #248]\nfmov d0, x11",
        "add x11, x11, #256\nldtr x11, [x11, #-256]\nfmov d0, x11",
        "ldr x13, [x11, #8]\nldtr w13, [x11, #4]\nfmov d0, x13",
        "ldtrb w11, [x11, #7]\nfmov d0, x11",
        "ldtrh w11, [x11, #10]\nfmov d0, x11",
        "ldtrsb x11, [x11, #5]\nfmov d0, x11",
        "ldtrsb w11, [x11, #6]\nfmov d0, x11",
        "ldtrsh x11, [x11, #10]\nfmov d0, x11",
        "add x11, x11, #64\nldtrsh w11, [x11, #-2]\nfmov d0, x11",
        "ldtrsw x11, [x11, #12]\nfmov d0, x11",
        "ldr x11, [x11]\nsttrb w11, [x13, #255]",
        "ldr x11, [x11]\nadd x13, x13, #512\nsttrh w11, [x13, #-4]",
        "ldr x11, [x11]\nsttr w11, [x13, #20]",
        "ldr x11, [x11]\nadd x13, x13, #512\nsttr x11, [x13, #-256]",
    ];

    private static readonly string[] Cases = [.. CaspCases.Select(c => Save + c + Out), .. UnprivilegedCases];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Built = new(() => Arm64SveBf16Tests.Build(Cases, "casp-ldtr"));

    [SkippableTheory]
    [InlineData("neoverse-v2")]
    [InlineData("neoverse-v1")]
    public void Casp_and_ldtr_sttr_give_what_qemu_gives(string preset) =>
        Arm64Sve2Tests.CompareWithQemu(Built.Value, Arm64SveBf16Tests.Names(Cases), 128, Preset(preset));

    // ---- CASP in compiled C ----

    /// <summary>
    /// A lock-free 128-bit update loop (read, compute, compare-and-swap until it sticks) and a chain of
    /// compare-and-swaps that fail and succeed. gcc 12 turns __sync_val_compare_and_swap on an unsigned __int128 into
    /// CASPAL with LSE (-march=armv9-a); its __atomic_compare_exchange_n on 16 bytes calls libatomic instead.
    /// </summary>
    private const string CaspC = """
        typedef unsigned __int128 u128;
        static u128 cells[8] __attribute__((aligned(16)));
        __attribute__((noinline)) static u128 cas128(u128 *p, u128 expect, u128 desired) { return __sync_val_compare_and_swap(p, expect, desired); }
        __attribute__((noinline)) static uint64_t casp0(void)
        {
            uint64_t h = 0;
            for (int i = 0; i < 8; i++) cells[i] = (u128)A[i] << 64 | B[i];
            for (int i = 0; i < 200; i++)
            {
                u128 *p = &cells[i & 7], old = *p, seen;
                for (;;)
                {
                    u128 next = old * 0x9E3779B97F4A7C15ULL + ((u128)C[i & 255] << 70) + (u128)i;
                    seen = cas128(p, old, next);
                    if (seen == old) break;
                    old = seen;
                }
            }
            return bytes(h, (const uint8_t *)cells, sizeof cells);
        }
        __attribute__((noinline)) static uint64_t casp1(void)
        {
            uint64_t h = 0;
            for (int i = 0; i < 64; i++)
            {
                u128 v = (u128)A[i] << 96 | (u128)B[i] << 32 | C[i];
                cells[0] = v;
                u128 r1 = cas128(&cells[0], v + 1, ~v);       /* fails: memory stays v */
                u128 r2 = cas128(&cells[0], v, ~v);           /* succeeds */
                u128 r3 = cas128(&cells[0], v, 0);            /* fails: memory is ~v */
                h = bytes(h, (const uint8_t *)&r1, 16); h = bytes(h, (const uint8_t *)&r2, 16);
                h = bytes(h, (const uint8_t *)&r3, 16); h = bytes(h, (const uint8_t *)&cells[0], 16);
            }
            return h;
        }

        """;

    private static readonly string[] CaspCNames = ["casp: 128-bit CAS update loop", "casp: failing and succeeding 128-bit CAS"];

    private static (byte[]?, string?, string?) BuildCaspC() =>
        Arm64Sve2Tests.BuildCompiledCases(CaspC, ["casp0", "casp1"], "casp-c");

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> CaspCBuilt = new(BuildCaspC);

    [SkippableFact]
    public void A_compiled_128_bit_compare_and_swap_loop_is_caspal_and_gives_what_qemu_gives()
    {
        var built = CaspCBuilt.Value;
        Skip.If(built.Guest is null, built.Why);
        string disassembly = Arm64Sve2Tests.DisassembleGuest("casp-c");
        Assert.Matches(@"<cas128[^>]*>:\n(?:.*\n){0,8}.*\tcaspal\tx\d+, x\d+, x\d+, x\d+, \[x\d+\]", disassembly);
        Arm64Sve2Tests.CompareWithQemu(built, CaspCNames, 128, Arm64CpuModel.NeoverseV2);
    }

    // ---- CASP: UNDEFINED encodings and alignment ----

    /// <summary>casp x4, x5, x6, x7, [x13] (Arm ARM C6.2 CASP: 0 sz 001000 0 L 1 Rs o0 11111 Rn Rt).</summary>
    private const uint CaspX4X6 = 0x4824_7DA6;

    /// <summary>
    /// "if Rs&lt;0&gt; == '1' then UNDEFINED; if Rt&lt;0&gt; == '1' then UNDEFINED" (C6.2 CASP), and Rt2 ≠ 11111 is
    /// unallocated: the name, the word.
    /// </summary>
    public static TheoryData<string, uint> UndefinedCasp => new()
    {
        { "casp x5, x6, x6, x7, [x13] (Rs odd)", 0x4825_7DA6 },
        { "casp x4, x5, x7, x8, [x13] (Rt odd)", 0x4824_7DA7 },
        { "caspal w3, w4, w6, w7, [x13] (Rs odd, 32-bit)", 0x0863_FDA6 },
        { "caspa x4, x5, x1, x2, [x13] (Rt odd)", 0x4864_7DA1 },
        { "casp x4, x5, x6, x7, [x13] with Rt2 = 11110", 0x4824_79A6 },
    };

    /// <summary>
    /// The UNDEFINED CASP encodings take EC 0x00 at the instruction on every preset; qemu-aarch64 -cpu max (a hosted
    /// program that catches SIGILL) refuses the same words, and runs the valid <see cref="CaspX4X6"/> in the same
    /// program.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(UndefinedCasp))]
    public void Casp_with_an_odd_register_or_rt2_not_31_is_undefined_as_under_qemu(string name, uint insn)
    {
        _ = name;
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            using var s = Arm64TestVm.RunningWords(model, insn);
            var v = s.AddVcpu();
            v.SetOneReg(KvmArm64Regs.X(13), 0x8000);
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
            Assert.NotEqual(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(0x00UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
            Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
        }
        Assert.Equal(["valid: ok", "insn: sigill"], QemuSigill(insn));
    }

    /// <summary>Whether qemu-aarch64 -cpu max runs <see cref="CaspX4X6"/> and <paramref name="insn"/> (on a 16-byte aligned buffer) or raises SIGILL.</summary>
    private static string[] QemuSigill(uint insn)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"kvmsharp-casp-sigill-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string c = Path.Combine(dir, $"sigill_{insn:x8}.c"), exe = Path.Combine(dir, $"sigill_{insn:x8}");
        File.WriteAllText(c, $$"""
            #include <setjmp.h>
            #include <signal.h>
            #include <stdio.h>
            static sigjmp_buf jb;
            static unsigned long long mem[4] __attribute__((aligned(16)));
            static void on_sigill(int sig) { (void)sig; siglongjmp(jb, 1); }
            #define TRY(NAME, WORD) \
                if (!sigsetjmp(jb, 1)) { \
                    __asm__ volatile("mov x13, %0\n .inst " WORD "\n" : : "r"(mem) : "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x13", "memory"); \
                    puts(NAME ": ok"); \
                } else puts(NAME ": sigill");
            int main(void)
            {
                signal(SIGILL, on_sigill);
                TRY("valid", "0x{{CaspX4X6:x8}}")
                TRY("insn", "0x{{insn:x8}}")
                return 0;
            }
            """);
        var (gcc, gccOut) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-gcc", ["-O2", "-static", "-o", exe, c]);
        Skip.If(gcc == -1, $"aarch64-linux-gnu-gcc (package gcc-aarch64-linux-gnu) is not available: {gccOut}");
        Assert.True(gcc == 0, gccOut);
        var (code, output) = Arm64SveCorpusTests.Exec("qemu-aarch64", ["-cpu", "max", exe]);
        Skip.If(code == -1, $"qemu-aarch64 (package qemu-user) is not available: {output}");
        Assert.True(code == 0, output);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    // ---- Stage-1 set-up shared by the CASP alignment and LDTR/STTR permission tests ----

    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, L3 = 0x7000, Results = 0xC000;

    /// <summary>VA of L2[3]'s pages: page 0 → <see cref="PageEl1"/> (AP = 00: EL1 only), page 1 → <see cref="PageEl0"/> (AP = 01: EL0 and EL1 read/write).</summary>
    private const ulong Va = 0x60_0000, PageEl1 = 0xD000, PageEl0 = 0xF000, VaEl1 = Va, VaEl0 = Va + 0x1000;

    private const ulong NoFault = 0xDEAD, Il = 1UL << 25;

    // T0SZ 16, TG0 4K, EPD1 (no TTBR1 walks), IPS 0b010 (40 bits).
    private const ulong TcrValue = 16 | (1UL << 23) | (2UL << 30) | (2UL << 32);

    private const ulong X2Init = 0xF1E2_D3C4_B5A6_9788;

    /// <summary>MSR UAO/PAN, #imm (C6.2 MSR (immediate): op1 000, op2 011 UAO / 100 PAN, CRm = imm).</summary>
    private const uint MsrUao1 = 0xD500_417F, MsrUao0 = 0xD500_407F, MsrPan1 = 0xD500_419F, MsrPan0 = 0xD500_409F;

    private const uint LdtrX2 = 0xF840_0822, SttrW2 = 0xB800_0822, SttrX2 = 0xF800_0822, LdrX2 = 0xF940_0022;

    private static byte Pattern(ulong ipa) => (byte)(ipa * 37 + 11);

    private static ulong OldValue(ulong ipa, int size)
    {
        ulong v = 0;
        for (int i = size - 1; i >= 0; i--) v = (v << 8) | Pattern(ipa + (ulong)i);
        return v;
    }

    /// <summary>Data abort from the current EL (EC 0x25), DFSC = <paramref name="dfsc"/>, WnR for a write.</summary>
    private static ulong DataAbortCur(uint dfsc, bool wnr) => (0x25UL << 26) | Il | dfsc | (wnr ? 1UL << 6 : 0);

    /// <summary>DFSC permission fault, level 3 (D24.2 ESR_EL1: 0b001111).</summary>
    private const uint PermissionL3 = 0x0F;

    private static Arm64CpuModel Preset(string name) => Arm64CpuModel.FindPreset(name) ?? throw new ArgumentException(name);

    /// <summary>
    /// L0[0] → L1[0] → L2: L2[0] a Normal identity block of the first 2 MiB (AP = 00: EL1 only), L2[3] → L3 (the two
    /// pages above), L2[8] the ucall block; the pattern in the data; the EL1h synchronous vector records ESR_EL1 (x20),
    /// FAR_EL1 (x21) and resumes at x24. Runs <paramref name="program"/> (after the MMU is on) to the ucall.
    /// </summary>
    private static (Arm64TestVm Vm, KvmSharp.Vcpu Vcpu) Run(Arm64CpuModel model, Action<A64Assembler> program)
    {
        var s = new Arm64TestVm(a =>
        {
            Arm64MmuSetup.Emit(a, TcrValue, L0, set: Arm64MmuSetup.SctlrM, clear: Arm64MmuSetup.SctlrA);
            a.MovImm(X(28), Results);
            program(a);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = model });
        static ulong Block(ulong oa) => oa | 1 | (1UL << 10);
        static ulong Page(ulong oa, ulong ap) => oa | 3 | (ap << 6) | (1UL << 10);
        s.Host.Write(L0, BitConverter.GetBytes(L1 | 3));
        s.Host.Write(L1, BitConverter.GetBytes(L2 | 3));
        s.Host.Write(L2, BitConverter.GetBytes(Block(0)));
        s.Host.Write(L2 + 24, BitConverter.GetBytes(L3 | 3));
        s.Host.Write(L2 + 64, BitConverter.GetBytes(Block(Arm64Guest.UcallMmioGpa)));
        s.Host.Write(L3, BitConverter.GetBytes(Page(PageEl1, 0)));
        s.Host.Write(L3 + 8, BitConverter.GetBytes(Page(PageEl0, 1)));
        byte[] data = new byte[Arm64Guest.Size - 0x8000];
        for (int i = 0; i < data.Length; i++) data[i] = Pattern(0x8000 + (ulong)i);
        s.Host.Write(0x8000, data);
        s.Host.Write(Results, new byte[0x1000]);
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0)); // ESR_EL1
            a.Mrs(X(21), KvmArm64SysRegs.Encoding(3, 0, 6, 0, 0)); // FAR_EL1
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1), X(24));  // ELR_EL1
            a.Eret();
        }));
        var vcpu = s.AddVcpu();
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(Arm64Guest.UcallDone, vcpu.GetOneReg(KvmArm64Regs.X(9)));
        return (s, vcpu);
    }

    /// <summary>
    /// x20 = <see cref="NoFault"/>, x24 = the address after <paramref name="insn"/>, x1 = <paramref name="va"/>, x2 =
    /// <see cref="X2Init"/>, then <paramref name="insn"/>, then x2, x20, x21 stored at x28 (24 bytes a step).
    /// </summary>
    private static void Step(A64Assembler a, ulong va, uint insn)
    {
        a.MovImm(X(1), va);
        a.MovImm(X(2), X2Init);
        a.MovImm(X(20), NoFault);
        a.MovImm(X(21), 0);
        ulong resume = Arm64Guest.CodeGpa + (ulong)a.Position + 12;
        a.Movz(X(24), (ushort)resume);
        a.Movk(X(24), (ushort)(resume >> 16), 16);
        a.Emit(insn);
        foreach (int r in new[] { 2, 20, 21 }) a.StrPost(X(r), X(28), 8);
    }

    /// <summary>(x2, ESR, FAR) of step <paramref name="i"/>.</summary>
    private static (ulong X2, ulong Esr, ulong Far) Result(Arm64TestVm s, int i)
    {
        byte[] b = new byte[24];
        s.Host.Read(Results + 24 * (ulong)i, b);
        return (BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(8)),
            BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(16)));
    }

    private static ulong Read(Arm64TestVm s, ulong ipa, int size)
    {
        byte[] b = new byte[8];
        s.Host.Read(ipa, b.AsSpan(0, size));
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    /// <summary>
    /// CASP alignment (Arm ARM AArch64.MemAtomic: "aligned = IsAligned(address, size)" with size = the whole pair,
    /// then AArch64.UnalignedAccessFaults: accdesc.atomicop faults without FEAT_LSE2, and with it only when the access
    /// leaves its 16-byte block); hand-derived, as qemu 7.2 has no FEAT_LSE2. On Normal memory with the MMU on:
    /// a 32-bit pair at offset 4 of a block (8 bytes, inside it) runs on V1/V2 and faults on N1; a 64-bit pair at
    /// offset 8 (16 bytes, crossing) faults everywhere, as an atomic read-modify-write (WnR = 0); memory is untouched
    /// by a fault.
    /// </summary>
    [Theory]
    [InlineData("neoverse-n1")]
    [InlineData("neoverse-v1")]
    [InlineData("neoverse-v2")]
    public void Casp_alignment_is_the_pairs_size_relaxed_within_16_bytes_by_lse2(string preset)
    {
        var model = Preset(preset);
        const ulong Within = 0x9004, Crossing = 0x9028;
        var (s, v) = Run(model, a =>
        {
            a.MovImm(X(4), OldValue(Within, 4));
            a.MovImm(X(5), OldValue(Within + 4, 4));
            a.MovImm(X(6), 0x1111_2222);
            a.MovImm(X(7), 0x3333_4444);
            Step(a, Within, 0x0824_7C26); // casp w4, w5, w6, w7, [x1]
            a.Mov(X(15), X(4));
            a.MovImm(X(4), OldValue(Crossing, 8));
            a.MovImm(X(5), OldValue(Crossing + 8, 8));
            Step(a, Crossing, 0x4824_7C26); // casp x4, x5, x6, x7, [x1]
        });
        using (s)
        {
            var within = Result(s, 0);
            if (model.At == 0)
            {
                Assert.Equal((DataAbortCur(0x21, false), Within), (within.Esr, within.Far));
                Assert.Equal(OldValue(Within, 8), Read(s, Within, 8));
            }
            else
            {
                Assert.Equal(NoFault, within.Esr);
                Assert.Equal(OldValue(Within, 4), v.GetOneReg(KvmArm64Regs.X(15)));
                Assert.Equal(0x3333_4444_1111_2222UL, Read(s, Within, 8));
            }
            var crossing = Result(s, 1);
            Assert.Equal((DataAbortCur(0x21, false), Crossing), (crossing.Esr, crossing.Far));
            Assert.Equal((OldValue(Crossing, 8), OldValue(Crossing + 8, 8)), (Read(s, Crossing, 8), Read(s, Crossing + 8, 8)));
        }
    }

    // ---- LDTR/STTR permissions at EL1 ----

    /// <summary>
    /// LDTR/STTR at EL1, hand-derived from the Arm ARM pseudocode (qemu's user mode runs them at EL0, where they are
    /// ordinary): LDTR's "privileged = !unpriv_at_el1 || user_access_override" with user_access_override =
    /// IsFeatureImplemented(FEAT_UAO) &amp;&amp; PSTATE.UAO == '1'; an unprivileged access checks the EL0 permissions of
    /// AArch64.S1DirectBasePermissions (AP[1] = 0: no EL0 access) and PSTATE.PAN, which removes privileged access to
    /// EL0-accessible pages, does not apply to it; with UAO = 1 it is an ordinary EL1 access, PAN included. A fault is
    /// a permission fault at level 3 taken from EL1 (EC 0x25, WnR for STTR, FAR = the VA), and a faulting STTR stores
    /// nothing. LDR beside it shows PAN is in force.
    /// </summary>
    [Theory]
    [InlineData("neoverse-n1")]
    [InlineData("neoverse-v2")]
    public void Ldtr_sttr_at_el1_check_el0_permissions_without_pan_unless_uao_is_set(string preset)
    {
        var steps = new (uint Pre, ulong Va, uint Insn, bool Faults, bool Write)[]
        {
            (MsrUao0, VaEl1, LdtrX2, true, false),   // 0: UAO 0, EL1-only page: EL0 access refused
            (MsrUao0, VaEl1 + 8, SttrX2, true, true), // 1
            (MsrUao0, VaEl0, LdtrX2, false, false),  // 2: EL0-accessible page
            (MsrUao0, VaEl0 + 16, SttrW2, false, true), // 3
            (MsrPan1, VaEl0 + 24, LdtrX2, false, false), // 4: PAN 1 (UAO 0): LDTR is not stopped
            (MsrPan1, VaEl0 + 32, SttrX2, false, true),  // 5
            (MsrPan1, VaEl0 + 40, LdrX2, true, false),   // 6: ... LDR is
            (MsrPan0, VaEl1 + 48, LdrX2, false, false),  // 7: LDR of the EL1-only page
            (MsrUao1, VaEl1 + 56, LdtrX2, false, false), // 8: UAO 1: an EL1 access
            (MsrUao1, VaEl1 + 64, SttrW2, false, true),  // 9
            (MsrPan1, VaEl0 + 72, LdtrX2, true, false),  // 10: UAO 1, PAN 1: PAN applies
            (MsrPan1, VaEl0 + 80, SttrX2, true, true),   // 11
        };
        var (s, _) = Run(Preset(preset), a =>
        {
            foreach (var st in steps)
            {
                a.Emit(st.Pre);
                Step(a, st.Va, st.Insn);
            }
        });
        using (s)
        {
            for (int i = 0; i < steps.Length; i++)
            {
                var st = steps[i];
                ulong ipa = st.Va >= VaEl0 ? PageEl0 + (st.Va - VaEl0) : PageEl1 + (st.Va - VaEl1);
                int size = st.Insn == SttrW2 ? 4 : 8;
                var r = Result(s, i);
                if (st.Faults)
                {
                    Assert.True((DataAbortCur(PermissionL3, st.Write), st.Va) == (r.Esr, r.Far), $"step {i}: ESR {r.Esr:x}, FAR {r.Far:x}");
                    Assert.Equal(OldValue(ipa, 8), Read(s, ipa, 8));
                    Assert.Equal(X2Init, r.X2);
                    continue;
                }
                Assert.True(r.Esr == NoFault, $"step {i}: ESR {r.Esr:x}");
                if (st.Write)
                    Assert.True(Read(s, ipa, 8) == ((X2Init & (size == 4 ? 0xFFFF_FFFFUL : ulong.MaxValue)) | (OldValue(ipa, 8) & (size == 4 ? ~0xFFFF_FFFFUL : 0))), $"step {i}");
                else Assert.True(OldValue(ipa, 8) == r.X2, $"step {i}: x2 {r.X2:x}");
            }
        }
    }

    /// <summary>
    /// LDTR/STTR encodings without an allocated meaning (C4.1.94 "Load/store register (unprivileged)": size 10 opc 11,
    /// size 11 opc 1x — no PRFM form) are UNDEFINED on every preset.
    /// </summary>
    [Theory]
    [InlineData(0xB8C0_0822u)] // size 10 opc 11
    [InlineData(0xF880_0822u)] // size 11 opc 10
    [InlineData(0xF8C0_0822u)] // size 11 opc 11
    public void Unallocated_unprivileged_load_store_encodings_are_undefined(uint insn)
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.NeoverseV2 })
        {
            using var s = Arm64TestVm.RunningWords(model, insn);
            var v = s.AddVcpu();
            v.SetOneReg(KvmArm64Regs.X(1), 0x8000);
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
            Assert.NotEqual(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
            Assert.Equal(0x00UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        }
    }
}
