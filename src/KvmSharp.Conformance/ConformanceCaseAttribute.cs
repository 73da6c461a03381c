// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance;

/// <summary>Marks a static method <c>void Case(CaseContext ctx)</c> as a conformance case.</summary>
/// <param name="source">Where the case comes from: the upstream test file and function, or the rule's source.</param>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ConformanceCaseAttribute(string source) : Attribute
{
    public string Source { get; } = source;

    /// <summary>What the emulated target must be configured with for this case (the real kernel is what it is).</summary>
    public EmulatedProfile Profile { get; init; } = EmulatedProfile.LikeThisHost;

    /// <summary>
    /// What the kernel must be for this case to apply, checked before it runs (<see cref="KernelRequirement"/>);
    /// <see cref="KernelRequirement.None"/> takes the class's <see cref="ConformanceGroupAttribute.Requires"/>.
    /// </summary>
    public KernelRequirement Requires { get; init; }
}

/// <summary>What every case of a class under Cases/ has in common (an upstream test file ported whole, say).</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class ConformanceGroupAttribute : Attribute
{
    /// <summary>The requirement of every case in the class (a case may only refine it: KernelRequirements.Implies).</summary>
    public KernelRequirement Requires { get; init; }
}

/// <summary>Emulator configurations a case can ask for.</summary>
public enum EmulatedProfile
{
    /// <summary>
    /// The preset that reproduces this project's host kernel as the upstream selftests expect it, with guest_memfd
    /// (EmulatorConfig.LikeThisHost()): the cases that both kernels can run.
    /// </summary>
    LikeThisHost,
    /// <summary>x86_64 with every VM type and the v8 in-place conversion series enabled.</summary>
    X86InPlaceConversion,
    /// <summary>x86_64 with every VM type, 6.18 rules (per-VM memory attributes).</summary>
    X86,
    /// <summary>arm64 (mainline 6.18, EmulatorConfig.Arm64()): the arm64 guest cases.</summary>
    Arm64,
    /// <summary>
    /// The same host kernel built without CONFIG_KVM_GUEST_MEMFD (EmulatorConfig.LikeThisHost(guestMemfd: false)):
    /// the cases that require <see cref="KernelRequirement.NoGuestMemfd"/>.
    /// </summary>
    LikeThisHostWithoutGuestMemfd,
    /// <summary>
    /// This host's preset on Linux 6.19 (guest_memfd with NUMA mempolicy) with two NUMA nodes
    /// (<see cref="EmulatedKernels.TwoNumaNodes"/>): the cases that need more than one node.
    /// </summary>
    TwoNumaNodes,
    /// <summary>
    /// x86_64 with every VM type (6.18 rules) and the direct-map-removal series v12 applied
    /// (<see cref="EmulatedKernels.X86NoDirectMap"/>): the cases of <see cref="KernelRequirement.NoDirectMapGuestMemfd"/>.
    /// </summary>
    X86NoDirectMap,
    /// <summary>
    /// x86_64 with every VM type (6.18 rules), the guest_memfd write series v7 and the direct-map-removal series v12
    /// applied, as Firecracker's secret-hiding tree carries them (<see cref="EmulatedKernels.X86GuestMemfdWrite"/>): the
    /// cases of <see cref="KernelRequirement.WriteGuestMemfd"/>.
    /// </summary>
    X86GuestMemfdWrite,
    /// <summary>
    /// <see cref="X86GuestMemfdWrite"/> with "[PATCH v3 00/15] KVM: Introduce KVM Userfault" applied as well
    /// (<see cref="EmulatedKernels.X86Userfault"/>), the set Firecracker's lazy gmem snapshot restore needs: the cases
    /// of <see cref="KernelRequirement.Userfault"/>.
    /// </summary>
    X86Userfault,
    /// <summary>
    /// arm64 (6.18 rules) with "[PATCH v3 00/15] KVM: Introduce KVM Userfault" applied
    /// (<see cref="EmulatedKernels.Arm64Userfault"/>): the arm64 half of the series.
    /// </summary>
    Arm64Userfault,
    /// <summary>
    /// x86_64 with every VM type (6.18 rules) and the vendor modules' launch commands (kvm_amd's SEV/SNP with the PSP
    /// at /dev/sev, kvm_intel's TDX; both are models): the confidential-VM launch cases. Separate from
    /// <see cref="X86"/> because these cases need VM types a release before 6.10 (SEV) or 6.16 (TDX) does not have.
    /// </summary>
    X86Coco,
    /// <summary>
    /// x86_64 with every VM type, in-place conversion v8 and guest_memfd HugeTLB in the "[RFC PATCH v2 00/51]" encoding
    /// (flag bits 63:58, FLAGS_HI listed; <see cref="EmulatedKernels.X86HugetlbRfcV2"/>): the HugeTLB cases.
    /// </summary>
    X86HugetlbRfcV2,
    /// <summary>
    /// The same with the 6.18-based branch's page_order field (<see cref="EmulatedKernels.X86HugetlbPageOrder"/>).
    /// </summary>
    X86HugetlbPageOrder,
}
