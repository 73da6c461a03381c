// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Tests.Arm64;

/// <summary>
/// Every form the encoder emits, against the word GNU as (binutils-aarch64-linux-gnu 2.x, objdump -d) produced for
/// the same source line, given in the comment. The tests do not need binutils.
/// </summary>
public class A64AssemblerTests
{
    private static uint One(Action<A64Assembler> emit)
    {
        var a = new A64Assembler();
        emit(a);
        byte[] bytes = a.Assemble();
        Assert.Equal(4, bytes.Length);
        return BitConverter.ToUInt32(bytes);
    }

    public static TheoryData<string, uint> Forms => new()
    {
        { "movz x0, #0x1234", 0xD2824680 },
        { "movz w5, #0xff", 0x52801FE5 },
        { "movk x0, #0x8400, lsl #16", 0xF2B08000 },
        { "movn x3, #0", 0x92800003 },
        { "add x0, x1, #1", 0x91000420 },
        { "sub sp, sp, #16", 0xD10043FF },
        { "adds x2, x3, #0xfff", 0xB13FFC62 },
        { "subs w1, w2, #1, lsl #12", 0x71400441 },
        { "cmp x0, #1", 0xF100041F },
        { "cmp w3, #0xaa", 0x7102A87F },
        { "add x4, x0, x2", 0x8B020004 },
        { "sub x1, x2, x3, lsl #4", 0xCB031041 },
        { "cmp x2, x1", 0xEB01005F },
        { "and x0, x1, x2", 0x8A020020 },
        { "orr x0, x1, x2", 0xAA020020 },
        { "eor w0, w1, w2", 0x4A020020 },
        { "mov x0, x1", 0xAA0103E0 },
        { "mov w19, w0", 0x2A0003F3 },
        { "ands x0, x1, x2", 0xEA020020 },
        { "ldr x0, [x1]", 0xF9400020 },
        { "ldr x2, [x0, #8]", 0xF9400402 },
        { "ldr w4, [x0, #20]", 0xB9401404 },
        { "str x0, [x1]", 0xF9000020 },
        { "str x2, [x0, #24]", 0xF9000C02 },
        { "ldrb w3, [x0, #16]", 0x39404003 },
        { "strb w5, [x4]", 0x39000085 },
        { "ldrh w3, [x0, #2]", 0x79400403 },
        { "strh w3, [x0, #32]", 0x79004003 },
        { "ldr x0, [sp, #8]", 0xF94007E0 },
        { "str x1, [x0], #8", 0xF8008401 },
        { "ldr x1, [x0], #-8", 0xF85F8401 },
        { "ret", 0xD65F03C0 },
        { "ret x1", 0xD65F0020 },
        { "br x0", 0xD61F0000 },
        { "blr x2", 0xD63F0040 },
        { "nop", 0xD503201F },
        { "wfi", 0xD503207F },
        { "hvc #0", 0xD4000002 },
        { "hvc #0x1234", 0xD4024682 },
        { "udf #0x1234", 0x00001234 },
    };

    private static readonly Dictionary<string, Action<A64Assembler>> Emitters = new()
    {
        ["movz x0, #0x1234"] = a => a.Movz(X(0), 0x1234),
        ["movz w5, #0xff"] = a => a.Movz(W(5), 0xff),
        ["movk x0, #0x8400, lsl #16"] = a => a.Movk(X(0), 0x8400, 16),
        ["movn x3, #0"] = a => a.Movn(X(3), 0),
        ["add x0, x1, #1"] = a => a.AddImm(X(0), X(1), 1),
        ["sub sp, sp, #16"] = a => a.SubImm(Sp, Sp, 16),
        ["adds x2, x3, #0xfff"] = a => a.AddsImm(X(2), X(3), 0xfff),
        ["subs w1, w2, #1, lsl #12"] = a => a.SubsImm(W(1), W(2), 1, lsl12: true),
        ["cmp x0, #1"] = a => a.CmpImm(X(0), 1),
        ["cmp w3, #0xaa"] = a => a.CmpImm(W(3), 0xaa),
        ["add x4, x0, x2"] = a => a.Add(X(4), X(0), X(2)),
        ["sub x1, x2, x3, lsl #4"] = a => a.Sub(X(1), X(2), X(3), 4),
        ["cmp x2, x1"] = a => a.Cmp(X(2), X(1)),
        ["and x0, x1, x2"] = a => a.And(X(0), X(1), X(2)),
        ["orr x0, x1, x2"] = a => a.Orr(X(0), X(1), X(2)),
        ["eor w0, w1, w2"] = a => a.Eor(W(0), W(1), W(2)),
        ["mov x0, x1"] = a => a.Mov(X(0), X(1)),
        ["mov w19, w0"] = a => a.Mov(W(19), W(0)),
        ["ands x0, x1, x2"] = a => a.Ands(X(0), X(1), X(2)),
        ["ldr x0, [x1]"] = a => a.Ldr(X(0), X(1)),
        ["ldr x2, [x0, #8]"] = a => a.Ldr(X(2), X(0), 8),
        ["ldr w4, [x0, #20]"] = a => a.Ldr(W(4), X(0), 20),
        ["str x0, [x1]"] = a => a.Str(X(0), X(1)),
        ["str x2, [x0, #24]"] = a => a.Str(X(2), X(0), 24),
        ["ldrb w3, [x0, #16]"] = a => a.Ldrb(W(3), X(0), 16),
        ["strb w5, [x4]"] = a => a.Strb(W(5), X(4)),
        ["ldrh w3, [x0, #2]"] = a => a.Ldrh(W(3), X(0), 2),
        ["strh w3, [x0, #32]"] = a => a.Strh(W(3), X(0), 32),
        ["ldr x0, [sp, #8]"] = a => a.Ldr(X(0), Sp, 8),
        ["str x1, [x0], #8"] = a => a.StrPost(X(1), X(0), 8),
        ["ldr x1, [x0], #-8"] = a => a.LdrPost(X(1), X(0), -8),
        ["ret"] = a => a.Ret(),
        ["ret x1"] = a => a.Ret(X(1)),
        ["br x0"] = a => a.Br(X(0)),
        ["blr x2"] = a => a.Blr(X(2)),
        ["nop"] = a => a.Nop(),
        ["wfi"] = a => a.Wfi(),
        ["hvc #0"] = a => a.Hvc(),
        ["hvc #0x1234"] = a => a.Hvc(0x1234),
        ["udf #0x1234"] = a => a.Udf(0x1234),
    };

    [Theory]
    [MemberData(nameof(Forms))]
    public void Encodes_like_gnu_as(string source, uint expected) => Assert.Equal(expected, One(Emitters[source]));

    [Fact]
    public void Branches_resolve_like_gnu_as()
    {
        // back: nop; b back; bl fwd; b.ne back; b.lo fwd; cbz x1, back; cbnz w2, fwd; nop; fwd: nop
        var a = new A64Assembler();
        var back = a.CreateLabel();
        var fwd = a.CreateLabel();
        a.Bind(back);
        a.Nop();
        a.B(back);
        a.Bl(fwd);
        a.B(A64Condition.NE, back);
        a.B(A64Condition.LO, fwd);
        a.Cbz(X(1), back);
        a.Cbnz(W(2), fwd);
        a.Nop();
        a.Bind(fwd);
        a.Nop();
        byte[] code = a.Assemble();
        uint[] words = Enumerable.Range(0, code.Length / 4).Select(i => BitConverter.ToUInt32(code, i * 4)).ToArray();
        Assert.Equal(
            new uint[] { 0xD503201F, 0x17FFFFFF, 0x94000006, 0x54FFFFA1, 0x54000083, 0xB4FFFF61, 0x35000042, 0xD503201F, 0xD503201F },
            words);
    }

    [Fact]
    public void Rejects_operands_the_encoding_cannot_express()
    {
        var a = new A64Assembler();
        Assert.Throws<ArgumentException>(() => a.AddImm(X(0), Xzr, 1));
        Assert.Throws<ArgumentException>(() => a.Add(X(0), Sp, X(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.AddImm(X(0), X(1), 0x1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Ldr(X(0), X(1), 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Movz(W(0), 1, 32));
        Assert.Throws<ArgumentException>(() => a.Ldrb(X(0), X(1)));
        Assert.Throws<ArgumentException>(() => a.Add(X(0), W(1), X(2)));
        var unbound = a.CreateLabel();
        a.B(unbound);
        Assert.Throws<InvalidOperationException>(() => a.Assemble());
    }
}
