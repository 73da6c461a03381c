// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The load/store exclusive and ordered groups (A64Interpreter.Exclusive.cs; Arm ARM C4.1.94, C6.2 LDXR/LDAXR,
/// STXR/STLXR, LDXP/LDAXP, STXP/STLXP, LDAR, STLR, CLREX; B2.17 the exclusive monitor) and the FEAT_LSE atomics: what gcc emits for C11
/// atomics without FEAT_LSE (CompiledCorpusTests' atomic part found the interpreter stopping at LDAXR). GNU as output
/// (aarch64-linux-gnu-as, encodings copied here) run on the emulated arm64 kernel; the Arm ARM pseudocode is the oracle.
/// </summary>
public class Arm64ExclusiveTests
{
    private static readonly uint[] Program =
    [
        0xD2900001, // mov x1, #0x8000
        0xD2824682, // mov x2, #0x1234
        0xD28ACF12, // mov x18, #0x5678
        0xF9000022, // str x2, [x1]
        0xF9000432, // str x18, [x1, #8]
        0xC85FFC23, // ldaxr x3, [x1]            x3 = 0x1234, the monitor marks [x1]
        0x91001463, // add x3, x3, #5
        0xC804FC23, // stlxr w4, x3, [x1]        marked: stores 0x1239, w4 = 0, clears the mark
        0xC8057C23, // stxr w5, x3, [x1]         not marked: w5 = 1
        0xC85F7C26, // ldxr x6, [x1]             x6 = 0x1239
        0xD5033F5F, // clrex
        0xC8077C22, // stxr w7, x2, [x1]         cleared: w7 = 1, no store
        0x085F7C28, // ldxrb w8, [x1]            x8 = 0x39
        0x52801FE9, // mov w9, #0xff
        0x08167C29, // stxrb w22, w9, [x1]       w22 = 0, memory 0x12ff
        0xC85F7C2B, // ldxr x11, [x1]            x11 = 0x12ff
        0xF900003F, // str xzr, [x1]             the marked location changes
        0xC80C7C22, // stxr w12, x2, [x1]        fails: w12 = 1, memory stays 0
        0xC87FB82D, // ldaxp x13, x14, [x1]      x13 = 0, x14 = 0x5678
        0xC82FA422, // stlxp w15, x2, x9, [x1]   w15 = 0, memory 0x1234, 0xff
        0xC8DFFC30, // ldar x16, [x1]            x16 = 0x1234
        0x889FFC29, // stlr w9, [x1]             the low word = 0xff
        0x48DFFC31, // ldarh w17, [x1]           x17 = 0xff
        0x485F7C33, // ldxrh w19, [x1]           x19 = 0xff
        0x48147C22, // stxrh w20, w2, [x1]       w20 = 0, the low halfword = 0x1234
        0xF9400035, // ldr x21, [x1]             x21 = 0x1234
    ];

    private static readonly uint[] LseProgram =
    [
        0xD2900001, // mov x1, #0x8000
        0xD2800C82, // mov x2, #100
        0xF9000022, // str x2, [x1]
        0xD28000A3, // mov x3, #5
        0xF8E30024, // ldaddal x3, x4, [x1]      x4 = 100, memory 105
        0xD2801E05, // mov x5, #0xf0
        0xF8E58026, // swpal x5, x6, [x1]        x6 = 105, memory 0xf0
        0xD2801FE7, // mov x7, #0xff
        0xF8E71028, // ldclral x7, x8, [x1]      x8 = 0xf0, memory 0
        0xAA3F03EB, // mvn x11, xzr
        0xF82B402C, // ldsmax x11, x12, [x1]     x12 = 0, memory max(0, -1) = 0
        0xD28000ED, // mov x13, #7
        0xF82D202E, // ldeor x13, x14, [x1]      x14 = 0, memory 7
        0xD28000EF, // mov x15, #7
        0xD2800550, // mov x16, #42
        0xC8EFFC30, // casal x15, x16, [x1]      equal: memory 42, x15 = 7
        0xD2800031, // mov x17, #1
        0xD2800572, // mov x18, #43
        0xC8B17C32, // cas x17, x18, [x1]        not equal: no store, x17 = 42
        0xF8317033, // ldumin x17, x19, [x1]     x19 = 42, memory 42
        0x39000432, // strb w18, [x1, #1]        memory 0x2b2a
        0x52801014, // mov w20, #0x80
        0x38343035, // ldsetb w20, w21, [x1]     x21 = 0x2a, memory 0x2baa
        0xF8BFC036, // ldapr x22, [x1]           x22 = 0x2baa
    ];

    [Fact]
    public void Lse_atomics_and_cas_return_the_old_value_and_store_the_operation_result()
    {
        // C6.2 LDADD, SWP, LDCLR, LDSMAX, LDEOR, CAS, LDUMIN, LDSETB, LDAPR: the emulated CPU advertises FEAT_LSE
        // (ID_AA64ISAR0_EL1.Atomic = 2) and FEAT_LRCPC, so guests may use them (gcc -march=armv8.1-a inlines them).
        var regs = Run(LseProgram);
        var expected = new Dictionary<int, ulong>
        {
            [4] = 100, [6] = 105, [8] = 0xf0, [12] = 0, [14] = 0, [15] = 7, [17] = 42, [19] = 42, [21] = 0x2a, [22] = 0x2baa,
        };
        foreach (var (reg, value) in expected) Assert.True(value == regs(reg), $"x{reg} = 0x{regs(reg):X}, expected 0x{value:X}");
    }

    private static Func<int, ulong> Run(uint[] program)
    {
        var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        var kvm = Kvm.Open(kernel);
        var guest = Arm64Guest.Create(kvm, a =>
        {
            foreach (uint w in program) a.Emit(w);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone); // clobbers x9, x10
        });
        try
        {
            var exit = guest.Vcpu.RunBounded();
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
            Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
            var values = Enumerable.Range(0, 31).Select(r => guest.Vcpu.GetOneReg(KvmArm64Regs.X(r))).ToArray();
            return r => values[r];
        }
        finally
        {
            guest.Dispose();
            kvm.Dispose();
            kernel.Dispose();
        }
    }

    [Fact]
    public void Load_and_store_exclusives_succeed_only_on_a_marked_unchanged_location_and_ordered_accesses_load_and_store()
    {
        var regs = Run(Program);
        var expected = new Dictionary<int, ulong>
        {
            [3] = 0x1239, [4] = 0, [5] = 1, [6] = 0x1239, [7] = 1, [8] = 0x39, [22] = 0, [11] = 0x12ff, [12] = 1,
            [13] = 0, [14] = 0x5678, [15] = 0, [16] = 0x1234, [17] = 0xff, [19] = 0xff, [20] = 0, [21] = 0x1234,
        };
        foreach (var (reg, value) in expected) Assert.True(value == regs(reg), $"x{reg} = 0x{regs(reg):X}, expected 0x{value:X}");
    }
}
