// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A sweep of the A64 Advanced SIMD and floating-point instruction forms (Arm ARM DDI 0487 C4.1 "Data Processing --
/// Scalar Floating-Point and Advanced SIMD" and the SIMD&amp;FP loads and stores): every ARMv8.0-A form with each
/// arrangement (integer, floating point, conversions, permutes, table lookups, loads and stores, the cryptographic
/// extension), plus FEAT_FP16 forms, FEAT_RDM (v8.1) and FEAT_DotProd (v8.2), as GNU assembly with the word
/// aarch64-linux-gnu-as gives for it. Each word runs alone on an emulated Neoverse-V1-like vCPU (every feature listed
/// is in its ID registers) with FP enabled and X1/X2 pointing into RAM, and must run to the end of the program: no
/// <see cref="UnsupportedInstructionStop"/> (KVM_EXIT_INTERNAL_ERROR) and no exception (an allocated, advertised form
/// is never UNDEFINED). The optional features the presets advertise in ID_AA64ISAR0/ISAR1_EL1 are swept on the preset
/// that has them: FEAT_FHM, FEAT_FCMA (FCMLA, FCADD, every arrangement, rotation and by-element index), FEAT_JSCVT
/// and FEAT_SHA512/SHA3/SM3/SM4 on Neoverse V1 and V2 (<see cref="FeatureForms"/>), FEAT_FRINTTS on Neoverse V2
/// (<see cref="V2Forms"/>). BF16 and I8MM have their own tests.
/// </summary>
public partial class Arm64SimdCoverageTests
{
    /// <summary>The forms: "assembly|word" (the word from aarch64-linux-gnu-as, .arch armv8.5-a+fp16+fp16fml+crypto+rdma+dotprod).</summary>
    private const string Forms =
        ThreeSameForms + "\n" +
        ThreeDifferentForms + "\n" +
        TwoRegisterMiscForms + "\n" +
        AcrossLanesForms + "\n" +
        CopyAndImmediateForms + "\n" +
        ShiftByImmediateForms + "\n" +
        ByElementForms + "\n" +
        PermuteAndTableForms + "\n" +
        ScalarForms + "\n" +
        FloatingPointForms + "\n" +
        LoadStoreForms + "\n" +
        CryptoForms;

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static (string Asm, uint Word)[] Parse(string forms) =>
        [.. Lines(forms).Select(l => l.Split('|')).Select(p => (p[0], Convert.ToUInt32(p[1], 16)))];

    private static (string Asm, uint Word)[] Parse() => [.. Parse(Forms), .. Parse(FeatureForms), .. Parse(V2Forms)];

    /// <summary>Each list with the presets it runs on.</summary>
    private static IEnumerable<(string Asm, uint Word, Arm64CpuModel Model)> Sweep() =>
    [
        .. Parse(Forms).Select(f => (f.Asm, f.Word, Arm64CpuModel.NeoverseV1)),
        .. Parse(FeatureForms).SelectMany(f => new[] { (f.Asm, f.Word, Arm64CpuModel.NeoverseV1), (f.Asm, f.Word, Arm64CpuModel.NeoverseV2) }),
        .. Parse(V2Forms).Select(f => (f.Asm, f.Word, Arm64CpuModel.NeoverseV2)),
    ];

    /// <summary>Every listed form runs to the end of its program (decoded and executed) on its presets.</summary>
    [Fact]
    public void Every_listed_advsimd_and_fp_form_decodes_and_runs()
    {
        var failures = new List<string>();
        foreach (var (asm, word, model) in Sweep())
        {
            using var s = Arm64TestVm.RunningWords(model, word);
            var v = s.AddVcpu();
            v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x30_0000UL);
            v.SetOneReg(KvmArm64Regs.X(1), 0x4000);
            v.SetOneReg(KvmArm64Regs.X(2), 0x1000);
            var reason = v.RunBounded().Reason;
            if (reason == KvmExitReason.KVM_EXIT_INTERNAL_ERROR) failures.Add($"{asm} (0x{word:x8}, {model.Name}): not emulated");
            else if (v.GetOneReg(KvmArm64Regs.X(9)) != Arm64Guest.UcallDone)
                failures.Add($"{asm} (0x{word:x8}, {model.Name}): exception, ESR_EL1 0x{v.GetOneReg(KvmArm64SysRegs.ESR_EL1):x}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} forms fail:\n" + string.Join("\n", failures));
    }

    /// <summary>The words are what aarch64-linux-gnu-as assembles the forms to (skips, with the reason, without it).</summary>
    [SkippableFact]
    public void The_listed_words_are_the_assembler_s()
    {
        var forms = Parse();
        string dir = Path.Combine(Path.GetTempPath(), $"kvmsharp-simd-coverage-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            AssembleAndCompare(forms, dir);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void AssembleAndCompare((string Asm, uint Word)[] forms, string dir)
    {
        string source = Path.Combine(dir, "forms.s"), obj = Path.Combine(dir, "forms.o"), bin = Path.Combine(dir, "forms.bin");
        File.WriteAllText(source, ".arch armv8.5-a+fp16+fp16fml+crypto+rdma+dotprod+sha3+sm4\n" + string.Join("\n", forms.Select(f => f.Asm)) + "\n");
        var (code, output) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-as", ["-o", obj, source]);
        Skip.If(code == -1, $"aarch64-linux-gnu-as (package binutils-aarch64-linux-gnu) is not available: {output}");
        Assert.True(code == 0, output);
        (code, output) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", obj, bin]);
        Skip.If(code == -1, $"aarch64-linux-gnu-objcopy is not available: {output}");
        Assert.True(code == 0, output);
        byte[] text = File.ReadAllBytes(bin);
        Assert.Equal(4 * forms.Length, text.Length);
        var differ = forms.Where((f, i) => BitConverter.ToUInt32(text, 4 * i) != f.Word).Select(f => f.Asm).ToList();
        Assert.Empty(differ);
    }
}
