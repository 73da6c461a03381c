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
    [InlineData("neoverse-n1", "fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp")]
    [InlineData("neoverse-n1+pauth", "fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp paca pacg")]
    // V1 and V2 add the Armv8.3/8.4 FP features, the optional crypto, SVE (V2: SVE2 and its crypto) and FRINTTS on V2.
    // Both also have FlagM, LRCPC2 (ilrcpc), DPB2 (dcpodp), DGH and RNG; V2 adds SB and FlagM2.
    [InlineData("neoverse-v1", "fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 " +
                               "asimddp sha512 sve asimdfhm ilrcpc flagm paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng")]
    [InlineData("neoverse-v2", "fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 " +
                               "asimddp sha512 sve asimdfhm ilrcpc flagm sb paca pacg dcpodp sve2 sveaes svepmull svebitperm svesha3 " +
                               "svesm4 flagm2 frint svei8mm svebf16 i8mm bf16 dgh rng")]
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
        // Linux names, in hwcap_str order — ilrcpc (LRCPC 2), flagm (TS 1), dcpodp (DPB 2), dgh and rng included.
        string names = Arm64FeatureNames.Decode(isar0: 0x1011111110212120, isar1: 0x0011100001211032, pfr0: 0x1101110120111112,
            zfr0: 0x0000100000100000);
        Assert.Equal("fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp " +
                     "sha512 sve asimdfhm ilrcpc flagm paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng", names);
        // FP and AdvSIMD are signed fields: 0xF is "not implemented"; ZFR0 counts only with PFR0.SVE.
        Assert.Equal("none", Arm64FeatureNames.Decode(0, 0, 0xFF_0000, 0x1));
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
