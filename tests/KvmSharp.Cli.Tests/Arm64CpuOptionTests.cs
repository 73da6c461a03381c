// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>--arm64-cpu</c> picks the emulated arm64 host CPU (Emulation/Arm64/Arm64CpuModel.cs presets), and <c>caps</c> on an
/// arm64 kernel prints what a vCPU's ID registers offer, in /proc/cpuinfo's names (Arm64FeatureNames).
/// </summary>
public sealed class Arm64CpuOptionTests
{
    [Theory]
    // The N1-like base: Armv8.2 with DotProd and RDM, no PAuth, no SVE.
    [InlineData("neoverse-n1", "fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp ssbs")]
    [InlineData("neoverse-n1+pauth", "fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp ssbs paca pacg")]
    // V1 and V2 add the Armv8.3/8.4 FP features, the optional crypto, SVE (V2: SVE2 and its crypto) and FRINTTS on V2.
    // Both also have DIT, LSE2 (uscat), FlagM, LRCPC2 (ilrcpc), DPB2 (dcpodp), DGH and RNG; V2 adds SB, FlagM2 and BTI.
    // Every preset has SSBS2 (ssbs); N1 has no DIT (qemu's neoverse-n1, a Graviton2's /proc/cpuinfo).
    [InlineData("neoverse-v1", "fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 " +
                               "asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng")]
    [InlineData("neoverse-v2", "fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 " +
                               "asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg dcpodp sve2 sveaes svepmull svebitperm " +
                               "svesha3 svesm4 flagm2 frint svei8mm svebf16 i8mm bf16 dgh rng bti")]
    public void Caps_names_the_features_of_the_chosen_arm64_cpu(string cpu, string features)
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", cpu));
        Assert.EndsWith($", {cpu})", caps.Module, StringComparison.Ordinal);
        Assert.Equal(features, caps.Root.GetProperty("arm64Cpu").GetProperty("features").GetString());
        var table = CliRun.Of("caps", "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", cpu);
        // The table's console wraps long lines: compare with the line breaks as spaces.
        string text = string.Join(' ', table.Stdout.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"arm64 CPU: {features} (", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_default_arm64_preset_is_the_n1_and_x86_has_no_arm64_line()
    {
        using var arm = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "arm64"));
        using var n1 = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", "neoverse-n1"));
        using var x86 = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "x86_64"));
        Assert.Equal(n1.Root.GetProperty("arm64Cpu").GetRawText(), arm.Root.GetProperty("arm64Cpu").GetRawText());
        Assert.False(x86.Root.TryGetProperty("arm64Cpu", out _));
    }

    [Fact]
    public void The_feature_names_follow_the_kernels_table_for_a_neoverse_v1s_registers()
    {
        // qemu's neoverse-v1 (target/arm/tcg/cpu64.c, from the Neoverse V1 TRM): every field these registers hold that
        // Linux names, in hwcap_str order — dit (PFR0.DIT 1), uscat (MMFR2.AT 1), ilrcpc (LRCPC 2), flagm (TS 1), ssbs
        // (PFR1.SSBS 2), dcpodp (DPB 2), dgh and rng included: a Graviton3's /proc/cpuinfo less evtstrm and cpuid.
        string names = Arm64FeatureNames.Decode(new(Isar0: 0x1011111110212120, Isar1: 0x0011100001211032, Pfr0: 0x1101110120111112,
            Zfr0: 0x0000100000100000, Pfr1: 0x20, Mmfr2: 0x0220011102101011));
        Assert.Equal("fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp " +
                     "sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng", names);
        // FP and AdvSIMD are signed fields: 0xF is "not implemented"; ZFR0 counts only with PFR0.SVE; PFR1.SSBS 1
        // (PSTATE.SSBS without the register form) is not "ssbs"; PFR1.BT 1 is "bti".
        Assert.Equal("none", Arm64FeatureNames.Decode(new(0, 0, 0xFF_0000, 0x1, Pfr1: 0x10)));
        Assert.Equal("bti", Arm64FeatureNames.Decode(new(0, 0, 0xFF_0000, 0, Pfr1: 0x1)));
    }

    [Fact]
    public void Arm64_cpu_outside_an_emulated_arm64_kernel_is_a_usage_error()
    {
        var linux = CliRun.Of("caps", "--arm64-cpu", "neoverse-v2");
        Assert.Equal(2, linux.ExitCode);
        Assert.Contains("--arm64-cpu applies only to --kernel emulated", linux.Stderr, StringComparison.Ordinal);
        var x86 = CliRun.Of("caps", "--kernel", "emulated", "--arch", "x86_64", "--arm64-cpu", "neoverse-v2");
        Assert.Equal(2, x86.ExitCode);
        Assert.Contains("--arm64-cpu neoverse-v2 needs --kernel emulated --arch arm64", x86.Stderr, StringComparison.Ordinal);
        var unknown = CliRun.Of("caps", "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", "cortex-a53");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("neoverse-v2", unknown.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Sve_runs_on_the_chosen_cpu_when_it_has_sve_and_is_a_usage_error_when_not()
    {
        var v1 = CliRun.Of("run", "hello", "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", "neoverse-v1", "--sve", "256");
        Assert.True(v1.ExitCode == 0, v1.Stdout + v1.Stderr);
        Assert.Contains(Hello.Greeting, v1.Stdout, StringComparison.Ordinal);
        var n1 = CliRun.Of("run", "hello", "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", "neoverse-n1", "--sve", "128");
        Assert.Equal(2, n1.ExitCode);
        Assert.Contains("--arm64-cpu neoverse-n1 has none", n1.Stderr, StringComparison.Ordinal);
    }
}
