// SPDX-License-Identifier: MIT
using System.Numerics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The x86-64-v3 VEX general-purpose instructions (BMI1 ANDN/BEXTR/BLSI/BLSMSK/BLSR, BMI2 BZHI/MULX/PDEP/PEXT/RORX/
/// SARX/SHLX/SHRX; Intel SDM Vol. 2 per instruction page) on edge operands in 64- and 32-bit operand size: results
/// against this host's CPU through System.Runtime.Intrinsics (Bmi1, Bmi2), the flags each page defines (AF, PF and
/// BEXTR's SF masked: undefined). kvm_pvm runs its guests' instructions through KVM's emulator, which decodes no VEX
/// (<see cref="ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator"/>): there the real kernel's
/// KVM_EXIT_INTERNAL_ERROR is asserted as it is. Without CPUID.7.0:EBX BMI1/BMI2 in the guest's table they are #UD.
/// </summary>
public static class BmiV3Cases
{
    private const ulong In = 0x9_0000, Out = 0xC_0000;
    private const ulong CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
    private const int UD = 6;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>The kernel's supported CPUID with CPUID.7.0 EBX BMI1 (3) and BMI2 (8) set, or cleared.</summary>
    private static CpuidEntry[] FeatureTable(Kvm kvm, bool bmi) =>
        [.. kvm.GetSupportedCpuid().Select(e => e.Function == 7 && e.Index == 0
            ? e with { Ebx = bmi ? e.Ebx | (1u << 3) | (1u << 8) : e.Ebx & ~((1u << 3) | (1u << 8)) } : e)];

    /// <summary>One instruction on RSI = A, RDI = B, RDX = A ^ B: the expected RAX, R8 (MULX's high half), and the defined flags.</summary>
    private sealed record Step(string Name, ulong A, ulong B, Action<Assembler> Emit, ulong Rax, ulong R8, ulong Flags, ulong Defined);

    private static readonly ulong[] Values = [0, 1, 0x80, 0x8000_0000_0000_0000, ulong.MaxValue, 0x1234_5678_9abc_def0, 0xff00, 0x7fff_ffff_8000_0000];
    private static readonly ulong[] Controls = [0, 3, 0x0804, 0x2010, 70, 0x3f, 0xff_00ff, 0xf0f0_f0f0_f0f0_f0f0, 0x4020];

    private static ulong Szf(ulong r, int bits, bool zf = true, bool sf = true) =>
        (zf && (bits == 64 ? r : (uint)r) == 0 ? ZF : 0) | (sf && (r >> (bits - 1) & 1) != 0 ? SF : 0);

    private static IEnumerable<Step> Steps()
    {
        foreach (ulong a in Values)
        {
            foreach (ulong b in Controls.Concat(Values.Take(4)))
            {
                uint a32 = (uint)a, b32 = (uint)b;
                ulong r;
                r = Bmi1.X64.AndNot(a, b);
                yield return new($"andn {a:x} {b:x}", a, b, s => s.andn(rax, rsi, rdi), r, 0, Szf(r, 64), CF | ZF | SF | OF);
                r = Bmi1.AndNot(a32, b32);
                yield return new($"andn32 {a:x} {b:x}", a, b, s => s.andn(eax, esi, edi), r, 0, Szf(r, 32), CF | ZF | SF | OF);
                r = Bmi1.X64.BitFieldExtract(a, (ushort)b);
                yield return new($"bextr {a:x} {b:x}", a, b, s => s.bextr(rax, rsi, rdi), r, 0, Szf(r, 64, sf: false), CF | ZF | OF);
                r = Bmi1.BitFieldExtract(a32, (ushort)b32);
                yield return new($"bextr32 {a:x} {b:x}", a, b, s => s.bextr(eax, esi, edi), r, 0, Szf(r, 32, sf: false), CF | ZF | OF);
                r = Bmi2.X64.ZeroHighBits(a, b & 0xff);
                yield return new($"bzhi {a:x} {b:x}", a, b, s => s.bzhi(rax, rsi, rdi), r, 0, Szf(r, 64) | ((b & 0xff) > 63 ? CF : 0), CF | ZF | SF | OF);
                r = Bmi2.ZeroHighBits(a32, b32 & 0xff);
                yield return new($"bzhi32 {a:x} {b:x}", a, b, s => s.bzhi(eax, esi, edi), r, 0, Szf(r, 32) | ((b & 0xff) > 31 ? CF : 0), CF | ZF | SF | OF);
                r = Bmi2.X64.ParallelBitDeposit(a, b);
                yield return new($"pdep {a:x} {b:x}", a, b, s => s.pdep(rax, rsi, rdi), r, 0, 0, 0);
                r = Bmi2.ParallelBitExtract(a32, b32);
                yield return new($"pext32 {a:x} {b:x}", a, b, s => s.pext(eax, esi, edi), r, 0, 0, 0);
                r = Bmi2.X64.ParallelBitExtract(a, b);
                yield return new($"pext {a:x} {b:x}", a, b, s => s.pext(rax, rsi, rdi), r, 0, 0, 0);
                ulong d = a ^ b;
                yield return new($"mulx {a:x} {b:x}", a, b, s => s.mulx(r8, rax, rsi), d * a, Bmi2.X64.MultiplyNoFlags(d, a), 0, 0);
                yield return new($"mulx32 {a:x} {b:x}", a, b, s => s.mulx(r8d, eax, esi), (uint)((ulong)(uint)d * a32), ((ulong)(uint)d * a32) >> 32, 0, 0);
                yield return new($"sarx {a:x} {b:x}", a, b, s => s.sarx(rax, rsi, rdi), (ulong)((long)a >> (int)(b & 63)), 0, 0, 0);
                yield return new($"shlx32 {a:x} {b:x}", a, b, s => s.shlx(eax, esi, edi), a32 << (int)(b & 31), 0, 0, 0);
                yield return new($"shrx {a:x} {b:x}", a, b, s => s.shrx(rax, rsi, rdi), a >> (int)(b & 63), 0, 0, 0);
                yield return new($"sarx32 {a:x} {b:x}", a, b, s => s.sarx(eax, esi, edi), (uint)((int)a32 >> (int)(b & 31)), 0, 0, 0);
            }
            uint x = (uint)a;
            ulong v;
            v = Bmi1.X64.ExtractLowestSetBit(a);
            yield return new($"blsi {a:x}", a, 0, s => s.blsi(rax, rsi), v, 0, Szf(v, 64) | (a != 0 ? CF : 0), CF | ZF | SF | OF);
            v = Bmi1.ExtractLowestSetBit(x);
            yield return new($"blsi32 {a:x}", a, 0, s => s.blsi(eax, esi), v, 0, Szf(v, 32) | (x != 0 ? CF : 0), CF | ZF | SF | OF);
            v = Bmi1.X64.GetMaskUpToLowestSetBit(a);
            yield return new($"blsmsk {a:x}", a, 0, s => s.blsmsk(rax, rsi), v, 0, Szf(v, 64, zf: false) | (a == 0 ? CF : 0), CF | ZF | SF | OF);
            v = Bmi1.GetMaskUpToLowestSetBit(x);
            yield return new($"blsmsk32 {a:x}", a, 0, s => s.blsmsk(eax, esi), v, 0, Szf(v, 32, zf: false) | (x == 0 ? CF : 0), CF | ZF | SF | OF);
            v = Bmi1.X64.ResetLowestSetBit(a);
            yield return new($"blsr {a:x}", a, 0, s => s.blsr(rax, rsi), v, 0, Szf(v, 64) | (a == 0 ? CF : 0), CF | ZF | SF | OF);
            v = Bmi1.ResetLowestSetBit(x);
            yield return new($"blsr32 {a:x}", a, 0, s => s.blsr(eax, esi), v, 0, Szf(v, 32) | (x == 0 ? CF : 0), CF | ZF | SF | OF);
            foreach (byte c in new byte[] { 0, 1, 31, 32, 63, 200 })
            {
                yield return new($"rorx {a:x} {c}", a, 0, s => s.rorx(rax, rsi, c), BitOperations.RotateRight(a, c & 63), 0, 0, 0);
                yield return new($"rorx32 {a:x} {c}", a, 0, s => s.rorx(eax, esi, c), BitOperations.RotateRight(x, c & 31), 0, 0, 0);
            }
        }
    }

    [ConformanceCase("Intel SDM Vol. 2 ANDN, BEXTR, BLSI, BLSMSK, BLSR, BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX: results as this CPU computes them, the flags each page defines; RAX/R8 written, a 32-bit destination zero-extended")]
    public static void bmi_instructions_match_the_cpu(CaseContext ctx)
    {
        if (!Bmi1.X64.IsSupported || !Bmi2.X64.IsSupported) return; // no oracle on this host
        var steps = Steps().ToArray();
        for (int start = 0; start < steps.Length; start += 400) RunSteps(ctx, steps[start..Math.Min(steps.Length, start + 400)]);
    }

    private static void RunSteps(CaseContext ctx, Step[] steps)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            for (int k = 0; k < steps.Length; k++)
            {
                ulong at = In + (ulong)k * 16, to = Out + (ulong)k * 32;
                a.mov(rsi, __qword_ptr[at]);
                a.mov(rdi, __qword_ptr[at + 8]);
                a.mov(rdx, rsi);
                a.xor(rdx, rdi);
                a.mov(rax, -1L);
                a.mov(r8, -1L);
                a.push(k % 2 == 0 ? 0x2 : 0xcd5); // every arithmetic flag clear, then set
                a.popfq();
                steps[k].Emit(a);
                a.pushfq();
                a.pop(rcx);
                a.mov(__qword_ptr[to], rax);
                a.mov(__qword_ptr[to + 8], r8);
                a.mov(__qword_ptr[to + 16], rcx);
            }
            a.hlt();
        }, Halting);
        g.Vcpu.SetCpuid(FeatureTable(kvm, bmi: true));
        for (int k = 0; k < steps.Length; k++)
        {
            g.Guest.Memory.Write(In + (ulong)k * 16, BitConverter.GetBytes(steps[k].A));
            g.Guest.Memory.Write(In + (ulong)k * 16 + 8, BitConverter.GetBytes(steps[k].B));
        }
        var exit = g.Vcpu.Run();
        if (ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
            Assert.Empty(g.Deliveries);
            return;
        }
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        var failures = new List<string>();
        byte[] got = new byte[24];
        for (int k = 0; k < steps.Length; k++)
        {
            var s = steps[k];
            g.Guest.Memory.Read(Out + (ulong)k * 32, got);
            ulong rax = BitConverter.ToUInt64(got, 0), r8 = BitConverter.ToUInt64(got, 8), fl = BitConverter.ToUInt64(got, 16);
            ulong untouched = k % 2 == 0 ? 0 : CF | PF | AF | ZF | SF | OF;
            ulong wantFlags = s.Defined == 0 ? untouched : s.Flags;
            ulong checkedFlags = s.Defined == 0 ? CF | PF | AF | ZF | SF | OF : s.Defined;
            ulong wantR8 = s.Name.StartsWith("mulx", StringComparison.Ordinal) ? s.R8 : ulong.MaxValue;
            if (rax != s.Rax || r8 != wantR8 || (fl & checkedFlags) != (wantFlags & checkedFlags))
                failures.Add($"{s.Name}: rax {rax:x} r8 {r8:x} flags {fl:x}, the CPU's rax {s.Rax:x} r8 {wantR8:x} flags {wantFlags:x}/{checkedFlags:x}");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures.Take(20)));
    }

    [ConformanceCase("Intel SDM Vol. 2A Table 2-29 (VEX GPR instructions): ANDN without CPUID.7.0:EBX.BMI1, PDEP without BMI2 -> #UD")]
    public static void bmi_without_the_cpuid_bit_is_undefined(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (what, emit) in new (string, Action<Assembler>)[] { ("andn", a => a.andn(rax, rsi, rdi)), ("pdep", a => a.pdep(rax, rsi, rdi)) })
        {
            using var g = IdtGuest.Create(kvm, a => { emit(a); a.hlt(); }, Halting);
            g.Vcpu.SetCpuid(FeatureTable(kvm, bmi: false));
            var exit = g.Vcpu.Run();
            if (ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
            {
                Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
                continue;
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.Reason}");
            Assert.Equal((ulong)UD, Assert.Single(g.Deliveries).Vector);
        }
    }
}
