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

    /// <summary>
    /// The full x86_64 preset of <paramref name="generation"/> (6.18+) with "[PATCH v12 00/16] Direct Map Removal Support
    /// for guest_memfd" applied: NO_DIRECT_MAP for DEFAULT, SW_PROTECTED, SEV and SEV-ES VMs, not TDX or SNP. Never
    /// LikeThisHost: that preset is the real kernel's double.
    /// </summary>
    public static EmulatorConfig X86NoDirectMap(KernelGeneration generation = KernelGeneration.Linux618) =>
        EmulatorConfig.X86_64(generation) with { GuestMemfdNoDirectMap = true };

    /// <summary>
    /// The full x86_64 preset of <paramref name="generation"/> (6.18+) with "[PATCH v7 1/2] KVM: guest_memfd: add generic
    /// population via write" and the direct map removal series v12 applied, as Firecracker's secret-hiding tree carries
    /// them (WRITE = 1 &lt;&lt; 3, NO_DIRECT_MAP = 1 &lt;&lt; 2): WRITE wherever INIT_SHARED is (not TDX or SNP on 6.18).
    /// Never LikeThisHost: that preset is the real kernel's double.
    /// </summary>
    public static EmulatorConfig X86GuestMemfdWrite(KernelGeneration generation = KernelGeneration.Linux618) =>
        EmulatorConfig.X86_64(generation) with { GuestMemfdWrite = true, GuestMemfdNoDirectMap = true };

    /// <summary>
    /// <see cref="X86GuestMemfdWrite"/> with "[PATCH v3 00/15] KVM: Introduce KVM Userfault" (unmerged) applied:
    /// KVM_CAP_USERFAULT, KVM_MEM_USERFAULT and its exits (EmulatorConfig.KvmUserfault). Never LikeThisHost.
    /// </summary>
    public static EmulatorConfig X86Userfault(KernelGeneration generation = KernelGeneration.Linux618) =>
        X86GuestMemfdWrite(generation) with { KvmUserfault = true };

    /// <summary>
    /// The arm64 preset with "[PATCH v3 00/15] KVM: Introduce KVM Userfault" (unmerged) applied: its arm64 half in
    /// user_mem_abort and gmem_abort (EmulatorConfig.KvmUserfault). Never LikeThisHost.
    /// </summary>
    public static EmulatorConfig Arm64Userfault(KernelGeneration generation = KernelGeneration.Linux618) =>
        EmulatorConfig.Arm64(generation) with { KvmUserfault = true };

    /// <summary>
    /// x86_64 with every VM type, the v8 in-place conversion tree and guest_memfd HugeTLB in the "[RFC PATCH v2 00/51] 1G
    /// page support for guest_memfd" encoding, 16 × 2 MiB and 1 × 1 GiB pages in the host's pools, and
    /// KVM_CAP_GUEST_MEMFD_FLAGS_HI at 251 (no number is allocated). Never LikeThisHost.
    /// </summary>
    public static EmulatorConfig X86HugetlbRfcV2() =>
        EmulatorConfig.X86_64(inPlaceConversion: true).WithGuestMemfdHugetlb(Abi.GuestMemfdHugetlbEncoding.RfcV2FlagBits) with { GuestMemfdFlagsHiCap = 251 };

    /// <summary><see cref="X86HugetlbRfcV2"/> with the 6.18-based branch's page_order encoding instead.</summary>
    public static EmulatorConfig X86HugetlbPageOrder() =>
        EmulatorConfig.X86_64(inPlaceConversion: true).WithGuestMemfdHugetlb(Abi.GuestMemfdHugetlbEncoding.PageOrderField) with { GuestMemfdFlagsHiCap = 251 };

    public static EmulatorConfig Config(EmulatedProfile profile) => profile switch
    {
        EmulatedProfile.X86HugetlbRfcV2 => X86HugetlbRfcV2(),
        EmulatedProfile.X86HugetlbPageOrder => X86HugetlbPageOrder(),
        EmulatedProfile.Arm64Userfault => Arm64Userfault(),
        EmulatedProfile.X86Userfault => X86Userfault(),
        EmulatedProfile.X86GuestMemfdWrite => X86GuestMemfdWrite(),
        EmulatedProfile.X86NoDirectMap => X86NoDirectMap(),
        EmulatedProfile.LikeThisHost => EmulatorConfig.LikeThisHost(),
        EmulatedProfile.X86InPlaceConversion => EmulatorConfig.X86_64(inPlaceConversion: true),
        EmulatedProfile.X86 => EmulatorConfig.X86_64(inPlaceConversion: false),
        EmulatedProfile.X86Coco => EmulatorConfig.X86_64(inPlaceConversion: false),
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
            EmulatedProfile.X86 or EmulatedProfile.X86Coco => new EmulatedKernel(EmulatorConfig.X86_64(generation)),
            EmulatedProfile.Arm64 => new EmulatedKernel(EmulatorConfig.Arm64(generation)),
            EmulatedProfile.X86InPlaceConversion =>
                throw new SkipCaseException($"the in-place conversion series (v8) is based on 6.18+, not {generation.Release()}"),
            // On the v8 tree the series may be applied as well (both are based on 6.18+).
            EmulatedProfile.X86NoDirectMap when generation == KernelGeneration.InPlaceConversionV8 =>
                new EmulatedKernel(X86NoDirectMap(generation)),
            EmulatedProfile.X86NoDirectMap =>
                throw new SkipCaseException($"the direct map removal series (v12) is based on 6.18+, not {generation.Release()}"),
            EmulatedProfile.X86GuestMemfdWrite when generation == KernelGeneration.InPlaceConversionV8 =>
                new EmulatedKernel(X86GuestMemfdWrite(generation)),
            EmulatedProfile.X86GuestMemfdWrite =>
                throw new SkipCaseException($"the guest_memfd write series (v7) is based on 6.18+, not {generation.Release()}"),
            EmulatedProfile.X86Userfault when generation == KernelGeneration.InPlaceConversionV8 =>
                new EmulatedKernel(X86Userfault(generation)),
            EmulatedProfile.Arm64Userfault when generation == KernelGeneration.InPlaceConversionV8 =>
                new EmulatedKernel(Arm64Userfault(generation)),
            EmulatedProfile.X86HugetlbRfcV2 or EmulatedProfile.X86HugetlbPageOrder when generation == KernelGeneration.InPlaceConversionV8 =>
                Create(profile),
            EmulatedProfile.X86HugetlbRfcV2 or EmulatedProfile.X86HugetlbPageOrder =>
                throw new SkipCaseException($"guest_memfd HugeTLB is modeled on the 6.18+ in-place conversion tree, not {generation.Release()}"),
            EmulatedProfile.X86Userfault or EmulatedProfile.Arm64Userfault =>
                throw new SkipCaseException($"KVM Userfault v3 is modeled on 6.18+ trees, not {generation.Release()}"),
            _ => throw new ArgumentOutOfRangeException(nameof(profile), profile, "unknown emulator profile"),
        };
    }
}
