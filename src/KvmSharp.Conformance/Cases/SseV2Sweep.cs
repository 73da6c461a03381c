// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The MXCSR side of the x86-64-v2 floating-point additions: HADD/HSUB/ADDSUB PS/PD (SSE3), DPPS/DPPD and ROUND*
/// (SSE4.1) on every pair of edge values under seven MXCSR values, results and flags as this machine's CPU computes
/// them. The digests come from tests/KvmSharp.Conformance.Tests/Oracles/sse_v2_sweep.c (run on the AMD EPYC test host;
/// SseSweepOracleTests reruns it on every test host and compares with <see cref="SweepOracleDigests"/>).
/// </summary>
public static class SseV2Sweep
{
    private const ulong In = 0x9_0000, Out = 0xC_0000;

    private static readonly ulong[] Doubles =
    [
        0, 0x8000000000000000, 0x3ff0000000000000, 0xbff0000000000000, 0x3ff8000000000000, 0x4008000000000000,
        0x3fb999999999999a, 0xbfd5555555555555, 0x7fe1ccf385ebc8a0, 0xffe2f0fa2d1a7a74, 0x0010000000000000,
        0x000fffffffffffff, 0x0000000000000001, 0x8000000000000003, 0x7ff0000000000000, 0xfff0000000000000,
        0x7ff8000000000001, 0x7ff0000000000005, 0xfff8000000000002, 0x43e0000000000000, 0xc1e0000000100000,
        0x3ff0000000000001, 0x4004000000000000, 0xc00c000000000000, 0x432fffffffffffff, 0x7fefffffffffffff,
    ];

    private static readonly uint[] Singles =
    [
        0, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x40400000, 0x3dcccccd, 0xbeaaaaab, 0x7f61ccf4, 0xff7fffff,
        0x00800000, 0x007fffff, 0x00000001, 0x80000003, 0x7f800000, 0xff800000, 0x7fc00001, 0x7f800005, 0xffc00002,
        0x4f000000, 0xcf000001, 0x3f800001, 0x40200000, 0xc0600000, 0x4affffff, 0x7f7fffff,
    ];

    /// <summary>MXCSR: all masked with RC nearest, down, up, toward zero; FTZ+DAZ; DAZ; FTZ.</summary>
    private static readonly uint[] Controls = [0x1f80, 0x3f80, 0x5f80, 0x7f80, 0x9fc0, 0x1fc0, 0x9f80];

    private sealed record Op(string Name, bool Double, Action<Assembler> Emit, ulong Digest);

    /// <summary>FNV-1a 64 of the 24-byte outputs (XMM0, MXCSR after, 4 zero bytes) of every input, as the CPU produced them.</summary>
    private static readonly Op[] Ops =
    [
        new("haddps", false, a => a.haddps(xmm0, xmm1), 0x44F61EFA5130E1BEUL),
        new("hsubps", false, a => a.hsubps(xmm0, xmm1), 0xE6EF296AAB9EDE56UL),
        new("addsubps", false, a => a.addsubps(xmm0, xmm1), 0xF46910EDCE15A1FAUL),
        new("haddpd", true, a => a.haddpd(xmm0, xmm1), 0xA7E881D695FE4FF2UL),
        new("hsubpd", true, a => a.hsubpd(xmm0, xmm1), 0x6865510AA91E648EUL),
        new("addsubpd", true, a => a.addsubpd(xmm0, xmm1), 0x200A9BD2CF9AD12FUL),
        new("dppsff", false, a => a.dpps(xmm0, xmm1, 0xff), 0x04D91CB5E25AB614UL),
        new("dpps71", false, a => a.dpps(xmm0, xmm1, 0x71), 0xAEF80F7C364B5AE0UL),
        new("dppd31", true, a => a.dppd(xmm0, xmm1, 0x31), 0x2C24DC75DA4BD7CAUL),
        new("dppd23", true, a => a.dppd(xmm0, xmm1, 0x23), 0x777230A04A46B83CUL),
        new("roundps0", false, a => a.roundps(xmm0, xmm1, 0), 0xCE3B9BF33614812CUL),
        new("roundps1", false, a => a.roundps(xmm0, xmm1, 1), 0x2BCA47554CF93F2CUL),
        new("roundps2", false, a => a.roundps(xmm0, xmm1, 2), 0xB28BB0C86597AEC4UL),
        new("roundps3", false, a => a.roundps(xmm0, xmm1, 3), 0xB68F94E45F2AE1CCUL),
        new("roundps4", false, a => a.roundps(xmm0, xmm1, 4), 0x85534F3B6574F8E4UL),
        new("roundps9", false, a => a.roundps(xmm0, xmm1, 9), 0x7944E5F1AF95F58CUL),
        new("roundpd0", true, a => a.roundpd(xmm0, xmm1, 0), 0x10DEB996D6E27224UL),
        new("roundpd1", true, a => a.roundpd(xmm0, xmm1, 1), 0x9ACEA95A8E347F6CUL),
        new("roundpd2", true, a => a.roundpd(xmm0, xmm1, 2), 0x6A8DF4498CFDFFB0UL),
        new("roundpd3", true, a => a.roundpd(xmm0, xmm1, 3), 0xF8CCA9251084B5CCUL),
        new("roundpd4", true, a => a.roundpd(xmm0, xmm1, 4), 0xA34D992243B1C2F0UL),
        new("roundpdc", true, a => a.roundpd(xmm0, xmm1, 0xc), 0xBD2D45CE94690A70UL),
        new("roundss4", false, a => a.roundss(xmm0, xmm1, 4), 0xC89FD6F78BCC69A1UL),
        new("roundsda", true, a => a.roundsd(xmm0, xmm1, 0xa), 0x0C97E9691A93E445UL),
    ];

    /// <summary>The sweep's expected digests, as the probe prints them (SseSweepOracleTests compares the two).</summary>
    public static IReadOnlyList<(string Name, ulong Digest)> SweepOracleDigests =>
        [.. Ops.Select(op => (op.Name, op.Digest)), .. StringOps.Select(op => (op.Name, op.Digest))];

    /// <summary>Inputs of one MXCSR value, 40 bytes each: MXCSR (8), A (16), B (16); the probe's pair order and layout.</summary>
    private static byte[] Inputs(bool dbl, uint mxcsr)
    {
        int n = dbl ? Doubles.Length : Singles.Length;
        byte[] table = new byte[n * n * 40];
        int at = 0;
        for (int x = 0; x < n; x++)
        {
            for (int y = 0; y < n; y++, at += 40)
            {
                var e = table.AsSpan(at, 40);
                BinaryPrimitives.WriteUInt64LittleEndian(e, mxcsr);
                if (dbl)
                {
                    ulong[] v = [Doubles[x], Doubles[y], Doubles[y], Doubles[x]];
                    for (int k = 0; k < 4; k++) BinaryPrimitives.WriteUInt64LittleEndian(e[(8 + 8 * k)..], v[k]);
                }
                else
                {
                    uint[] v = [Singles[x], Singles[y], Singles[y], Singles[x], Singles[y], Singles[x], Singles[x], Singles[y]];
                    for (int k = 0; k < 8; k++) BinaryPrimitives.WriteUInt32LittleEndian(e[(8 + 4 * k)..], v[k]);
                }
            }
        }
        return table;
    }

    private static void Program(Assembler a, Op op, int count)
    {
        var loop = a.CreateLabel();
        a.mov(rsi, (long)In);
        a.mov(rdi, (long)Out);
        a.mov(ecx, count);
        a.Label(ref loop);
        a.ldmxcsr(__dword_ptr[rsi]);
        a.movdqu(xmm0, __xmmword_ptr[rsi + 8]);
        a.movdqu(xmm1, __xmmword_ptr[rsi + 24]);
        op.Emit(a);
        a.movdqu(__xmmword_ptr[rdi], xmm0);
        a.stmxcsr(__dword_ptr[rdi + 16]);
        a.mov(__dword_ptr[rdi + 20], 0);
        a.add(rsi, 40);
        a.add(rdi, 24);
        a.dec(ecx);
        a.jnz(loop);
        a.hlt();
    }

    [ConformanceCase("Intel SDM Vol. 1 4.8-4.9, 11.5; Vol. 2 HADDPS/HSUBPS/ADDSUBPS/HADDPD/HSUBPD/ADDSUBPD, DPPS/DPPD, ROUNDPS/PD/SS/SD (imm8 modes, MXCSR.RC, imm8[3]): results and MXCSR flags under RC nearest/down/up/zero, FTZ, DAZ for NaN payloads, SNaN, infinities, denormals, zeros, overflow and halfway values, as the CPU computes them")]
    public static void sse_v2_float_sweep_matches_the_cpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        CpuidEntry[] cpuid = [.. kvm.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | 1u | (1u << 19) } : e)];
        var failures = new List<string>();
        foreach (var op in Ops)
        {
            ulong h = 0xcbf29ce484222325;
            foreach (uint m in Controls)
            {
                byte[] inputs = Inputs(op.Double, m);
                int count = inputs.Length / 40;
                using var g = IdtGuest.Create(kvm, a => Program(a, op, count), [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))]);
                g.Vcpu.SetCpuid(cpuid);
                g.Guest.Memory.Write(In, inputs);
                var exit = g.Vcpu.Run();
                if (ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
                {
                    // kvm_pvm hands the instruction to KVM's emulator, which stops (asserted as it is).
                    Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
                    Assert.Empty(g.Deliveries);
                    return;
                }
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{op.Name}: {exit.ToString()}");
                Assert.Empty(g.Deliveries);
                byte[] output = new byte[count * 24];
                g.Guest.Memory.Read(Out, output);
                foreach (byte b in output) h = (h ^ b) * 0x100000001b3;
            }
            if (h != op.Digest) failures.Add($"{op.Name}: digest 0x{h:X16}, the CPU's 0x{op.Digest:X16}");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    private sealed record StringOp(string Name, bool Explicit, Action<Assembler, byte> Emit, ulong Digest);

    /// <summary>FNV-1a 64 of the 24-byte outputs (XMM0, ECX, RFLAGS &amp; 0x8d5) of every imm8 and input, as the CPU produced them.</summary>
    private static readonly StringOp[] StringOps =
    [
        new("pcmpistri", false, (a, imm) => a.pcmpistri(xmm1, xmm2, imm), 0x294B2344D127A494UL),
        new("pcmpistrm", false, (a, imm) => a.pcmpistrm(xmm1, xmm2, imm), 0x13597244F277D015UL),
        new("pcmpestri", true, (a, imm) => a.pcmpestri(xmm1, xmm2, imm), 0xBFE144A5A0005BF9UL),
        new("pcmpestrm", true, (a, imm) => a.pcmpestrm(xmm1, xmm2, imm), 0x2342B872E15BBD19UL),
    ];

    /// <summary>The probe's SV strings (needles and haystacks) and LEN (EAX, EDX) pairs.</summary>
    private static readonly byte[][] Strings =
    [
        "hello, world!\0ab"u8.ToArray(), "lo\0zzzzzzzzzzzzz"u8.ToArray(), "aeiouAEIOU\0\0\0\0\0\0"u8.ToArray(), "azAZ09\0\0\0\0\0\0\0\0\0\0"u8.ToArray(),
        [0x80, 0xff, 0x7f, 0x01, 0x41, 0x00, 0x80, 0x00, 0xfe, 0xff, 0x02, 0x00, 0x6c, 0x6c, 0x10, 0x20], "llllllllllllllll"u8.ToArray(),
        [0x41, 0x00, 0x00, 0x80, 0xff, 0x7f, 0x6c, 0x00, 0x6f, 0x00, 0x00, 0x00, 0x41, 0x00, 0x6c, 0x00], "world!\0 hello, w"u8.ToArray(),
    ];

    private static readonly (int Eax, int Edx)[] Lengths = [(16, 16), (3, 7), (-5, 9), (0, 20), (8, -100)];

    [ConformanceCase("Intel SDM Vol. 2B PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM, Vol. 1 4.1: every imm8 (formats, aggregations, polarities, index/mask forms) on strings with and without terminators, signed and word data, and explicit lengths beyond the element count or negative: ECX or XMM0 and CF/ZF/SF/OF (AF/PF cleared) as the CPU computes them")]
    public static void sse_v2_string_compare_sweep_matches_the_cpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        CpuidEntry[] cpuid = [.. kvm.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | (1u << 20) } : e)];
        var failures = new List<string>();
        foreach (var op in StringOps)
        {
            var inputs = new List<byte>();
            foreach (var needle in Strings)
            {
                foreach (var hay in Strings)
                {
                    foreach (var (eax, edx) in op.Explicit ? Lengths : Lengths[..1])
                    {
                        byte[] e = new byte[48];
                        needle.CopyTo(e, 0);
                        hay.CopyTo(e, 16);
                        BinaryPrimitives.WriteInt32LittleEndian(e.AsSpan(32), eax);
                        BinaryPrimitives.WriteInt32LittleEndian(e.AsSpan(36), edx);
                        inputs.AddRange(e);
                    }
                }
            }
            int count = inputs.Count / 48;
            ulong h = 0xcbf29ce484222325;
            for (int group = 0; group < 128; group += 8)
            {
                using var g = IdtGuest.Create(kvm, a =>
                {
                    a.mov(rdi, (long)Out);
                    for (int imm = group; imm < group + 8; imm++)
                    {
                        var loop = a.CreateLabel();
                        a.mov(rsi, (long)In);
                        a.mov(r8d, count);
                        a.Label(ref loop);
                        a.pxor(xmm0, xmm0);
                        a.mov(ecx, 0x11111111);
                        a.movdqu(xmm1, __xmmword_ptr[rsi]);
                        a.movdqu(xmm2, __xmmword_ptr[rsi + 16]);
                        a.mov(eax, __dword_ptr[rsi + 32]);
                        a.mov(edx, __dword_ptr[rsi + 36]);
                        op.Emit(a, (byte)imm);
                        a.movdqu(__xmmword_ptr[rdi], xmm0);
                        a.mov(__dword_ptr[rdi + 16], ecx);
                        a.pushfq();
                        a.pop(rax);
                        a.and(eax, 0x8d5);
                        a.mov(__dword_ptr[rdi + 20], eax);
                        a.add(rsi, 48);
                        a.add(rdi, 24);
                        a.dec(r8d);
                        a.jnz(loop);
                    }
                    a.hlt();
                }, [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))]);
                g.Vcpu.SetCpuid(cpuid);
                g.Guest.Memory.Write(In, inputs.ToArray());
                var exit = g.Vcpu.Run();
                if (ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
                {
                    Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
                    Assert.Empty(g.Deliveries);
                    return;
                }
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{op.Name}: {exit.ToString()}");
                Assert.Empty(g.Deliveries);
                byte[] output = new byte[count * 8 * 24];
                g.Guest.Memory.Read(Out, output);
                foreach (byte b in output) h = (h ^ b) * 0x100000001b3;
            }
            if (h != op.Digest) failures.Add($"{op.Name}: digest 0x{h:X16}, the CPU's 0x{op.Digest:X16}");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }
}
