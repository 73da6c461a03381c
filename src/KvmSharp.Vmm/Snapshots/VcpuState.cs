// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// The vCPU state a snapshot carries besides memory: what a guest can change and what survives between calls (each
/// call loads only the general registers). KVM_GET_SREGS whole — segments with their bases (FS and GS base
/// included), GDT/IDT, CR0/2/3/4/8, EFER, APIC base — and the MSRs of <see cref="Candidates"/> that the kernel lists
/// in KVM_GET_MSR_INDEX_LIST.
/// </summary>
internal sealed class VcpuState
{
    /// <summary>
    /// The MSRs a guest may set that a snapshot captures, ascending (the file's order): SYSENTER_CS/ESP/EIP, PAT, STAR,
    /// LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE. FS_BASE, GS_BASE and EFER come with the sregs. TSC_AUX is left out: the
    /// emulated kernel does not model it (a snapshot must run on both), so a guest using RDTSCP/RDPID sets it per call.
    /// </summary>
    public static readonly uint[] Candidates =
    [
        X86Msr.SysenterCs, X86Msr.SysenterEsp, X86Msr.SysenterEip, X86Msr.Pat,
        X86Msr.Star, X86Msr.Lstar, X86Msr.Cstar, X86Msr.SyscallMask, X86Msr.KernelGsBase,
    ];

    /// <summary>Bytes of <c>struct kvm_sregs</c> in the file (the uAPI layout, little-endian).</summary>
    public static readonly int SregsSize = Marshal.SizeOf<kvm_sregs>();

    public VcpuState(kvm_sregs sregs, MsrEntry[] msrs)
    {
        Sregs = sregs;
        Msrs = msrs;
    }

    public kvm_sregs Sregs { get; }

    /// <summary>Captured MSRs, indices ascending and among <see cref="Candidates"/>.</summary>
    public MsrEntry[] Msrs { get; }

    /// <summary>
    /// Each candidate's value on a vCPU just created (x86.c kvm_vcpu_reset; SDM Vol. 3A table 10-1): 0, except PAT
    /// (MSR_IA32_CR_PAT_DEFAULT). <see cref="MicroVm.Reset"/> writes these back so nothing a guest set survives into
    /// the next use; a test reads them from a new vCPU on each kernel.
    /// </summary>
    public static ulong ResetValue(uint msr) => msr == X86Msr.Pat ? KvmSharp.X86.MsrIndex.IA32_CR_PAT_DEFAULT : 0;

    /// <summary>The candidates <paramref name="indexList"/> (a kernel's KVM_GET_MSR_INDEX_LIST) contains.</summary>
    public static uint[] Captured(IReadOnlyList<uint> indexList) => [.. Candidates.Where(indexList.Contains)];

    /// <summary>
    /// What <paramref name="kvm"/>'s kernel lists, the candidates among them, and those with their creation values (what
    /// <see cref="MicroVm.Reset"/> writes): asked once per <see cref="Kvm"/> object — the list is the kernel's, not a
    /// vCPU's — so a pool's micro-VMs and every reset share one KVM_GET_MSR_INDEX_LIST.
    /// </summary>
    public static KernelMsrs MsrsOf(Kvm kvm) => s_kernelMsrs.GetValue(kvm, static k => new KernelMsrs(k.GetMsrIndexList()));

    private static readonly ConditionalWeakTable<Kvm, KernelMsrs> s_kernelMsrs = new();

    /// <summary>One kernel's MSR index list and what snapshots and resets take from it.</summary>
    internal sealed class KernelMsrs(IReadOnlyList<uint> indexList)
    {
        public IReadOnlyList<uint> IndexList { get; } = indexList;

        public uint[] Captured { get; } = VcpuState.Captured(indexList);

        public MsrEntry[] ResetEntries { get; } = [.. VcpuState.Captured(indexList).Select(m => new MsrEntry(m, ResetValue(m)))];
    }

    public static void WriteSregs(in kvm_sregs sregs, Span<byte> destination) =>
        MemoryMarshal.Write(destination, in sregs);

    public static kvm_sregs ReadSregs(ReadOnlySpan<byte> source) => MemoryMarshal.Read<kvm_sregs>(source);
}
