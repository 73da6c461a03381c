// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// FEAT_BTI in the A64 interpreter (A64Interpreter.Bti.cs; Arm ARM DDI 0487 BranchTargetCheck, BTypeCompatible_BTI,
/// BTypeCompatible_PACIXSP, AArch64.BranchTargetException): on the Neoverse V2 preset (ID_AA64PFR1_EL1.BT = 1) a guest
/// with its stage-1 MMU on marks pages guarded with the GP bit (50) of their page descriptors; indirect branches set
/// PSTATE.BTYPE, and a landing instruction in a guarded page that does not accept it takes the Branch Target
/// exception (EC 0x0D) to EL1. The branch/landing-pad matrix is compared with qemu-aarch64 -cpu max in user mode
/// (PROT_BTI pages; SIGILL there is the exception here); the rest is hand-derived from the pseudocode, as each test
/// says.
/// </summary>
public class Arm64BtiTests
{
    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, L3 = 0x7000;
    private const ulong GuardedPage = 0x2000, PlainPage = 0x3000, EretCode = 0x1000, StackTop = 0xF000;
    private const ulong PadsOffset = 0, TrampolinesOffset = 0x800, Stride = 0x40;
    private const ulong Il = 1UL << 25, Gp = 1UL << 50;
    private const ulong SctlrBt0 = 1UL << 35, SctlrBt1 = 1UL << 36;
    private const uint Ret = 0xD65F_03C0, BtiC = 0xD503_245F;

    // T0SZ 16 (48-bit VAs, level-0 start), TG0 4K, EPD1 (no TTBR1 walks), IPS 40 bits.
    private const ulong TcrValue = 16 | (1UL << 23) | (2UL << 32);

    /// <summary>The landing pads: name and instruction words, each followed by RET (to x30, the "done" ucall).</summary>
    private static readonly (string Name, uint[] Words)[] Pads =
    [
        ("bti", [0xD503_241F]),
        ("bti c", [0xD503_245F]),
        ("bti j", [0xD503_249F]),
        ("bti jc", [0xD503_24DF]),
        ("nop", [0xD503_201F]),
        ("paciasp", [0xD503_233F, 0xD503_23BF]), // paciasp; autiasp
        ("pacibsp", [0xD503_237F, 0xD503_23FF]), // pacibsp; autibsp
    ];

    /// <summary>
    /// The branches: x0 holds the pad; each starts with BTI c (it is entered by a BLR in qemu's harness) and returns
    /// through x30. The PAC forms sign the target with PACIZA first (qemu-user enables the keys; here SCTLR_EL1.EnIA
    /// is clear, so both are the identity).
    /// </summary>
    private static readonly (string Name, uint[] Words)[] Branches =
    [
        ("br x1", [BtiC, 0xAA00_03E1, 0xD61F_0020]),
        ("br x16", [BtiC, 0xAA00_03F0, 0xD61F_0200]),
        ("br x17", [BtiC, 0xAA00_03F1, 0xD61F_0220]),
        ("blr x1", [BtiC, 0xA9BF_7BFD, 0xAA00_03E1, 0xD63F_0020, 0xA8C1_7BFD, Ret]), // stp x29, x30, [sp, -16]!; …; ldp; ret
        ("ret x1", [BtiC, 0xAA00_03E1, 0xD65F_0020]),
        ("braaz x1", [BtiC, 0xAA00_03E1, 0xDAC1_23E1, 0xD61F_083F]),
        ("braaz x16", [BtiC, 0xAA00_03F0, 0xDAC1_23F0, 0xD61F_0A1F]),
        ("blraaz x1", [BtiC, 0xA9BF_7BFD, 0xAA00_03E1, 0xDAC1_23E1, 0xD63F_083F, 0xA8C1_7BFD, Ret]),
    ];

    private static ulong PadVa(int p) => GuardedPage + PadsOffset + (ulong)p * Stride;

    private static ulong BranchVa(int b, bool guarded) => (guarded ? GuardedPage : PlainPage) + TrampolinesOffset + (ulong)b * Stride;

    /// <summary>A level-3 page descriptor: AF, AttrIndx 0, AP[2:1] = <paramref name="ap"/>, GP when asked.</summary>
    private static ulong Page(ulong oa, ulong ap, bool gp = false) => oa | 3 | (ap << 6) | (1UL << 10) | (gp ? Gp : 0);

    private static void Put(Arm64TestVm s, ulong table, int index, ulong desc) =>
        s.Host.Write(table + (ulong)index * 8, BitConverter.GetBytes(desc));

    private static void Words(Arm64TestVm s, ulong at, uint[] words) =>
        s.Host.Write(at, [.. words.SelectMany(BitConverter.GetBytes)]);

    /// <summary>
    /// A VM on <paramref name="model"/>: the "done" ucall at <see cref="Arm64Guest.CodeGpa"/>, a "fail" ucall at both
    /// synchronous vectors (EL1h 0x200, lower EL 0x400), the pads and the branches in the GP page 0x2000 (the
    /// branches also in the plain page 0x3000), identity-mapped 4 KiB pages — code read-only at EL0 and EL1 (so
    /// executable at both), the stack page and the ucall block EL0-writable.
    /// </summary>
    private static Arm64TestVm NewVm(Arm64CpuModel model, Action<A64Assembler>? eretCode = null, bool guardedPadPage = true)
    {
        var s = new Arm64TestVm(a => Arm64Guest.Ucall(a, Arm64Guest.UcallDone), EmulatorConfig.Arm64() with { Arm64Cpu = model });
        byte[] fail = Arm64Guest.Assemble(a => Arm64Guest.Ucall(a, Arm64Guest.UcallFail));
        s.Host.Write(0x200, fail);
        s.Host.Write(0x400, fail);
        for (int p = 0; p < Pads.Length; p++) Words(s, PadVa(p), [.. Pads[p].Words, Ret]);
        for (int b = 0; b < Branches.Length; b++)
        {
            Words(s, BranchVa(b, true), Branches[b].Words);
            Words(s, BranchVa(b, false), Branches[b].Words);
        }
        if (eretCode is not null) s.Host.Write(EretCode, Arm64Guest.Assemble(eretCode));
        Put(s, L0, 0, L1 | 3);
        Put(s, L1, 0, L2 | 3);
        Put(s, L2, 0, L3 | 3);
        Put(s, L2, 8, Arm64Guest.UcallMmioGpa | 1 | (1UL << 6) | (1UL << 10)); // 2 MiB block, EL0 RW
        for (int i = 0; i < 16; i++)
        {
            ulong pa = (ulong)i << 12;
            ulong ap = pa is 0 or EretCode or GuardedPage or PlainPage ? 3UL : pa == StackTop - 0x1000 ? 1UL : 0UL;
            Put(s, L3, i, Page(pa, ap, gp: pa == GuardedPage && guardedPadPage));
        }
        return s;
    }

    private readonly record struct Outcome(bool Done, ulong Esr, ulong Elr, ulong Spsr, ulong Pstate, KvmExitReason Exit);

    /// <summary>
    /// Runs a vCPU of <paramref name="s"/> from <paramref name="pc"/> at EL0 or EL1 (PSTATE.BTYPE =
    /// <paramref name="btype"/>), x0 = <paramref name="x0"/>, x30 = the "done" ucall, SCTLR_EL1 = its reset value |
    /// M (unless <paramref name="mmu"/> is false) | <paramref name="sctlrSet"/>.
    /// </summary>
    private static Outcome Run(Arm64TestVm s, ulong pc, ulong x0 = 0, bool el0 = false, ulong sctlrSet = 0, bool mmu = true, ulong btype = 0)
    {
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64SysRegs.MAIR_EL1, 0xFF);
        v.SetOneReg(KvmArm64SysRegs.TCR_EL1, TcrValue);
        v.SetOneReg(KvmArm64SysRegs.TTBR0_EL1, L0);
        v.SetOneReg(KvmArm64SysRegs.SCTLR_EL1, v.GetOneReg(KvmArm64SysRegs.SCTLR_EL1) | (mmu ? 1UL : 0) | sctlrSet);
        v.SetOneReg(KvmArm64Regs.SpEl1, StackTop);
        v.SetOneReg(KvmArm64Regs.Sp, StackTop);
        v.SetOneReg(KvmArm64Regs.X(0), x0);
        v.SetOneReg(KvmArm64Regs.X(30), Arm64Guest.CodeGpa);
        v.SetOneReg(KvmArm64Regs.Pstate, (el0 ? 0UL : 0x3C5UL) | (btype << 10));
        v.SetPc(pc);
        var exit = v.RunBounded();
        bool done = exit.Reason == KvmExitReason.KVM_EXIT_MMIO && v.GetOneReg(KvmArm64Regs.X(9)) == Arm64Guest.UcallDone;
        return new(done, v.GetOneReg(KvmArm64SysRegs.ESR_EL1), v.GetOneReg(KvmArm64Regs.ElrEl1), v.GetOneReg(KvmArm64Regs.SpsrEl1),
            v.GetOneReg(KvmArm64Regs.Pstate), exit.Reason);
    }

    private static ulong BranchTargetEsr(ulong btype) => (0x0DUL << 26) | Il | btype;

    private static void AssertBranchTargetException(Outcome o, ulong btype, ulong elr)
    {
        Assert.False(o.Done);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, o.Exit);
        Assert.Equal(BranchTargetEsr(btype), o.Esr);
        Assert.Equal(elr, o.Elr);
        Assert.Equal(btype, (o.Spsr >> 10) & 3);
    }

    // ---- qemu oracle ----------------------------------------------------------------------------------------------

    /// <summary>
    /// The qemu-user harness: the same pad and branch words, copied into an mmap'd page made PROT_BTI (guarded) and
    /// a plain one; every branch (from either page) to every pad, with a SIGILL handler. Prints one line a case:
    /// "1" for SIGILL (the Branch Target exception), "0" for a return.
    /// </summary>
    private static string QemuProgram()
    {
        static string Array(IEnumerable<uint[]> rows) =>
            string.Join(",\n", rows.Select(r => "{" + string.Join(", ", r.Select(w => $"0x{w:x8}u")) + "}"));
        var c = new StringBuilder();
        c.Append("""
            #include <setjmp.h>
            #include <signal.h>
            #include <stdio.h>
            #include <string.h>
            #include <sys/mman.h>
            #define PROT_BTI 0x10
            static sigjmp_buf jb;
            static void on_ill(int sig) { siglongjmp(jb, sig); }
            """);
        c.Append($"\nstatic const unsigned pads[{Pads.Length}][8] = {{{Array(Pads.Select(p => p.Words.Append(Ret).ToArray()))}}};\n");
        c.Append($"static const unsigned branches[{Branches.Length}][8] = {{{Array(Branches.Select(b => b.Words))}}};\n");
        c.Append($$"""
            int main(void) {
              setvbuf(stdout, 0, _IONBF, 0);
              struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_ill; sa.sa_flags = SA_NODEFER; sigaction(SIGILL, &sa, 0);
              unsigned *g = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *n = g + 1024;
              for (int p = 0; p < {{Pads.Length}}; p++) memcpy(g + {{PadsOffset / 4}} + {{Stride / 4}} * p, pads[p], 32);
              for (int b = 0; b < {{Branches.Length}}; b++) {
                memcpy(g + {{TrampolinesOffset / 4}} + {{Stride / 4}} * b, branches[b], 32);
                memcpy(n + {{TrampolinesOffset / 4}} + {{Stride / 4}} * b, branches[b], 32);
              }
              __builtin___clear_cache((char *)g, (char *)(g + 2048));
              if (mprotect(g, 4096, PROT_READ | PROT_EXEC | PROT_BTI) || mprotect(n, 4096, PROT_READ | PROT_EXEC)) return 1;
              for (int side = 0; side < 2; side++)
                for (int b = 0; b < {{Branches.Length}}; b++)
                  for (int p = 0; p < {{Pads.Length}}; p++) {
                    unsigned *code = (side ? n : g) + {{TrampolinesOffset / 4}} + {{Stride / 4}} * b;
                    volatile int sig = sigsetjmp(jb, 1);
                    if (sig == 0) ((void (*)(void *))code)(g + {{PadsOffset / 4}} + {{Stride / 4}} * p);
                    printf("%d\n", sig == SIGILL);
                  }
              return 0;
            }
            """);
        return c.ToString();
    }

    private static readonly Lazy<(string? Binary, string? Why)> QemuBuilt = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"kvmsharp-bti-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string c = Path.Combine(dir, "bti.c"), bin = Path.Combine(dir, "bti");
        File.WriteAllText(c, QemuProgram());
        var (code, output) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-gcc", ["-O1", "-static", "-o", bin, c]);
        if (code == -1) return (null, $"aarch64-linux-gnu-gcc (package gcc-aarch64-linux-gnu) is not available: {output}");
        Assert.True(code == 0, $"aarch64-linux-gnu-gcc failed ({code}): {output}");
        return (bin, null);
    });

    /// <summary>
    /// Every branch (BR/BLR/RET/BRAAZ/BLRAAZ through x1, x16, x17), from a guarded and from a non-guarded page, to
    /// every landing pad (BTI, BTI c/j/jc, NOP, PACIASP, PACIBSP) in a guarded page, at EL0 with SCTLR_EL1.BT0 set:
    /// the emulator takes the Branch Target exception exactly where qemu-aarch64 -cpu max (user mode, which sets
    /// SCTLR_EL1.BT0: "Trap on btype=3 for PACIxSP") raises SIGILL, with ISS = the BTYPE the branch set.
    /// </summary>
    [SkippableFact]
    public void Branches_to_landing_pads_fault_where_qemu_raises_sigill()
    {
        var (bin, why) = QemuBuilt.Value;
        Skip.If(bin is null, why);
        var (code, output) = Arm64SveCorpusTests.Exec("qemu-aarch64", ["-cpu", "max", bin!]);
        Skip.If(code == -1, $"qemu-aarch64 (package qemu-user) is not available: {output}");
        Assert.True(code == 0, $"qemu-aarch64 failed ({code}): {output}");
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2 * Branches.Length * Pads.Length, lines.Length);
        var failures = new List<string>();
        int faults = 0, i = 0;
        for (int side = 0; side < 2; side++)
        {
            for (int b = 0; b < Branches.Length; b++)
            {
                for (int p = 0; p < Pads.Length; p++, i++)
                {
                    bool sigill = lines[i].Trim() == "1";
                    using var s = NewVm(Arm64CpuModel.NeoverseV2);
                    var o = Run(s, BranchVa(b, side == 0), x0: PadVa(p), el0: true, sctlrSet: SctlrBt0);
                    string name = $"{(side == 0 ? "guarded" : "plain")} {Branches[b].Name} -> {Pads[p].Name}";
                    if (o.Done == sigill) failures.Add($"{name}: qemu {(sigill ? "SIGILL" : "ok")}, emulator {(o.Done ? "ok" : $"ESR {o.Esr:x}")}");
                    if (!sigill) continue;
                    faults++;
                    // BTYPE as the branch set it: BLR* 10; BR* through x16/x17 or from a plain page 01; else 11.
                    ulong btype = Branches[b].Name.StartsWith("bl", StringComparison.Ordinal) ? 2UL
                        : side == 1 || Branches[b].Name.EndsWith("x16", StringComparison.Ordinal) || Branches[b].Name.EndsWith("x17", StringComparison.Ordinal) ? 1UL : 3UL;
                    if (o.Esr != BranchTargetEsr(btype) || o.Elr != PadVa(p)) failures.Add($"{name}: ESR {o.Esr:x}, ELR {o.Elr:x}");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(faults > 20, $"only {faults} cases fault under qemu");
    }

    // ---- hand-derived from the pseudocode ---------------------------------------------------------------------

    /// <summary>
    /// Hand-derived from BTypeCompatible_BTI / BTypeCompatible_PACIXSP and BRK's "SetBTypeCompatible(TRUE)": the
    /// landing instruction at a guarded page, PSTATE.BTYPE set through KVM_SET_ONE_REG (PSTATE), at EL1 with
    /// SCTLR_EL1.BT1 clear or set. BTYPE 00 never faults; BTI accepts nothing; BTI c everything but 11; BTI j
    /// everything but 10; BTI jc everything; PACIxSP 01 and 10, and 11 unless BT1; NOP and MOV nothing; BRK
    /// everything (its own exception, EC 0x3C, then comes).
    /// </summary>
    [Theory]
    [InlineData(0xD503_241Fu, "-FFF")] // bti (no targets)
    [InlineData(0xD503_245Fu, "---F")] // bti c
    [InlineData(0xD503_249Fu, "--F-")] // bti j
    [InlineData(0xD503_24DFu, "----")] // bti jc
    [InlineData(0xD503_233Fu, "---B")] // paciasp: 11 faults with BT1
    [InlineData(0xD503_237Fu, "---B")] // pacibsp
    [InlineData(0xD503_201Fu, "-FFF")] // nop
    [InlineData(0xAA01_03E0u, "-FFF")] // mov x0, x1
    [InlineData(0xD420_0000u, "----")] // brk #0
    public void Each_landing_instruction_accepts_the_btypes_the_pseudocode_gives(uint insn, string table)
    {
        // table[btype]: '-' no Branch Target exception, 'F' one, 'B' one only with SCTLR_EL1.BT1.
        for (ulong btype = 0; btype < 4; btype++)
        {
            foreach (bool bt1 in new[] { false, true })
            {
                using var s = NewVm(Arm64CpuModel.NeoverseV2);
                Words(s, PadVa(0), [insn, Ret]);
                var o = Run(s, PadVa(0), sctlrSet: bt1 ? SctlrBt1 : 0, btype: btype);
                bool expectFault = table[(int)btype] == 'F' || (table[(int)btype] == 'B' && bt1);
                if (expectFault)
                {
                    AssertBranchTargetException(o, btype, PadVa(0));
                }
                else if (insn == 0xD420_0000)
                {
                    Assert.False(o.Done);
                    Assert.Equal(0x3CUL, o.Esr >> 26);          // BRK's own exception
                    Assert.Equal(btype, (o.Spsr >> 10) & 3);  // SPSR_EL1.BTYPE kept (Exception_SoftwareBreakpoint)
                }
                else
                {
                    Assert.True(o.Done, $"{insn:x8} at BTYPE {btype}, BT1 {bt1}: ESR {o.Esr:x}");
                }
            }
        }
    }

    /// <summary>
    /// BTypeCompatible_PACIXSP reads SCTLR_EL1.BT0 at EL0 and BT1 at EL1 only: with BTYPE 11, PACIASP faults at EL0
    /// with BT0 (not BT1) and at EL1 with BT1 (not BT0). Hand-derived (qemu-user runs only at EL0 with BT0 set).
    /// </summary>
    [Theory]
    [InlineData(false, 0UL, false)]
    [InlineData(false, SctlrBt0, false)]
    [InlineData(false, SctlrBt1, true)]
    [InlineData(true, 0UL, false)]
    [InlineData(true, SctlrBt0, true)]
    [InlineData(true, SctlrBt1, false)]
    public void Paciasp_follows_bt0_at_el0_and_bt1_at_el1(bool el0, ulong sctlr, bool faults)
    {
        using var s = NewVm(Arm64CpuModel.NeoverseV2);
        int paciasp = Array.FindIndex(Pads, p => p.Name == "paciasp");
        var o = Run(s, PadVa(paciasp), el0: el0, sctlrSet: sctlr, btype: 3);
        if (faults) AssertBranchTargetException(o, 3, PadVa(paciasp));
        else Assert.True(o.Done, $"ESR {o.Esr:x}");
    }

    /// <summary>
    /// The exception itself (AArch64.BranchTargetException): BR x1 from a guarded page to a NOP in a guarded page at
    /// EL1 — ESR_EL1 = EC 0x0D | IL | ISS 0b11, ELR_EL1 = the NOP, SPSR_EL1 = EL1h with BTYPE 11, taken to VBAR_EL1
    /// + 0x200; from EL0 (BLR, BTYPE 10) the vector is + 0x400 and SPSR_EL1.M = EL0t. PSTATE.BTYPE is 0 after it
    /// (enter_exception64).
    /// </summary>
    [Fact]
    public void The_branch_target_exception_reports_btype_in_esr_and_spsr_and_returns_to_the_landing_instruction()
    {
        int nop = Array.FindIndex(Pads, p => p.Name == "nop");
        using (var s = NewVm(Arm64CpuModel.NeoverseV2))
        {
            var o = Run(s, BranchVa(0, guarded: true), x0: PadVa(nop));
            AssertBranchTargetException(o, 3, PadVa(nop));
            Assert.Equal(0x3C5UL | (3UL << 10), o.Spsr);
            Assert.Equal(0UL, o.Pstate & (3UL << 10));
        }
        using (var s = NewVm(Arm64CpuModel.NeoverseV2))
        {
            // The lower-EL vector: make it distinguishable (ucall 7).
            s.Host.Write(0x400, Arm64Guest.Assemble(a => Arm64Guest.Ucall(a, 7)));
            var o = Run(s, BranchVa(3, guarded: true), x0: PadVa(nop), el0: true);
            Assert.Equal(BranchTargetEsr(2), o.Esr);
            Assert.Equal(PadVa(nop), o.Elr);
            Assert.Equal(2UL << 10, o.Spsr);
        }
    }

    /// <summary>
    /// Nothing faults outside a guarded page: the same branches to a NOP with the pad page's GP bit clear, and with
    /// the MMU off (no descriptor, no GP: AArch64.S1DisabledOutput), every branch completes. Hand-derived.
    /// </summary>
    [Fact]
    public void Non_guarded_pages_and_the_mmu_off_never_fault()
    {
        int nop = Array.FindIndex(Pads, p => p.Name == "nop");
        for (int b = 0; b < Branches.Length; b++)
        {
            using (var s = NewVm(Arm64CpuModel.NeoverseV2, guardedPadPage: false))
                Assert.True(Run(s, BranchVa(b, true), x0: PadVa(nop)).Done, Branches[b].Name);
            using (var s = NewVm(Arm64CpuModel.NeoverseV2))
                Assert.True(Run(s, BranchVa(b, true), x0: PadVa(nop), mmu: false).Done, Branches[b].Name);
        }
    }

    /// <summary>
    /// ERET takes PSTATE.BTYPE from SPSR_EL1 (SetPSTATEFromPSR) and the instruction it returns to is checked with it:
    /// to a NOP in a guarded page with SPSR.BTYPE 01/10/11 the Branch Target exception (ISS = that BTYPE), with 00
    /// none; to BTI j with 10 the exception, with 01 none. Hand-derived.
    /// </summary>
    [Theory]
    [InlineData("nop", 0UL, false)]
    [InlineData("nop", 1UL, true)]
    [InlineData("nop", 2UL, true)]
    [InlineData("nop", 3UL, true)]
    [InlineData("bti j", 2UL, true)]
    [InlineData("bti j", 1UL, false)]
    public void Eret_restores_btype_from_spsr_and_the_return_target_is_checked(string pad, ulong btype, bool faults)
    {
        int p = Array.FindIndex(Pads, x => x.Name == pad);
        ulong spsr = 0x3C5 | (btype << 10);
        using var s = NewVm(Arm64CpuModel.NeoverseV2, eretCode: a =>
        {
            a.MovImm(X(3), spsr);
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 0), X(3)); // SPSR_EL1
            a.MovImm(X(3), PadVa(p));
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1), X(3)); // ELR_EL1
            a.Eret();
        });
        var o = Run(s, EretCode);
        if (faults) AssertBranchTargetException(o, btype, PadVa(p));
        else Assert.True(o.Done, $"ESR {o.Esr:x}");
    }

    /// <summary>
    /// Without FEAT_BTI (Neoverse N1, N1 with PAuth, V1: ID_AA64PFR1_EL1.BT = 0) the GP bit is ignored and BTYPE is
    /// never set: BR x1 from a guarded page to a UDF in a guarded page takes the UNDEFINED exception (EC 0) with
    /// SPSR_EL1.BTYPE 0. On V2 the same branch takes the Branch Target exception; with the pad page not guarded the
    /// UDF's exception saves the BTYPE 01 of a BR from a non-guarded page in SPSR_EL1 (the pseudocode's permitted
    /// zero_btype = FALSE).
    /// </summary>
    [Fact]
    public void Without_feat_bti_the_gp_bit_is_ignored_and_btype_stays_zero()
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.WithPointerAuth, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            foreach (bool guardedPad in new[] { true, false })
            {
                using var s = NewVm(model, guardedPadPage: guardedPad);
                Words(s, PadVa(0), [0x0000_0000]); // udf #0
                var o = Run(s, BranchVa(0, guarded: true), x0: PadVa(0));
                Assert.False(o.Done);
                Assert.Equal(PadVa(0), o.Elr);
                if (model.Bt == 0)
                {
                    Assert.Equal(0UL, o.Esr >> 26);
                    Assert.Equal(0UL, o.Spsr & (3UL << 10));
                }
                else if (guardedPad)
                {
                    AssertBranchTargetException(o, 3, PadVa(0));
                }
                else
                {
                    // The page (pads and branch alike) not guarded: BR x1 set BTYPE 01, which the UDF's exception saved.
                    Assert.Equal(0UL, o.Esr >> 26);
                    Assert.Equal(1UL << 10, o.Spsr & (3UL << 10));
                }
            }
        }
    }

    /// <summary>
    /// The GP bit is part of the walk the walk and fetch caches reuse: a vCPU that ran the branch to a NOP in a plain
    /// page, after the host sets GP in that page's descriptor (no TLB, as the rest of the MMU), faults on the next run
    /// of the same code.
    /// </summary>
    [Fact]
    public void Setting_the_gp_bit_is_seen_by_the_next_fetch()
    {
        int nop = Array.FindIndex(Pads, p => p.Name == "nop");
        using var s = NewVm(Arm64CpuModel.NeoverseV2, guardedPadPage: false);
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64SysRegs.MAIR_EL1, 0xFF);
        v.SetOneReg(KvmArm64SysRegs.TCR_EL1, TcrValue);
        v.SetOneReg(KvmArm64SysRegs.TTBR0_EL1, L0);
        v.SetOneReg(KvmArm64SysRegs.SCTLR_EL1, v.GetOneReg(KvmArm64SysRegs.SCTLR_EL1) | 1);
        v.SetOneReg(KvmArm64Regs.SpEl1, StackTop);
        for (int round = 0; round < 3; round++)
        {
            if (round == 2) Put(s, L3, (int)(GuardedPage >> 12), Page(GuardedPage, 3, gp: true));
            v.SetOneReg(KvmArm64Regs.X(0), PadVa(nop));
            v.SetOneReg(KvmArm64Regs.X(30), Arm64Guest.CodeGpa);
            v.SetOneReg(KvmArm64Regs.Pstate, 0x3C5);
            v.SetPc(BranchVa(0, guarded: false));
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
            ulong code = v.GetOneReg(KvmArm64Regs.X(9));
            if (round < 2)
            {
                Assert.Equal(Arm64Guest.UcallDone, code);
                continue;
            }
            Assert.Equal(Arm64Guest.UcallFail, code);
            Assert.Equal(BranchTargetEsr(1), v.GetOneReg(KvmArm64SysRegs.ESR_EL1)); // BR x1 from a plain page: 01
        }
    }
    /// <summary>
    /// KVM stepping over an instruction it completed (kvm_skip_instr: "*vcpu_cpsr(vcpu) &amp;= ~PSR_BTYPE_MASK") clears
    /// PSTATE.BTYPE: BR X1 on a non-guarded page (the MMU is off) gives the store it lands on BTYPE 01, the store exits
    /// to userspace as MMIO, and once KVM_RUN completes it (immediate_exit: completion, then EINTR) BTYPE is 0 and the PC
    /// is past it.
    /// </summary>
    [Fact]
    public void Kvm_completing_an_mmio_access_clears_btype()
    {
        // adr x1, .+8; br x1; str w0, [x2]
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseV2, 0x1000_0041, 0xD61F_0020, 0xB900_0040);
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64Regs.X(2), 0x4000_0000);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.CodeGpa + 8, v.GetOneReg(KvmArm64Regs.Pc));
        Assert.Equal(1UL, (v.GetOneReg(KvmArm64Regs.Pstate) >> 10) & 3);
        v.ImmediateExit = true;
        v.Run();
        v.ImmediateExit = false;
        Assert.Equal(Arm64Guest.CodeGpa + 12, v.GetOneReg(KvmArm64Regs.Pc));
        Assert.Equal(0UL, (v.GetOneReg(KvmArm64Regs.Pstate) >> 10) & 3);
    }
}
