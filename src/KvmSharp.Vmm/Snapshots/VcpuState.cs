// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// The vCPU state a snapshot carries besides memory: what a guest can change and what survives between calls (each
/// call loads only the general registers). KVM_GET_SREGS whole — segments with their bases (FS and GS base
/// included), GDT/IDT, CR0/2/3/4/8, EFER, APIC base — and the MSRs of <see cref="Candidates"/> that the kernel lists
/// in KVM_GET_MSR_INDEX_LIST, and the <see cref="ExtendedVcpuState"/>: x87/SSE/AVX registers with MXCSR, XCR0, the
/// debug registers and the event state.
/// </summary>
internal sealed class VcpuState
{
    /// <summary>
    /// The MSRs a guest may set that a snapshot captures, ascending (the file's order): SYSENTER_CS/ESP/EIP, PAT, STAR,
    /// LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE, and (from format version 6) TSC_AUX, which RDTSCP returns in ECX and RDPID
    /// reads. FS_BASE, GS_BASE and EFER come with the sregs.
    /// </summary>
    public static readonly uint[] Candidates =
    [
        X86Msr.SysenterCs, X86Msr.SysenterEsp, X86Msr.SysenterEip, X86Msr.Pat,
        X86Msr.Star, X86Msr.Lstar, X86Msr.Cstar, X86Msr.SyscallMask, X86Msr.KernelGsBase, X86Msr.TscAux,
    ];

    /// <summary>The candidates of a version 4 or 5 file: all but TSC_AUX.</summary>
    public static readonly uint[] CandidatesBeforeTscAux = [.. Candidates.Where(index => index != X86Msr.TscAux)];

    /// <summary>Bytes of <c>struct kvm_sregs</c> in the file (the uAPI layout, little-endian).</summary>
    public static readonly int SregsSize = Marshal.SizeOf<kvm_sregs>();

    public VcpuState(kvm_sregs sregs, MsrEntry[] msrs, ExtendedVcpuState extended, ulong tsc, uint tscKhz = 0)
    {
        Sregs = sregs;
        Msrs = msrs;
        Extended = extended;
        Tsc = tsc;
        TscKhz = tscKhz;
    }

    /// <summary>
    /// The vCPU's TSC rate in kHz (KVM_GET_TSC_KHZ) when the snapshot was taken, or 0 when unknown (a kernel without
    /// KVM_CAP_GET_TSC_KHZ, or a file before version 6). A micro-VM made from the snapshot runs its vCPU at this rate
    /// (KVM_SET_TSC_KHZ) and announces it in CPUID 0x40000010, or is refused.
    /// </summary>
    public uint TscKhz { get; }

    /// <summary>The TSC_AUX the snapshot holds (0 when it holds none).</summary>
    public ulong TscAux
    {
        get
        {
            foreach (MsrEntry msr in Msrs)
                if (msr.Index == X86Msr.TscAux) return msr.Value;
            return 0;
        }
    }

    /// <summary>
    /// The guest's TSC when the snapshot was taken (IA32_TSC), or 0 in a version 4 file: a micro-VM created from or
    /// restored to the snapshot reads no less, so a time the guest stored during its initialisation never lies in its
    /// future.
    /// </summary>
    public ulong Tsc { get; }

    /// <summary>Bytes of <c>struct kvm_debugregs</c> in the file.</summary>
    public static readonly int DebugRegsSize = Marshal.SizeOf<kvm_debugregs>();

    /// <summary>Bytes of <c>struct kvm_vcpu_events</c> in the file.</summary>
    public static readonly int EventsSize = Marshal.SizeOf<kvm_vcpu_events>();

    /// <summary>
    /// The largest XSAVE image a file may hold: KVM_CAP_XSAVE2 sizes reach 11 008 bytes with AMX; this leaves room
    /// for what later CPUs add while refusing a length that could only be corrupt.
    /// </summary>
    public const int MaxXsaveSize = 64 * 1024;

    /// <summary>The FPU/XSAVE image, XCR0, debug registers and events.</summary>
    public ExtendedVcpuState Extended { get; }

    public kvm_sregs Sregs { get; }

    /// <summary>Captured MSRs, indices ascending and among <see cref="Candidates"/>.</summary>
    public MsrEntry[] Msrs { get; }

    /// <summary>The candidates <paramref name="indexList"/> (a kernel's KVM_GET_MSR_INDEX_LIST) contains.</summary>
    public static uint[] Captured(IReadOnlyList<uint> indexList) => [.. Candidates.Where(indexList.Contains)];

    /// <summary>
    /// What <paramref name="kvm"/>'s kernel lists and the candidates among them: asked once per <see cref="Kvm"/> object
    /// — the list is the kernel's, not a vCPU's — so a pool's micro-VMs, their snapshots and resets
    /// (<see cref="Arch.X86_64.VcpuResetState"/>) share one KVM_GET_MSR_INDEX_LIST.
    /// </summary>
    public static KernelMsrs MsrsOf(Kvm kvm) => s_kernelMsrs.GetValue(kvm, static k => new KernelMsrs(k.GetMsrIndexList()));

    private static readonly ConditionalWeakTable<Kvm, KernelMsrs> s_kernelMsrs = new();

    /// <summary>One kernel's MSR index list and what snapshots and resets take from it.</summary>
    internal sealed class KernelMsrs(IReadOnlyList<uint> indexList)
    {
        public IReadOnlyList<uint> IndexList { get; } = indexList;

        public uint[] Captured { get; } = VcpuState.Captured(indexList);
    }

    /// <summary>Writes an unmanaged uAPI struct in its C layout (little-endian, as the kernel has it).</summary>
    public static void WriteStruct<T>(in T value, Span<byte> destination) where T : unmanaged => MemoryMarshal.Write(destination, in value);

    /// <summary>Reads an unmanaged uAPI struct from its C layout.</summary>
    public static T ReadStruct<T>(ReadOnlySpan<byte> source) where T : unmanaged => MemoryMarshal.Read<T>(source);
}
