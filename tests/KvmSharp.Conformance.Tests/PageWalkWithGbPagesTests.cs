// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Conformance.Tests;

/// <summary>
/// kvm_pvm offers no GBPAGES (no TDP), so on this machine one_gib_pages_follow_cpuid_gbpages checks only the
/// refusals, on both kernels. Here it runs on the emulator playing the machine's CPU with GBPAGES offered (a host with
/// NPT/EPT), so the branch where a 1 GiB page maps and its bits 29:13 are reserved runs too.
/// </summary>
public class PageWalkWithGbPagesTests
{
    [Fact]
    public void One_gib_page_case_passes_where_kvm_offers_gbpages()
    {
        var model = WithGbPages(EmulatedKernels.Config(EmulatedProfile.LikeThisHost).X86Cpu);
        var target = KernelTarget.EmulatedHost($"emulated ({model.Name})",
            profile => new EmulatedKernel(EmulatedKernels.Config(profile) with { X86Cpu = model }));
        using (var kernel = (EmulatedKernel)target.CreateKernel(EmulatedProfile.LikeThisHost))
        using (var kvm = Kvm.Open(kernel))
            Assert.Contains(kvm.GetSupportedCpuid(), e => e.Function == 0x8000_0001 && (e.Edx & (1u << 26)) != 0);
        var result = ConformanceRunner.Run(ConformanceSuite.Find("one_gib_pages_follow_cpuid_gbpages"), target);
        Assert.True(result.Outcome == CaseOutcome.Passed, $"{result.Outcome}: {result.Reason}");
    }

    private static X86CpuModel WithGbPages(X86CpuModel host)
    {
        using var kernel = new EmulatedKernel(EmulatedKernels.Config(EmulatedProfile.LikeThisHost) with { X86Cpu = host });
        using var kvm = Kvm.Open(kernel);
        var entries = kvm.GetSupportedCpuid()
            .Select(e => (e.Function == 0x8000_0001 ? e with { Edx = e.Edx | (1u << 26) } : e).ToNative())
            .ToArray();
        return X86CpuModel.FromSupportedCpuid(host.Name + " with GBPAGES", entries);
    }
}
