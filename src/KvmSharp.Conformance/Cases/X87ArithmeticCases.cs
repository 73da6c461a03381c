// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// x87 arithmetic, loads, stores, compares and stack faults (Intel SDM Vol. 1 ch. 8, Vol. 2 per instruction) on edge
/// values — zeros, denormals and pseudo-denormals, unnormals, infinities, QNaN/SNaN, the real indefinite, the largest
/// and smallest normals, values that round differently under each FCW.RC and FCW.PC — under eight control words (RC
/// nearest/down/up/zero, PC 24/53/64, all exceptions unmasked). The CPU is the oracle: the digests come from
/// tests/KvmSharp.Conformance.Tests/Oracles/x87_sweep.c run on this AMD EPYC host, and X87SweepOracleTests reruns it
/// on every test host and compares with <see cref="SweepOracleDigests"/>. kvm_pvm cannot run x87 data instructions in
/// a guest (<see cref="HostDeviations.KvmPvmX87ArithmeticFails"/>): there its answer is asserted as it is.
/// </summary>
public static class X87ArithmeticCases
{
    private const ulong In = 0x9_0000, Out = 0xC_0000, Scratch = IdtGuest.SpareGpa;
    private const int InSize = 48, OutSize = 64, Chunk = 3000;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>80-bit inputs (sign/exponent, significand), the probe's E[].</summary>
    private static readonly (ushort SignExp, ulong Significand)[] Extended =
    [
        (0x0000, 0), (0x8000, 0), (0x3fff, 0x8000000000000000), (0xbfff, 0xc000000000000000), (0x4000, 0xc000000000000000),
        (0x3fff, 0x8000000000000001), (0x3fff, 0xffffffffffffffff), (0x3ffd, 0xaaaaaaaaaaaaaaab), (0x7ffe, 0xffffffffffffffff),
        (0x0001, 0x8000000000000000), (0x0000, 0x4000000000000001), (0x8000, 0x00000000deadbeef), (0x7fff, 0x8000000000000000),
        (0xffff, 0x8000000000000000), (0x7fff, 0xc000000000000001), (0xffff, 0xa000000000000000), (0xffff, 0xc000000000000000),
        (0x4000, 0x4000000000000000), (0x0000, 0x8000000000000001), (0x4000, 0xa000000000000000), (0xbffe, 0x8000000000000000),
        (0x43e3, 0x9b5c2f8de1a4b337), (0x3c00, 0x8000000000000123), (0x401e, 0xffffffff00000000), (0xc03e, 0x8000000000000000),
        (0x3ffe, 0x8000000000000400),
    ];

    private static readonly ulong[] Singles =
        [0, 0x80000000, 0x3f800000, 0xbfc00000, 0x7f7fffff, 0x00800000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x7fc00001, 0x7f800005, 0x3eaaaaab, 0x4b000001];

    private static readonly ulong[] Doubles =
    [
        0, 0x8000000000000000, 0x3ff0000000000000, 0xbff8000000000000, 0x7fefffffffffffff, 0x0010000000000000, 1,
        0x800fffffffffffff, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000001, 0x7ff0000000000005, 0x3fd5555555555555, 0x4330000000000001,
    ];

    private static readonly ulong[] Int16s = [0, 1, 0xffff, 0x7fff, 0x8000, 3, 0xfff9];
    private static readonly ulong[] Int32s = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 3, 100000007];
    private static readonly ulong[] Int64s = [0, 1, ulong.MaxValue, 0x7fffffffffffffff, 0x8000000000000000, 3, 0x123456789abcdef1];

    /// <summary>FCW: all masked with RC nearest, down, up, zero (PC 64); PC 53; PC 24; PC 53 with RC zero; all unmasked.</summary>
    private static readonly ushort[] Controls = [0x037f, 0x077f, 0x0b7f, 0x0f7f, 0x027f, 0x007f, 0x0e7f, 0x0340];

    /// <summary>The second operand: X an 80-bit value (ST1), U none (ST1 = 2.5), F/D/I16/I32/I64 a memory operand.</summary>
    private enum Kind { X, U, F, D, I16, I32, I64 }

    private sealed record Op(string Name, Kind Kind, bool Flags, Action<Assembler> Emit, ulong Digest);

    /// <summary>
    /// FNV-1a 64 over each input's 45 bytes (FXSAVE bytes 0..4: FCW, FSW, abridged FTW; ST0 and ST1, zeros when empty; the 16 bytes at
    /// the store operand; RFLAGS &amp; 0x8d5 for FCOMI/FUCOMIP, else 0), as the CPU produced them (x87_sweep.c, Linux
    /// 6.18 host, AMD EPYC). FOP, FIP and FDP are left out: AMD saves them only while FSW.ES is set (FpuControlRules).
    /// </summary>
    private static readonly Op[] Ops =
    [
        new("fadd", Kind.X, false, a => a.fadd(st0, st1), 0x5432AEFDC8B2EE20UL),
        new("fsub", Kind.X, false, a => a.fsub(st0, st1), 0xE55E3BE562E528ADUL),
        new("fsubr", Kind.X, false, a => a.fsubr(st0, st1), 0x7E8E8E550FD46A25UL),
        new("fmul", Kind.X, false, a => a.fmul(st0, st1), 0x1E4964D5BD4EBC41UL),
        new("fdiv", Kind.X, false, a => a.fdiv(st0, st1), 0x8ADD446F1D202922UL),
        new("fdivr", Kind.X, false, a => a.fdivr(st0, st1), 0x5ED9424B26E8BDDEUL),
        new("faddp", Kind.X, false, a => a.faddp(st1, st0), 0x68FF2CA0925F6490UL),
        new("fsubst1", Kind.X, false, a => a.fsub(st1, st0), 0xA757B5CAF9254D61UL),
        new("fdivrp", Kind.X, false, a => a.fdivrp(st1, st0), 0x278ECB29E0114392UL),
        new("fcom", Kind.X, false, a => a.fcom(st0, st1), 0x9318A0354A021A2DUL),
        new("fucomp", Kind.X, false, a => a.fucomp(st0, st1), 0xC78717588D12C2DDUL),
        new("fcompp", Kind.X, false, a => a.fcompp(), 0x9E4E86C7697CF027UL),
        new("fcomi", Kind.X, true, a => a.fcomi(st0, st1), 0x7C52E26B1AC60F65UL),
        new("fucomip", Kind.X, true, a => a.fucomip(st0, st1), 0x3669B17855465075UL),
        new("fprem", Kind.X, false, a => a.fprem(), 0x2E74F36B098982AFUL),
        new("fprem1", Kind.X, false, a => a.fprem1(), 0x6FCDBB5E0A72755EUL),
        new("fscale", Kind.X, false, a => a.fscale(), 0x1BBBA818045A0695UL),
        new("fxch", Kind.X, false, a => a.fxch(st0, st1), 0x24E788BB69E00419UL),
        new("fsqrt", Kind.U, false, a => a.fsqrt(), 0x43737382113A02DEUL),
        new("frndint", Kind.U, false, a => a.frndint(), 0x220AA7D409CEB97FUL),
        new("fchs", Kind.U, false, a => a.fchs(), 0xA229ED1EF40E7289UL),
        new("fabs", Kind.U, false, a => a.fabs(), 0xFEB54EE335C9F089UL),
        new("fxam", Kind.U, false, a => a.fxam(), 0xE4002AAFBA452E25UL),
        new("ftst", Kind.U, false, a => a.ftst(), 0x3A37994EAB8B3321UL),
        new("fxtract", Kind.U, false, a => a.fxtract(), 0x4B0AA64BA1A12BA1UL),
        new("fst32", Kind.U, false, a => a.fst(__dword_ptr[rdi + 40]), 0x3F96C557534882FEUL),
        new("fstp64", Kind.U, false, a => a.fstp(__qword_ptr[rdi + 40]), 0xE556BB30005BD5E8UL),
        new("fstp80", Kind.U, false, a => a.fstp(__tword_ptr[rdi + 40]), 0x9AA7B1329DE1B4E9UL),
        new("fist16", Kind.U, false, a => a.fist(__word_ptr[rdi + 40]), 0x995F8ABAD84E25E5UL),
        new("fistp32", Kind.U, false, a => a.fistp(__dword_ptr[rdi + 40]), 0x7814E9B76A8A8F37UL),
        new("fistp64", Kind.U, false, a => a.fistp(__qword_ptr[rdi + 40]), 0x478F7F91871D7A8FUL),
        new("fisttp16", Kind.U, false, a => a.fisttp(__word_ptr[rdi + 40]), 0x78CACD50565F007BUL),
        new("fisttp64", Kind.U, false, a => a.fisttp(__qword_ptr[rdi + 40]), 0x01A377D0D5E213BFUL),
        new("fldpi", Kind.U, false, a => a.fldpi(), 0x3636DA26534F19D7UL),
        new("fldl2e", Kind.U, false, a => a.fldl2e(), 0x9792F41A02EC8E4FUL),
        new("fldl2t", Kind.U, false, a => a.fldl2t(), 0x0BCDE277519FEEA3UL),
        new("fldlg2", Kind.U, false, a => a.fldlg2(), 0x4BA8AD05381F229FUL),
        new("fldln2", Kind.U, false, a => a.fldln2(), 0x7537D2BB734FA32FUL),
        new("fldst1", Kind.U, false, a => a.fld(st1), 0xA47CCE67915CCB09UL),
        new("fldovf", Kind.U, false, a => { for (int k = 0; k < 6; k++) a.fld1(); a.fld(__tword_ptr[rsi + 16]); }, 0xD45D9117A21093C1UL),
        new("faddund", Kind.U, false, a => { a.ffree(st1); a.fadd(st0, st1); }, 0xE33E6A4336A069D2UL),
        new("fstund", Kind.U, false, a => { a.fstp(st0); a.fstp(st0); a.fst(__dword_ptr[rdi + 40]); }, 0x39F0EB8C59875937UL),
        new("fcomund", Kind.U, false, a => { a.ffree(st1); a.fcom(st0, st1); }, 0x56CC268DCA546E41UL),
        new("fistund", Kind.U, false, a => { a.fstp(st0); a.fstp(st0); a.fistp(__dword_ptr[rdi + 40]); }, 0x36A921E280A0AD99UL),
        new("fadd32", Kind.F, false, a => a.fadd(__dword_ptr[rsi + 32]), 0x06900FEEAD0784DEUL),
        new("fmul32", Kind.F, false, a => a.fmul(__dword_ptr[rsi + 32]), 0xCD4AE887946B381DUL),
        new("fdivr32", Kind.F, false, a => a.fdivr(__dword_ptr[rsi + 32]), 0xD83C8F82EC66B83EUL),
        new("fcom32", Kind.F, false, a => a.fcom(__dword_ptr[rsi + 32]), 0x918E4DF418291CEDUL),
        new("fld32", Kind.F, false, a => a.fld(__dword_ptr[rsi + 32]), 0xD3D5FCC42E2523F9UL),
        new("fadd64", Kind.D, false, a => a.fadd(__qword_ptr[rsi + 32]), 0x04A37283DB31663FUL),
        new("fsub64", Kind.D, false, a => a.fsub(__qword_ptr[rsi + 32]), 0xFB9CE344F96B8EFDUL),
        new("fdiv64", Kind.D, false, a => a.fdiv(__qword_ptr[rsi + 32]), 0x3FE10B8B989B2768UL),
        new("fcomp64", Kind.D, false, a => a.fcomp(__qword_ptr[rsi + 32]), 0xB1F8A9B1BF233037UL),
        new("fld64", Kind.D, false, a => a.fld(__qword_ptr[rsi + 32]), 0x6879DD7E489F27E9UL),
        new("fiadd16", Kind.I16, false, a => a.fiadd(__word_ptr[rsi + 32]), 0xE2840656535F03EEUL),
        new("ficom16", Kind.I16, false, a => a.ficom(__word_ptr[rsi + 32]), 0x3E22D685072314F9UL),
        new("fild16", Kind.I16, false, a => a.fild(__word_ptr[rsi + 32]), 0xBA71CE03845323B9UL),
        new("fimul32", Kind.I32, false, a => a.fimul(__dword_ptr[rsi + 32]), 0xBF4477C8F541C9C0UL),
        new("fidiv32", Kind.I32, false, a => a.fidiv(__dword_ptr[rsi + 32]), 0xC50724DDCC41A06EUL),
        new("fisubr32", Kind.I32, false, a => a.fisubr(__dword_ptr[rsi + 32]), 0xBCF4C95175D0983AUL),
        new("fild32", Kind.I32, false, a => a.fild(__dword_ptr[rsi + 32]), 0x3112E05891C4E3E5UL),
        new("fild64", Kind.I64, false, a => a.fild(__qword_ptr[rsi + 32]), 0x8FBA3D069D998735UL),
    ];

    /// <summary>The sweep's expected digests, which X87SweepOracleTests checks against the probe run on the test host.</summary>
    public static IReadOnlyList<(string Name, ulong Digest)> SweepOracleDigests => [.. Ops.Select(op => (op.Name, op.Digest))];

    /// <summary>Every input record (48 bytes: FCW at 0, a at 16, b or the memory operand at 32), in the probe's order.</summary>
    private static List<byte[]> Inputs(Kind kind)
    {
        ulong[]? memory = kind switch { Kind.F => Singles, Kind.D => Doubles, Kind.I16 => Int16s, Kind.I32 => Int32s, Kind.I64 => Int64s, _ => null };
        int count = kind == Kind.X ? Extended.Length : kind == Kind.U ? 1 : memory!.Length;
        var list = new List<byte[]>();
        foreach (ushort cw in Controls)
            foreach (var a in Extended)
                for (int y = 0; y < count; y++)
                {
                    byte[] r = new byte[InSize];
                    BinaryPrimitives.WriteUInt16LittleEndian(r, cw);
                    BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(16), a.Significand);
                    BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(24), a.SignExp);
                    var b = kind == Kind.X ? Extended[y] : ((ushort)0x4000, 0xa000000000000000UL);
                    if (memory is null)
                    {
                        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(32), b.Item2);
                        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(40), b.Item1);
                    }
                    else BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(32), memory[y]);
                    list.Add(r);
                }
        return list;
    }

    /// <summary>
    /// One loop over <paramref name="count"/> inputs at <see cref="In"/>: FNINIT, FLDCW, FLD m80 b, FLD m80 a, the
    /// instruction, PUSHFQ, FXSAVE64 to <see cref="Scratch"/>, its bytes 0..7 and 32..63 copied to the output record
    /// (then the store operand at +40, RFLAGS at +56), FNINIT.
    /// </summary>
    private static void SweepProgram(Assembler a, Op op, int count)
    {
        var loop = a.CreateLabel();
        a.mov(rsi, (long)In);
        a.mov(rdi, (long)Out);
        a.mov(rbx, (long)Scratch);
        a.mov(ecx, count);
        a.Label(ref loop);
        a.fninit();
        a.fldcw(__word_ptr[rsi]);
        a.fld(__tword_ptr[rsi + 32]);
        a.fld(__tword_ptr[rsi + 16]);
        op.Emit(a);
        a.pushfq();
        a.pop(__qword_ptr[rdi + 56]);
        a.fxsave64(__[rbx]);
        a.mov(rax, __qword_ptr[rbx]);
        a.mov(__qword_ptr[rdi], rax);
        for (int k = 0; k < 4; k++)
        {
            a.mov(rax, __qword_ptr[rbx + 32 + k * 8]);
            a.mov(__qword_ptr[rdi + 8 + k * 8], rax);
        }
        a.fninit();
        a.add(rsi, InSize);
        a.add(rdi, OutSize);
        a.dec(ecx);
        a.jnz(loop);
    }

    /// <summary>The 45 digested bytes of an output record (the probe's rec[]).</summary>
    private static byte[] Digested(ReadOnlySpan<byte> o, bool flags)
    {
        byte[] rec = new byte[45];
        o[..5].CopyTo(rec);
        // An empty register keeps whatever an earlier input left there: ST0/ST1 count only when tagged in use.
        int top = (o[3] >> 3) & 7;
        if ((o[4] & (1 << top)) != 0) o.Slice(8, 10).CopyTo(rec.AsSpan(5));
        if ((o[4] & (1 << ((top + 1) & 7))) != 0) o.Slice(24, 10).CopyTo(rec.AsSpan(15));
        o.Slice(40, 16).CopyTo(rec.AsSpan(25));
        uint fl = flags ? (uint)(BinaryPrimitives.ReadUInt64LittleEndian(o[56..]) & 0x8d5) : 0;
        BinaryPrimitives.WriteUInt32LittleEndian(rec.AsSpan(41), fl);
        return rec;
    }

    [ConformanceCase("Intel SDM Vol. 1 ch. 8 and Vol. 2 FLD/FST/FILD/FIST/FISTTP, FADD…FDIVR (register, P, m32/m64 and integer forms), FCOM/FUCOM/FICOM/FCOMI/FUCOMIP, FTST, FXAM, FSQRT, FRNDINT, FSCALE, FXTRACT, FPREM/FPREM1, FCHS/FABS, FXCH, the constants, and stack overflow/underflow: ST0/ST1, FSW (flags, C0-C3, TOP), tags, stored results and RFLAGS under RC nearest/down/up/zero, PC 24/53/64 and unmasked exceptions, for zeros, denormals, pseudo-denormals, unnormals, infinities, QNaN/SNaN and overflow/underflow inputs, as the CPU computes them")]
    public static void x87_sweep_matches_the_cpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var failures = new List<string>();
        // KVMSHARP_X87_DUMP=FILE writes every record as `x87_sweep FILE` does (for finding a mismatch).
        string? dumpPath = Environment.GetEnvironmentVariable("KVMSHARP_X87_DUMP");
        var dump = dumpPath is null ? null : new StringBuilder();
        foreach (var op in Ops)
        {
            var inputs = Inputs(op.Kind);
            ulong h = 0xcbf29ce484222325;
            for (int start = 0; start < inputs.Count; start += Chunk)
            {
                int count = Math.Min(Chunk, inputs.Count - start);
                using var g = IdtGuest.Create(kvm, a => { SweepProgram(a, op, count); a.hlt(); }, Halting);
                byte[] table = new byte[count * InSize];
                for (int k = 0; k < count; k++) inputs[start + k].CopyTo(table, k * InSize);
                g.Guest.Memory.Write(In, table);
                g.Guest.Memory.Fill(Out, (ulong)(count * OutSize), 0);
                var exit = g.Vcpu.Run();
                if (HostDeviations.KvmPvmX87ArithmeticFails(ctx.Target.IsReal))
                {
                    Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
                    Assert.Empty(g.Deliveries);
                    return;
                }
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{op.Name}: {exit.ToString()}");
                Assert.True(g.Deliveries.Count == 0, $"{op.Name}: {string.Join(", ", g.Deliveries)}");
                byte[] output = new byte[count * OutSize];
                g.Guest.Memory.Read(Out, output);
                for (int k = 0; k < count; k++)
                {
                    byte[] rec = Digested(output.AsSpan(k * OutSize, OutSize), op.Flags);
                    foreach (byte b in rec) h = (h ^ b) * 0x100000001b3;
                    if (dump is not null) Dump(dump, op.Name, inputs[start + k], rec);
                }
            }
            if (h != op.Digest) failures.Add($"{op.Name}: digest 0x{h:X16}, the CPU's 0x{op.Digest:X16}");
        }
        if (dump is not null) File.WriteAllText(dumpPath!, dump.ToString());
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    private static void Dump(StringBuilder s, string name, byte[] input, byte[] rec)
    {
        var inv = CultureInfo.InvariantCulture;
        s.Append(inv, $"{name} {BinaryPrimitives.ReadUInt16LittleEndian(input):x4} {BinaryPrimitives.ReadUInt16LittleEndian(input.AsSpan(24)):x4}:{BinaryPrimitives.ReadUInt64LittleEndian(input.AsSpan(16)):x16} ");
        for (int k = 47; k >= 32; k--) s.Append(inv, $"{input[k]:x2}");
        s.Append(" ->");
        for (int k = 0; k < 45; k++) s.Append(k is 5 or 15 or 25 or 41 ? " " : "").Append(inv, $"{rec[k]:x2}");
        s.Append('\n');
    }
}
