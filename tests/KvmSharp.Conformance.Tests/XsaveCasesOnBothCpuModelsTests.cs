// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Conformance.Tests;

/// <summary>
/// The XSAVE cases (Cases/XsaveRules.cs) and sse_faults derive what they expect from the kernel under test
/// (KVM_GET_SUPPORTED_CPUID leaf 0xD). The "emulated" kernel beside "linux" plays only the machine's own CPU, so here
/// each case also runs on the emulator playing each CPU model this project has met: EPYC Milan (XCR0 0x207, PKRU) and
/// EPYC Genoa (XCR0 0xe7, AVX-512, no PKRU), whichever machine this is.
/// </summary>
public class XsaveCasesOnBothCpuModelsTests
{
    private static readonly Dictionary<string, X86CpuModel> s_models = new()
    {
        ["EpycMilan"] = X86CpuModel.EpycMilan,
        ["EpycGenoa"] = X86CpuModel.EpycGenoa,
    };

    public static TheoryData<string, string> CasesOnModels
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var @case in ConformanceSuite.Cases.Where(c => c.Group == "XsaveRules" || c.Name == "sse_faults"))
                foreach (string model in s_models.Keys) data.Add(@case.Name, model);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(CasesOnModels))]
    public void Case_passes_on_the_emulator_playing(string name, string model)
    {
        var result = ConformanceRunner.Run(ConformanceSuite.Find(name), Target(s_models[model]));
        Assert.True(result.Outcome == CaseOutcome.Passed, $"{result.Outcome}: {result.Reason}");
    }

    [Fact]
    public void The_two_models_offer_different_xsave_features()
    {
        // Without this the theory above could run one layout twice.
        Assert.Equal(0x207UL, SupportedXcr0(X86CpuModel.EpycMilan));
        Assert.Equal(0xe7UL, SupportedXcr0(X86CpuModel.EpycGenoa));
        Assert.True(ConformanceSuite.Cases.Count(c => c.Group == "XsaveRules") >= 7);
    }

    private static ulong SupportedXcr0(X86CpuModel model)
    {
        var kernel = (EmulatedKernel)Target(model).CreateKernel(EmulatedProfile.LikeThisHost);
        try
        {
            using var kvm = Kvm.Open(kernel);
            var leaf = kvm.GetSupportedCpuid().Single(e => e.Function == 0xd && e.Index == 0);
            return leaf.Eax | (ulong)leaf.Edx << 32;
        }
        finally
        {
            kernel.Dispose();
        }
    }

    /// <summary>The case's emulator configuration with <see cref="EmulatorConfig.X86Cpu"/> set to <paramref name="model"/>.</summary>
    private static KernelTarget Target(X86CpuModel model) =>
        KernelTarget.EmulatedHost($"emulated ({model.Name})", profile => new EmulatedKernel(EmulatedKernels.Config(profile) with { X86Cpu = model }));
}
