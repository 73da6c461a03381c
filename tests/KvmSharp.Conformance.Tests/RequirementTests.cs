// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Conformance.Tests;

/// <summary>
/// <see cref="KernelRequirement"/>: the runner skips a case whose requirement the real kernel does not meet, before it
/// runs, and the marks are exact. A kernel without guest_memfd is played by the emulator (every profile's
/// configuration built without CONFIG_KVM_GUEST_MEMFD), so this holds on either kind of host.
/// </summary>
public class RequirementTests
{
    private const string NoGuestMemfd = "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0)";

    private static KernelTarget HostWithout { get; } = KernelTarget.EmulatedHost("emulated-without-gmem", profile => Emulator(profile, guestMemfd: false));

    private static KernelTarget HostWith { get; } = KernelTarget.EmulatedHost("emulated-with-gmem", profile => Emulator(profile, guestMemfd: true));

    /// <summary>The profile's emulator with or without CONFIG_KVM_GUEST_MEMFD.</summary>
    private static EmulatedKernel Emulator(EmulatedProfile profile, bool guestMemfd)
    {
        var config = EmulatedKernels.Config(profile);
        return new EmulatedKernel(config with { Kconfig = config.Kconfig with { KVM_GUEST_MEMFD = guestMemfd } });
    }

    public static TheoryData<string> AllCases => [.. ConformanceSuite.Cases.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(AllCases))]
    public void On_a_kernel_without_guest_memfd_only_the_cases_that_need_it_are_skipped_for_it_and_none_fails(string name)
    {
        var @case = ConformanceSuite.Find(name);
        var result = ConformanceRunner.Run(@case, HostWithout);
        if (KernelRequirements.Implies(@case.Requires, KernelRequirement.GuestMemfd))
        {
            Assert.Equal(CaseOutcome.Skipped, result.Outcome);
            Assert.Equal(NoGuestMemfd, result.Reason);
        }
        else
        {
            // A failure here is a case that needs guest_memfd without saying so.
            Assert.True(result.Outcome != CaseOutcome.Failed, $"{name} fails on a kernel without guest_memfd: {result.Reason}");
            if (result.Outcome == CaseOutcome.Skipped) Assert.NotEqual(NoGuestMemfd, result.Reason);
        }
    }

    public static TheoryData<string> CasesThatNeedGuestMemfd =>
        [.. ConformanceSuite.Cases.Where(c => KernelRequirements.Implies(c.Requires, KernelRequirement.GuestMemfd)).Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(CasesThatNeedGuestMemfd))]
    public void Every_guest_memfd_requirement_is_needed(string name)
    {
        // Run anyway on the kernel without guest_memfd: a case that passed there would be skipped on the real kernel
        // for nothing.
        var result = ConformanceRunner.Run(ConformanceSuite.Find(name), HostWithout, enforceRequirement: false);
        Assert.True(result.Outcome != CaseOutcome.Passed, $"{name} passes without guest_memfd: its requirement skips it for nothing");
    }

    public static TheoryData<string> CasesForAKernelWithout =>
        [.. ConformanceSuite.Cases.Where(c => c.Requires == KernelRequirement.NoGuestMemfd).Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(CasesForAKernelWithout))]
    public void The_cases_for_a_kernel_without_guest_memfd_run_there_and_are_skipped_where_it_exists(string name)
    {
        var @case = ConformanceSuite.Find(name);
        Assert.Equal(EmulatedProfile.LikeThisHostWithoutGuestMemfd, @case.Profile);
        Assert.Equal(CaseOutcome.Passed, ConformanceRunner.Run(@case, HostWithout).Outcome);
        Assert.Equal(CaseOutcome.Passed, ConformanceRunner.Run(@case, KernelTarget.Emulated).Outcome);
        var with = ConformanceRunner.Run(@case, HostWith);
        Assert.Equal(CaseOutcome.Skipped, with.Outcome);
        Assert.StartsWith("this kernel has guest_memfd (KVM_CAP_GUEST_MEMFD = 1)", with.Reason, StringComparison.Ordinal);
        // Run anyway where guest_memfd exists: the requirement is needed.
        Assert.NotEqual(CaseOutcome.Passed, ConformanceRunner.Run(@case, HostWith, enforceRequirement: false).Outcome);
    }

    [Fact]
    public void An_emulator_profile_that_does_not_meet_the_requirement_fails_the_case_without_running_it()
    {
        bool ran = false;
        var misconfigured = new ConformanceCase("misconfigured", "RequirementTests", "test", EmulatedProfile.LikeThisHost, KernelRequirement.NoGuestMemfd, _ => ran = true);
        var result = ConformanceRunner.Run(misconfigured, KernelTarget.Emulated);
        Assert.False(ran);
        Assert.Equal(CaseOutcome.Failed, result.Outcome);
        Assert.Contains("the emulator profile LikeThisHost does not meet the case's requirement (NoGuestMemfd)", result.Reason, StringComparison.Ordinal);
        // The real kernel is what it is: there the same mismatch is a skip, decided before the body.
        var skipped = ConformanceRunner.Run(misconfigured, HostWith);
        Assert.False(ran);
        Assert.Equal(CaseOutcome.Skipped, skipped.Outcome);
    }

    [Fact]
    public void The_emulator_presets_keep_guest_memfd_except_the_profile_without_it()
    {
        // LikeThisHost stays the upstream expectation (with guest_memfd) whatever the machine running the suite.
        foreach (var profile in Enum.GetValues<EmulatedProfile>())
        {
            using var kernel = (EmulatedKernel)EmulatedKernels.Create(profile);
            string? unmet = KernelRequirements.Unmet(KernelRequirement.GuestMemfd, kernel);
            if (profile == EmulatedProfile.LikeThisHostWithoutGuestMemfd) Assert.Equal(NoGuestMemfd, unmet);
            else Assert.Null(unmet);
        }
    }

    [KvmFact]
    public void The_real_kernel_meets_exactly_one_of_the_guest_memfd_requirements()
    {
        bool has = HostMatching.HostHasGuestMemfd ?? throw new InvalidOperationException("/dev/kvm could not be probed");
        Assert.Equal(has, KernelRequirements.Unmet(KernelRequirement.GuestMemfd, LinuxKernel.Instance) is null);
        Assert.Equal(!has, KernelRequirements.Unmet(KernelRequirement.NoGuestMemfd, LinuxKernel.Instance) is null);
    }
}
