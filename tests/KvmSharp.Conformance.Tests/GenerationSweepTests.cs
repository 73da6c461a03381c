// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using Xunit.Abstractions;

namespace KvmSharp.Conformance.Tests;

/// <summary>
/// This machine on an older kernel, played by the emulator (EmulatorConfig.LikeThisHost at an earlier
/// <see cref="KernelGeneration"/>, as the runner's stand-in for a host): every case of the suite that applies there
/// passes, and every case that does not is skipped by its requirement, with the reason, before it runs. So the
/// generation rules change only the uAPI they are about, and the SDK's fallbacks for older kernels
/// (KVM_SET_USER_MEMORY_REGION before 6.8) carry every case that does not ask for something newer.
/// </summary>
public sealed class GenerationSweepTests(ITestOutputHelper output)
{
    public static TheoryData<KernelGeneration> OlderGenerations() =>
    [
        KernelGeneration.Linux61, KernelGeneration.Linux68, KernelGeneration.Linux610, KernelGeneration.Linux611, KernelGeneration.Linux616,
    ];

    // This machine on an older kernel; with guestMemfd, as a 6.11–6.17 distro kernel builds it (KVM_AMD_SEV selects
    // guest_memfd, but no VM type with private memory exists here, so a default VM gets guest_memfd without MMAP and
    // cannot bind it).
    private static KernelTarget ThisMachineAt(KernelGeneration generation, bool guestMemfd = false)
    {
        var config = EmulatorConfig.LikeThisHost(guestMemfd, generation);
        return KernelTarget.EmulatedHost($"emulated (like this host{(guestMemfd ? " with guest_memfd" : "")}, Linux {generation.Release()})",
            profile => profile switch
            {
                EmulatedProfile.LikeThisHost or EmulatedProfile.LikeThisHostWithoutGuestMemfd => new EmulatedKernel(config),
                // The same machine with a second NUMA node (the cases that need one).
                EmulatedProfile.TwoNumaNodes => new EmulatedKernel(config with { NumaNodes = 2 }),
                _ => EmulatedKernels.Create(profile),
            });
    }

    [Theory]
    [MemberData(nameof(OlderGenerations))]
    public void This_machine_at_an_older_generation_passes_every_case_that_applies_and_skips_the_rest_by_requirement(KernelGeneration generation)
    {
        var results = ConformanceRunner.RunAll(ThisMachineAt(generation),
            c => c.Profile is EmulatedProfile.LikeThisHost or EmulatedProfile.LikeThisHostWithoutGuestMemfd).ToList();
        foreach (var r in results.Where(r => r.Outcome != CaseOutcome.Passed)) output.WriteLine($"{r.Name}: {r.Outcome} {r.Reason}");
        Assert.Empty(results.Where(r => r.Outcome == CaseOutcome.Failed).Select(r => $"{r.Name}: {r.Reason}"));
        int passed = results.Count(r => r.Outcome == CaseOutcome.Passed);
        output.WriteLine($"{passed} passed, {results.Count - passed} skipped");
        Assert.True(passed >= 40, $"only {passed} cases passed");
        // Before 6.8 the cases for a 6.8+ kernel built without guest_memfd, and those that use REGION2 themselves,
        // are skipped for it; from 6.8 on they run.
        var predates = results.Where(r => r.Reason?.StartsWith("this kernel predates KVM_SET_USER_MEMORY_REGION2", StringComparison.Ordinal) == true).ToList();
        if (generation == KernelGeneration.Linux61) Assert.True(predates.Count >= 8, $"{predates.Count} cases skipped for REGION2");
        else Assert.Empty(predates);
    }

    public static TheoryData<string> CasesThatNeedUserMemory2 =>
        [.. ConformanceSuite.Cases.Where(c => c.Requires == KernelRequirement.UserMemory2).Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(CasesThatNeedUserMemory2))]
    public void Every_user_memory2_requirement_is_needed(string name)
    {
        // Run anyway on a 6.1 kernel: a case that passed there would be skipped on such a host for nothing.
        var result = ConformanceRunner.Run(ConformanceSuite.Find(name), ThisMachineAt(KernelGeneration.Linux61), enforceRequirement: false);
        Assert.True(result.Outcome != CaseOutcome.Passed, $"{name} passes before 6.8: its requirement skips it for nothing");
    }

    public static TheoryData<KernelGeneration> GuestMemfdGenerationsBefore618() =>
        [KernelGeneration.Linux68, KernelGeneration.Linux610, KernelGeneration.Linux611, KernelGeneration.Linux616];

    [Theory]
    [MemberData(nameof(GuestMemfdGenerationsBefore618))]
    public void The_private_memory_cases_of_a_full_x86_host_pass_at_every_release_with_guest_memfd(KernelGeneration generation)
    {
        // Private-capable slots (shared pages from userspace_addr, private from a guest_memfd without flags),
        // KVM_SET_MEMORY_ATTRIBUTES and KVM_EXIT_MEMORY_FAULT are the 6.8 design: they must hold unchanged since.
        var target = KernelTarget.EmulatedHost($"emulated (x86_64, Linux {generation.Release()})",
            profile => profile == EmulatedProfile.X86 ? new EmulatedKernel(EmulatorConfig.X86_64(generation)) : EmulatedKernels.Create(profile));
        var results = ConformanceRunner.RunAll(target, c => c.Profile == EmulatedProfile.X86).ToList();
        foreach (var r in results) output.WriteLine($"{r.Name}: {r.Outcome} {r.Reason}");
        Assert.NotEmpty(results);
        Assert.All(results, r => Assert.True(r.Outcome == CaseOutcome.Passed, $"{r.Name}: {r.Outcome} {r.Reason}"));
    }

    [Theory]
    [InlineData(KernelGeneration.Linux611)]
    [InlineData(KernelGeneration.Linux616)]
    public void A_host_with_pre_618_guest_memfd_passes_what_applies_and_skips_the_mmap_series_cases(KernelGeneration generation)
    {
        var results = ConformanceRunner.RunAll(ThisMachineAt(generation, guestMemfd: true),
            c => c.Profile is EmulatedProfile.LikeThisHost or EmulatedProfile.LikeThisHostWithoutGuestMemfd).ToList();
        foreach (var r in results.Where(r => r.Outcome != CaseOutcome.Passed)) output.WriteLine($"{r.Name}: {r.Outcome} {r.Reason}");
        Assert.Empty(results.Where(r => r.Outcome == CaseOutcome.Failed).Select(r => $"{r.Name}: {r.Reason}"));
        Assert.True(results.Count(r => r.Outcome == CaseOutcome.Passed) >= 60);
        Assert.Contains(results, r => r.Reason?.StartsWith("this kernel's guest_memfd predates the mmap series", StringComparison.Ordinal) == true);
    }

    public static TheoryData<string> CasesThatNeedMappableGuestMemfd =>
        [.. ConformanceSuite.Cases.Where(c => c.Requires == KernelRequirement.MappableGuestMemfd).Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(CasesThatNeedMappableGuestMemfd))]
    public void Every_mappable_guest_memfd_requirement_is_needed(string name)
    {
        // Run anyway where guest_memfd predates the mmap series: a case that passed there would be skipped for nothing.
        var result = ConformanceRunner.Run(ConformanceSuite.Find(name), ThisMachineAt(KernelGeneration.Linux611, guestMemfd: true), enforceRequirement: false);
        Assert.True(result.Outcome != CaseOutcome.Passed, $"{name} passes with 6.11 guest_memfd: its requirement skips it for nothing");
    }
}
