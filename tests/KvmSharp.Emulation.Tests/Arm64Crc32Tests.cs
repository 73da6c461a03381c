// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Emulation.Tests.Arm64SveBf16Tests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// CRC32B/H/W/X and CRC32CB/H/W/X (A64Interpreter.Crc32.cs), which every preset advertises in ID_AA64ISAR0_EL1.CRC32:
/// against qemu-aarch64 -cpu max (the operands from the data windows' V1/V2, the result moved to V0), the standard
/// check values of "123456789", and the sf/sz rule.
/// </summary>
public class Arm64Crc32Tests
{
    /// <summary>X11 = the low doubleword of V1 (the accumulator), X13 = V2's (the data); the result, in X11, moved to V0 (the harness lets a case use X11 and X13 only).</summary>
    private static string Case(string insn) => $"fmov x11, d1\nfmov x13, d2\n{insn}\nfmov d0, x11";

    private static readonly string[] Cases =
    [
        Case("crc32b w11, w11, w13"), Case("crc32h w11, w11, w13"), Case("crc32w w11, w11, w13"), Case("crc32x w11, w11, x13"),
        Case("crc32cb w11, w11, w13"), Case("crc32ch w11, w11, w13"), Case("crc32cw w11, w11, w13"), Case("crc32cx w11, w11, x13"),
        // Chains over all of X13, each step's accumulator the last one's result.
        Case("crc32x w11, w11, x13\ncrc32w w11, w11, w13\nror x13, x13, #16\ncrc32h w11, w11, w13\ncrc32b w11, w11, w13"),
        Case("crc32cx w11, w11, x13\ncrc32cw w11, w11, w13\nror x13, x13, #16\ncrc32ch w11, w11, w13\ncrc32cb w11, w11, w13"),
        Case("mvn w11, wzr\ncrc32cx w11, w11, x13"),
        // Rd distinct from Rn: the result replaces X13 whole (a W write zeroes the upper half).
        "fmov x11, d1\nfmov x13, d2\ncrc32w w13, w11, w13\nfmov d0, x13",
    ];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Built = new(() => Build(Cases, "crc32"));

    [SkippableFact]
    public void Crc32_and_crc32c_give_the_values_qemu_gives() =>
        Arm64Sve2Tests.CompareWithQemu(Built.Value, Names(Cases), 128);

    /// <summary>
    /// CRC-32 and CRC-32C of "123456789" with the usual all-ones start and final inversion: 0xCBF43926 and 0xE3069283
    /// (the catalogue's check values): crc32x / crc32cx over "12345678", then crc32b / crc32cb over "9".
    /// </summary>
    [Theory]
    [InlineData(0x9AC24C20u, 0x1AC34000u, 0xCBF4_3926u)] // crc32x w0, w1, x2; crc32b w0, w0, w3
    [InlineData(0x9AC25C20u, 0x1AC35000u, 0xE306_9283u)] // crc32cx w0, w1, x2; crc32cb w0, w0, w3
    public void The_check_values_of_123456789_come_out(uint eightBytes, uint oneByte, uint check)
    {
        using var s = Arm64TestVm.RunningWords(Arm64CpuModel.NeoverseN1, eightBytes, oneByte);
        var v = s.AddVcpu();
        v.SetOneReg(KvmArm64Regs.X(1), 0xFFFF_FFFF);
        v.SetOneReg(KvmArm64Regs.X(2), BitConverter.ToUInt64("12345678"u8));
        v.SetOneReg(KvmArm64Regs.X(3), (byte)'9');
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        Assert.Equal(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal(check, ~(uint)v.GetOneReg(KvmArm64Regs.X(0)));
    }

    /// <summary>"if sf == '1' &amp;&amp; sz != '11' then UNDEFINED; if sf == '0' &amp;&amp; sz == '11' then UNDEFINED": EC 0 at the instruction, on every preset, whatever CPACR_EL1.FPEN says.</summary>
    [Theory]
    [InlineData(0x1AC24C20u)] // crc32x with sf = 0
    [InlineData(0x9AC24020u)] // crc32b with sf = 1
    [InlineData(0x9AC25820u)] // crc32cw with sf = 1
    public void A_size_that_disagrees_with_sf_is_undefined(uint insn) => Arm64TestVm.AssertUndefinedBeforeFpTrap(insn);
}
