// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Conformance;

/// <summary>The emulator configurations behind <see cref="EmulatedProfile"/>.</summary>
public static class EmulatedKernels
{
    public static IKernel Create(EmulatedProfile profile) => new EmulatedKernel(Config(profile));

    /// <summary>
    /// This machine with two NUMA nodes (the selftests' is_multi_numa_node_system()) on <paramref name="generation"/>:
    /// guest_memfd's mempolicy needs 6.19 (<see cref="KernelGenerations.HasGmemMempolicy"/>), guest_memfd itself is
    /// there from 6.11 on this machine's configuration (see <see cref="Create(EmulatedProfile, KernelGeneration)"/>).
    /// </summary>
    public static EmulatorConfig TwoNumaNodes(KernelGeneration generation) =>
        EmulatorConfig.LikeThisHost(guestMemfd: generation.HasGmemPopulate(), generation) with { NumaNodes = 2 };

    public static EmulatorConfig Config(EmulatedProfile profile) => profile switch
    {
        EmulatedProfile.LikeThisHost => EmulatorConfig.LikeThisHost(),
        EmulatedProfile.X86InPlaceConversion => EmulatorConfig.X86_64(inPlaceConversion: true),
        EmulatedProfile.X86 => EmulatorConfig.X86_64(inPlaceConversion: false),
        EmulatedProfile.Arm64 => EmulatorConfig.Arm64(),
        EmulatedProfile.LikeThisHostWithoutGuestMemfd => EmulatorConfig.LikeThisHost(guestMemfd: false),
        EmulatedProfile.TwoNumaNodes => TwoNumaNodes(KernelGeneration.Linux619),
        _ => throw new ArgumentOutOfRangeException(nameof(profile), profile, "unknown emulator profile"),
    };

    /// <summary>
    /// The profile's configuration on a kernel of <paramref name="generation"/>, as a host of that release would be
    /// built: this machine (x86_64, no TDP, default VM only) with guest_memfd from 6.11 on (KVM_AMD_SEV selects it on
    /// distro kernels; before, only KVM_SW_PROTECTED_VM, which needs TDP), the full x86_64 and arm64 presets of
    /// that release. The v8 in-place conversion series exists only on 6.18+: its cases are skipped before.
    /// </summary>
    public static IKernel Create(EmulatedProfile profile, KernelGeneration generation)
    {
        // The node count is the point of this profile, not the release: it follows the asked release.
        if (profile == EmulatedProfile.TwoNumaNodes) return new EmulatedKernel(TwoNumaNodes(generation));
        if (generation.HasGmemMmap() && generation != KernelGeneration.InPlaceConversionV8) return Create(profile);
        return profile switch
        {
            EmulatedProfile.LikeThisHost or EmulatedProfile.LikeThisHostWithoutGuestMemfd =>
                new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: generation.HasGmemPopulate(), generation)),
            EmulatedProfile.X86 => new EmulatedKernel(EmulatorConfig.X86_64(generation)),
            EmulatedProfile.Arm64 => new EmulatedKernel(EmulatorConfig.Arm64(generation)),
            EmulatedProfile.X86InPlaceConversion =>
                throw new SkipCaseException($"the in-place conversion series (v8) is based on 6.18+, not {generation.Release()}"),
            _ => throw new ArgumentOutOfRangeException(nameof(profile), profile, "unknown emulator profile"),
        };
    }
}
