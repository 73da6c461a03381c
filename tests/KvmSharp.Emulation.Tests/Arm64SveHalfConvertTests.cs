// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SVE SCVTF/UCVTF to .H and FCVTZS/FCVTZU from .H (Emulation/Arm64/A64Interpreter.SveHalf.cs; Arm ARM C8.2, shared
/// pseudocode FixedToFP / FPToFixed at N = 16) against qemu-aarch64 -cpu max,sve256=on: each conversion, on two input
/// vectors (halves: ±0.5, ±2.5, ±65504, ±∞, NaNs, a subnormal, ±32768, 40000…; integers: 2049, 4097, 65520, 65503,
/// −1, INT16/INT32/INT64 bounds…), in every FPCR rounding mode and with FPCR.DN, Z0 and FPSR's cumulative flags
/// compared. The emulator runs with ZCR_EL1.LEN = 1 (256 bits), the MMU off.
/// </summary>
public class Arm64SveHalfConvertTests
{
    private const uint SveFeature = 1u << KvmArm64Constants.KVM_ARM_VCPU_SVE;

    private static readonly (uint Word, string Name)[] Ops =
    [
        (0x6552A020, "scvtf z0.h, p0/m, z1.h"), (0x6554A020, "scvtf z0.h, p0/m, z1.s"), (0x6556A020, "scvtf z0.h, p0/m, z1.d"),
        (0x6553A020, "ucvtf z0.h, p0/m, z1.h"), (0x6555A020, "ucvtf z0.h, p0/m, z1.s"), (0x6557A020, "ucvtf z0.h, p0/m, z1.d"),
        (0x655AA020, "fcvtzs z0.h, p0/m, z1.h"), (0x655CA020, "fcvtzs z0.s, p0/m, z1.h"), (0x655EA020, "fcvtzs z0.d, p0/m, z1.h"),
        (0x655BA020, "fcvtzu z0.h, p0/m, z1.h"), (0x655DA020, "fcvtzu z0.s, p0/m, z1.h"), (0x655FA020, "fcvtzu z0.d, p0/m, z1.h"),
    ];

    /// <summary>
    /// Z1 inputs, as sixteen 16-bit lanes: two of halves (the low half of each .S and .D element among the special
    /// values), two of integers (read as 16-, 32- and 64-bit elements), and two whose lanes raise few flags (FPSR's flags are
    /// cumulative over the vector), so one lane's IOC or IXC is seen alone.
    /// </summary>
    private static readonly ushort[][] Inputs =
    [
        [0x3800, 0x3E00, 0x4100, 0xC100, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7D00, 0x0001, 0x7800, 0xF800, 0x78E2, 0xBE00, 0x3BEB],
        [0xBE00, 0x7BFF, 0x7800, 0x3800, 0xFBFF, 0x3E00, 0x78E2, 0xC100, 0xFC00, 0x4100, 0x7D00, 0x0001, 0x7C00, 0x3BEB, 0xF7FF, 0x77FF],
        [0x0801, 0x0000, 0xFFFF, 0xFFFF, 0x7FFF, 0x0000, 0x8000, 0xFFFF, 0xFFF0, 0x0000, 0x0001, 0x0000, 0x1001, 0x0000, 0x0003, 0x0000],
        [0xFFE0, 0x0000, 0x0FFF, 0x0000, 0x0000, 0x0000, 0x0000, 0x8000, 0x0005, 0x0000, 0x0000, 0x0000, 0xFFDF, 0xFFFF, 0xFFFF, 0x7FFF],
        // Whole halves only (no IXC from any lane), 32768 the one out of 16-bit signed range; then small exact integers.
        [0x7800, 0x4000, 0x3C00, 0x0000, 0xF800, 0x4200, 0x5640, 0xC000, 0x4400, 0x0000, 0x3C00, 0x4000, 0x4500, 0x4600, 0x4700, 0x4800],
        [0x0001, 0x0002, 0x0003, 0x0004, 0x0400, 0x0000, 0x0800, 0x0007, 0x0064, 0x0000, 0x0000, 0x0000, 0x7FF0, 0x0000, 0x0010, 0x0000],
    ];

    /// <summary>FPCR values: round to nearest, towards +∞, towards −∞, towards zero, and default NaN.</summary>
    private static readonly uint[] Fpcrs = [0, 0x40_0000, 0x80_0000, 0xC0_0000, 0x200_0000];

    private const string Source = """
        #include <stdio.h>
        #include <stdint.h>
        static const uint16_t in[][16] = { INPUTS };
        static void show(const uint8_t *b, int n) { for (int i = 0; i < n; i++) printf("%02x", b[i]); }
        #define CASE(OP, FPCR, I) do { \
            uint8_t z[32]; uint64_t fpsr; \
            __asm__ volatile("ldr z1, [%0]\n dup z0.b, #0\n mov x5, %1\n ptrue p0.h\n msr fpcr, x5\n msr fpsr, xzr\n" \
                             " .inst " #OP "\n mrs x6, fpsr\n msr fpcr, xzr\n str z0, [%2]\n str x6, [%3]\n" \
                             : : "r"(in[I]), "r"((uint64_t)(FPCR)), "r"(z), "r"(&fpsr) \
                             : "memory", "x5", "x6", "z0", "z1", "p0"); \
            show(z, 32); printf(" %02x\n", (unsigned)fpsr & 0x9f); } while (0)
        int main(void)
        {
        CASES
            return 0;
        }
        """;

    /// <summary>
    /// The conversion on the emulated kernel: Z1 = <paramref name="input"/>, Z0 = 0, FPCR = <paramref name="fpcr"/>;
    /// returns Z0's 32 bytes and FPSR.
    /// </summary>
    private static (byte[] Z0, ulong Fpsr) Emulate(uint word, ushort[] input, uint fpcr)
    {
        using var s = new Arm64TestVm(a =>
        {
            a.Emit(0x2558E3E0); // ptrue p0.h
            a.Emit(0xD51B4405); // msr fpcr, x5
            a.Emit(0xD51B443F); // msr fpsr, xzr
            a.Emit(word);
            a.Emit(0xD53B4426); // mrs x6, fpsr
            Arm64Guest.Ucall(a, 1);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV1 });
        var v = s.AddVcpu(SveFeature);
        v.FinalizeSve();
        v.SetOneReg(ZCR_EL1, 1);
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(1, 0), [.. input.SelectMany(BitConverter.GetBytes), .. new byte[224]]);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0), new byte[256]);
        v.SetOneReg(KvmArm64Regs.X(5), fpcr);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(1UL, BitConverter.ToUInt64(exit.MmioData));
        return (v.GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0))[..32], v.GetOneReg(KvmArm64Regs.X(6)));
    }

    [SkippableFact]
    public void Half_precision_integer_conversions_give_what_qemu_gives_in_every_rounding_mode()
    {
        var cases = (from op in Ops from i in Enumerable.Range(0, Inputs.Length) from fpcr in Fpcrs
                     select (op.Word, op.Name, Input: i, Fpcr: fpcr)).ToArray();
        string inputs = string.Join(", ", Inputs.Select(h => "{ " + string.Join(", ", h.Select(x => $"0x{x:X4}")) + " }"));
        string[] expected = SveQemuOracle.Lines(Source.Replace("INPUTS", inputs)
            .Replace("CASES", string.Join("\n", cases.Select(c => $"    CASE(0x{c.Word:X8}, 0x{c.Fpcr:X}, {c.Input});"))), cases.Length);
        var failures = new List<string>();
        for (int i = 0; i < cases.Length; i++)
        {
            var c = cases[i];
            var (z0, fpsr) = Emulate(c.Word, Inputs[c.Input], c.Fpcr);
            string actual = $"{Convert.ToHexStringLower(z0)} {fpsr & 0x9f:x2}";
            if (expected[i] != actual) failures.Add($"{c.Name} input {c.Input} FPCR 0x{c.Fpcr:X}: qemu {expected[i]}, emulator {actual}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
