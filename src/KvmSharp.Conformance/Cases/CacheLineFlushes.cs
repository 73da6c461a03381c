// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// CLFLUSH, CLFLUSHOPT and CLWB in a 64-bit guest: no architectural effect on a mapped line (memory keeps its value,
/// nothing is delivered), and the faults of a byte load (Intel SDM Vol. 2A CLFLUSH: "subject to all permission
/// checking and faults associated with a byte load"): #PF with a read error code on a not-present page, #GP(0) on a
/// non-canonical address. Upstream SVM intercepts none of them; OVMF's PEI flushes with CLFLUSH under SEV-SNP. The
/// prefetch hints never fault at all.
/// </summary>
public static class CacheLineFlushes
{
    private const int GP = 13, PF = 14;
    private const ulong Value = 0x1122_3344_5566_7788;
    private const ulong NonCanonical = 0x8000_0000_0000_0000;

    /// <summary>#PF and #GP resume past the faulting flush (instruction lengths: see <see cref="Program"/>).</summary>
    private static IdtVector[] Vectors(int skip) =>
        [.. Enumerable.Range(0, 32).Select(v => v is GP or PF ? new IdtVector(v, ResumeSkip: skip) : new IdtVector(v))];

    /// <summary>
    /// RBX = a mapped data line, RSI = the spare page (not present), RDI = a non-canonical address; the instruction
    /// flushes [RBX], then [RSI], then [RDI]; R8 = [RBX] afterwards; HLT. Each form runs in its own guest, whose #PF
    /// and #GP handlers resume past it (CLFLUSH is 3 bytes here, CLFLUSHOPT and CLWB 4).
    /// </summary>
    private static void Program(Assembler a, Action<Assembler, AssemblerRegister64> flush)
    {
        a.mov(rbx, (long)IdtGuest.ReportGpa + 0x800);
        a.mov(rax, unchecked((long)Value));
        a.mov(__qword_ptr[rbx], rax);
        a.mov(rsi, (long)IdtGuest.SpareGpa);
        a.mov(rdi, unchecked((long)NonCanonical));
        flush(a, rbx);
        flush(a, rsi);
        flush(a, rdi);
        a.mov(r8, __qword_ptr[rbx]);
        a.hlt();
    }

    /// <summary>The first flush's RIP: after the three MOVs and the store (the program's fixed prologue).</summary>
    private static ulong FirstFlushRip(IdtGuest g)
    {
        var code = new byte[64];
        g.Guest.Memory.Read(LongModeGuest.CodeGpa, code);
        // The prologue is mov rbx, imm; mov rax, imm64; mov [rbx], rax; mov rsi, imm; mov rdi, imm64.
        var decoder = Decoder.Create(64, code, LongModeGuest.CodeGpa);
        for (int n = 0; n < 5; n++) decoder.Decode();
        return decoder.IP;
    }

    [ConformanceCase("SDM Vol. 2A CLFLUSH/CLFLUSHOPT/CLWB (a byte load's faults: #PF read on a not-present page, #GP(0) non-canonical), svm.c init_vmcb (no intercept): a mapped line keeps its value and nothing is delivered")]
    public static void clflush_clflushopt_and_clwb_fault_as_a_byte_load(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var forms = new (string Name, int Length, Action<Assembler, AssemblerRegister64> Flush)[]
        {
            ("clflush", 3, (a, r) => a.clflush(__byte_ptr[r])),
            ("clflushopt", 4, (a, r) => a.clflushopt(__byte_ptr[r])),
            ("clwb", 4, (a, r) => a.clwb(__byte_ptr[r])),
        };
        foreach (var (name, length, flush) in forms)
        {
            using var g = IdtGuest.Create(kvm, a => Program(a, flush), Vectors(length));
            g.SetPte(IdtGuest.SpareGpa, 0);
            var exit = g.Vcpu.Run().Reason;
            var r = g.Vcpu.GetRegs();
            var d = g.Deliveries;
            if (name == "clwb" && HostDeviations.KvmPvmClwbFails(ctx.Target.IsReal))
            {
                Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit);
                Assert.Equal(FirstFlushRip(g), r.rip);
                Assert.Empty(d);
                continue;
            }
            Assert.True(exit == KvmExitReason.KVM_EXIT_HLT, $"{name}: {exit} at RIP 0x{r.rip:X}; {string.Join("; ", d)}");
            Assert.Equal(Value, r.r8);
            Assert.True(d.Count == 2, $"{name}: {string.Join("; ", d)}");
            ulong first = FirstFlushRip(g);
            // Not present, read, supervisor: error code 0, CR2 the line's address.
            Assert.Equal((PF, (ulong?)0, IdtGuest.SpareGpa, first + (ulong)length), ((int)d[0].Vector, d[0].ErrorCode, d[0].Cr2, d[0].Rip));
            Assert.Equal((GP, (ulong?)0, first + 2 * (ulong)length), ((int)d[1].Vector, d[1].ErrorCode, d[1].Rip));
        }
    }

    [ConformanceCase("SDM Vol. 2B PREFETCHh, AMD APM Vol. 3 PREFETCH/PREFETCHW: hints that never fault — on a mapped line, a not-present page and a non-canonical address nothing is delivered")]
    public static void prefetches_never_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => Program(a, (x, r) =>
        {
            x.prefetcht0(__byte_ptr[r]);
            x.prefetcht1(__byte_ptr[r]);
            x.prefetcht2(__byte_ptr[r]);
            x.prefetchnta(__byte_ptr[r]);
            x.prefetchw(__byte_ptr[r]);
            x.prefetch(__byte_ptr[r]);
        }), Vectors(3));
        g.SetPte(IdtGuest.SpareGpa, 0);
        var exit = g.Vcpu.Run().Reason;
        var r = g.Vcpu.GetRegs();
        Assert.True(exit == KvmExitReason.KVM_EXIT_HLT, $"{exit} at RIP 0x{r.rip:X}; {string.Join("; ", g.Deliveries)}");
        Assert.Empty(g.Deliveries);
        Assert.Equal(Value, r.r8);
    }
}
