// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Conformance.Tests;

/// <summary>
/// Cases whose expectation follows the vendor of the kernel's CPU: on this AMD host (and the "emulated" kernel beside
/// it) AMD's rules apply — SYSRET with a non-canonical RCX faults at CPL 3 (AMD APM Vol. 3 SYSRET), a 64-bit SYSENTER
/// is #UD, intercepted by KVM (emulate.c em_sysenter, x86.c handle_emulation_failure). Here they also run on the
/// emulator playing an Intel CPU (EPYC Genoa's supported CPUID with leaf 0 saying "GenuineIntel"), where the Intel SDM
/// Vol. 2B applies: SYSRET's #GP(0) at CPL 0, a 64-bit SYSENTER entering SYSENTER_EIP with a 64-bit CS. The 32-bit
/// SYSENTER cases and SYSEXIT do the same on both vendors.
/// </summary>
public class CasesOnAnIntelVendorTests
{
    public static TheoryData<string> Cases => new()
    {
        "ring_fault_sysret_with_a_non_canonical_rcx_faults_by_vendor",
        "ring_fault_sysret32_and_sysret_at_cpl_3",
        "sysenter_in_64_bit_mode_follows_the_vendor",
        "sysexit_in_64_bit_mode_returns_to_sysenter_cs_plus_32",
        "sysenter_and_sysexit_round_trip_through_ring_3_in_32_bit_mode",
        "sysenter_and_sysexit_faults_in_32_bit_mode",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case_passes_on_the_emulator_playing_an_intel_cpu(string name)
    {
        var result = ConformanceRunner.Run(ConformanceSuite.Find(name), Target(IntelVendorModel()));
        Assert.True(result.Outcome == CaseOutcome.Passed, $"{result.Outcome}: {result.Reason}");
    }

    [Fact]
    public void The_model_presents_an_intel_vendor()
    {
        // Without this the theory above could run the AMD expectations again.
        var kernel = (EmulatedKernel)Target(IntelVendorModel()).CreateKernel(EmulatedProfile.LikeThisHost);
        try
        {
            using var kvm = Kvm.Open(kernel);
            var l0 = kvm.GetSupportedCpuid().Single(e => e.Function == 0);
            Assert.Equal((0x756e_6547u, 0x4965_6e69u, 0x6c65_746eu), (l0.Ebx, l0.Edx, l0.Ecx)); // "GenuineIntel"
        }
        finally
        {
            kernel.Dispose();
        }
    }

    /// <summary>EPYC Genoa's KVM_GET_SUPPORTED_CPUID with the vendor string of leaf 0 replaced by "GenuineIntel".</summary>
    private static X86CpuModel IntelVendorModel()
    {
        var kernel = (EmulatedKernel)Target(X86CpuModel.EpycGenoa).CreateKernel(EmulatedProfile.LikeThisHost);
        try
        {
            using var kvm = Kvm.Open(kernel);
            var entries = kvm.GetSupportedCpuid()
                .Select(e => e.Function == 0 ? e with { Ebx = 0x756e_6547, Edx = 0x4965_6e69, Ecx = 0x6c65_746e } : e)
                .Select(e => e.ToNative())
                .ToArray();
            return X86CpuModel.FromSupportedCpuid("Intel vendor (EPYC Genoa leaves)", entries);
        }
        finally
        {
            kernel.Dispose();
        }
    }

    private static KernelTarget Target(X86CpuModel model) =>
        KernelTarget.EmulatedHost($"emulated ({model.Name})", profile => new EmulatedKernel(EmulatedKernels.Config(profile) with { X86Cpu = model }));
}
