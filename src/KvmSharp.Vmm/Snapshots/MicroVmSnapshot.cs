// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// An immutable capture of a micro-VM between calls (<see cref="MicroVm.Snapshot"/>): its guest memory, the vCPU state
/// a guest can change that survives between calls (<see cref="Sregs"/>: segments with FS/GS base, control registers,
/// EFER …; <see cref="Msrs"/>: KERNEL_GS_BASE, STAR, LSTAR, SYSENTER, PAT …), its image, memory size, VM type and the
/// features its guest was offered; an arm64 micro-VM's (<see cref="Architecture"/>) holds every register of
/// KVM_GET_REG_LIST instead of sregs and MSRs (<see cref="Arm64RegisterIds"/>). Each call loads the general registers itself, so
/// <see cref="MicroVm.Create(MicroVmSnapshot, MicroVmOptions?)"/> and <see cref="MicroVm.Restore"/> continue exactly
/// where the snapshot was taken, without running the image's initialisation again. Only pages that are not all zero
/// are kept: a 2 MiB micro-VM with a few touched pages costs a few pages. <see cref="WriteTo"/> and
/// <see cref="ReadFrom"/> carry it to another process (format: SnapshotFormat).
/// </summary>
public sealed class MicroVmSnapshot
{
    internal MicroVmSnapshot(GuestImage image, ulong memorySize, VmType vmType, ulong features, PageSet pages,
        VcpuState vcpu, uint abiVersion = GuestAbi.CallRegion.VersionValue)
        : this(image, memorySize, vmType, features, pages, abiVersion)
    {
        X86Vcpu = vcpu;
    }

    /// <summary>An arm64 micro-VM's snapshot: its registers instead of the x86 vCPU state.</summary>
    internal MicroVmSnapshot(GuestImage image, ulong memorySize, VmType vmType, ulong features, PageSet pages,
        Arm64VcpuState arm64, uint abiVersion = GuestAbi.CallRegion.VersionValue)
        : this(image, memorySize, vmType, features, pages, abiVersion)
    {
        Arm64Vcpu = arm64;
    }

    private MicroVmSnapshot(GuestImage image, ulong memorySize, VmType vmType, ulong features, PageSet pages, uint abiVersion)
    {
        AbiVersion = abiVersion;
        Image = image;
        MemorySize = memorySize;
        VmType = vmType;
        Features = features;
        Pages = pages;
    }

    /// <summary>The image the micro-VM runs (its exports and entry); its pages are already in the memory.</summary>
    public GuestImage Image { get; }

    /// <summary>The guest memory size in bytes; a micro-VM takes the snapshot only with the same size.</summary>
    public ulong MemorySize { get; }

    /// <summary>The VM type a micro-VM created from this snapshot gets.</summary>
    public VmType VmType { get; }

    /// <summary>
    /// The CallRegion features the guest was offered (bit 0: private memory). A guest may have set itself up for them,
    /// so a snapshot goes only into a micro-VM that offers the same.
    /// </summary>
    public ulong Features { get; }

    /// <summary>
    /// The GUEST-ABI version whose memory layout the pages hold (the VMM's own pages — GDT, page tables, IDT and
    /// exception handlers — are among them). A snapshot goes only into a micro-VM of the same version.
    /// </summary>
    public uint AbiVersion { get; }

    /// <summary>Bytes per stored page (the guest's 4 KiB page).</summary>
    public int PageSize => Pages.PageSize;

    /// <summary>Pages stored: the ones that were not all zero.</summary>
    public int PageCount => Pages.Count;

    /// <summary>Guest memory the snapshot holds (<see cref="PageCount"/> × <see cref="PageSize"/>).</summary>
    public long StoredBytes => (long)PageCount * PageSize;

    internal PageSet Pages { get; }

    /// <summary>The x86-64 vCPU state; null in an arm64 snapshot.</summary>
    internal VcpuState? X86Vcpu { get; }

    /// <summary>The x86-64 vCPU state of an x86-64 snapshot (what the x86 paths use).</summary>
    internal VcpuState Vcpu => X86Vcpu ?? throw new InvalidOperationException("an arm64 snapshot has no x86-64 vCPU state");

    /// <summary>The arm64 registers; null in an x86-64 snapshot.</summary>
    internal Arm64VcpuState? Arm64Vcpu { get; }

    /// <summary>
    /// The instruction set of the micro-VM that was snapshotted: a snapshot goes only into a micro-VM of the same
    /// (<see cref="SnapshotRefusal.ArchitectureMismatch"/>), and its file says which (format version 7; earlier
    /// versions are x86-64).
    /// </summary>
    public GuestArchitecture Architecture => Arm64Vcpu is null ? GuestArchitecture.X86_64 : GuestArchitecture.Arm64;

    /// <summary>
    /// An arm64 snapshot's register ids (KVM_GET_REG_LIST of the snapshotted vCPU, in its order: core, firmware, timer
    /// and system registers); empty for an x86-64 snapshot.
    /// </summary>
    public IReadOnlyList<ulong> Arm64RegisterIds => Arm64Vcpu?.Ids ?? [];

    /// <summary>
    /// The value an arm64 snapshot holds for register <paramref name="id"/> (a KVM_GET/SET_ONE_REG id, e.g.
    /// KvmArm64SysRegs.TPIDR_EL0): KVM_REG_SIZE(id) bytes, little-endian; null when the snapshot holds no such register
    /// (always for an x86-64 snapshot).
    /// </summary>
    public byte[]? GetArm64Register(ulong id) => Arm64Vcpu?.Find(id);

    /// <summary>
    /// The vCPU's special registers when the snapshot was taken (KVM_GET_SREGS: segments with their bases — FS and GS
    /// base included —, GDT/IDT, CR0/2/3/4/8, EFER, APIC base); a micro-VM created from or restored to the snapshot
    /// gets them back (KVM_SET_SREGS).
    /// </summary>
    public kvm_sregs Sregs => X86Vcpu?.Sregs ?? default;

    /// <summary>
    /// The MSRs a guest may set, as they were (KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK, SYSENTER_CS/ESP/EIP, PAT,
    /// TSC_AUX — those the snapshotting kernel lists in KVM_GET_MSR_INDEX_LIST), ascending by index; restored with
    /// KVM_SET_MSRS.
    /// </summary>
    public IReadOnlyList<MsrEntry> Msrs => X86Vcpu?.Msrs ?? [];

    /// <summary>
    /// The guest's TSC (IA32_TSC) when the snapshot was taken, or 0 from a version 4 file: a micro-VM created from or
    /// restored to the snapshot reads no less where the kernel lets the VMM move the TSC offset (KVM_VCPU_TSC_OFFSET).
    /// </summary>
    public ulong Tsc => X86Vcpu?.Tsc ?? 0;

    /// <summary>
    /// The vCPU's TSC rate in kHz (KVM_GET_TSC_KHZ) when the snapshot was taken, or 0 when unknown (a kernel without
    /// KVM_CAP_GET_TSC_KHZ, a file before version 6). A micro-VM created from the snapshot gets it (KVM_SET_TSC_KHZ, and
    /// CPUID 0x40000010 says so) or is refused (<see cref="SnapshotRefusal.TscRateRefused"/>).
    /// </summary>
    public uint TscKhz => X86Vcpu?.TscKhz ?? 0;

    /// <summary>TSC_AUX (MSR 0xC0000103: RDTSCP's ECX, RDPID) when the snapshot was taken; 0 when it holds none.</summary>
    public ulong TscAux => X86Vcpu?.TscAux ?? 0;

    /// <summary>The guest-physical address of stored page <paramref name="index"/> (ascending).</summary>
    public ulong PageAddress(int index) => Pages.Pages[index] * (ulong)PageSize;

    /// <summary>The bytes of stored page <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> GetPage(int index) => Pages.Page(index);

    /// <summary>Writes the snapshot to <paramref name="stream"/> (the versioned format of SnapshotFormat).</summary>
    public void WriteTo(Stream stream) => SnapshotWriter.Write(this, stream);

    /// <summary>
    /// Reads a snapshot written by <see cref="WriteTo"/>, up to and including its checksum (the stream may go on).
    /// Corrupt, truncated or foreign bytes are a <see cref="MicroVmSnapshotFormatException"/> saying what and where;
    /// the stream's own failures stay <see cref="IOException"/>s.
    /// </summary>
    public static MicroVmSnapshot ReadFrom(Stream stream) => SnapshotReader.Read(stream);

    /// <summary>Whether <paramref name="header"/> (the first bytes of a file) starts like a snapshot (its magic).</summary>
    public static bool HasSnapshotMagic(ReadOnlySpan<byte> header) => header.StartsWith(SnapshotFormat.Magic);

    /// <summary>
    /// The oldest GUEST-ABI whose memory this VMM restores: v4's pages are v5's (v5 only added a port and two call-region
    /// fields, which a v4 guest never set and the host clears before every call).
    /// </summary>
    private const uint OldestRestorableAbi = 4;

    /// <summary>Throws unless this snapshot fits a micro-VM of <paramref name="image"/>, memory size and features.</summary>
    internal void CheckFits(GuestImage image, ulong memorySize, ulong features, GuestArchitecture architecture)
    {
        CheckArchitecture(architecture);
        if (AbiVersion is < OldestRestorableAbi or > GuestAbi.CallRegion.VersionValue)
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.AbiMismatch,
                $"the snapshot holds memory laid out by GUEST-ABI v{AbiVersion}, this VMM speaks v{GuestAbi.CallRegion.VersionValue}: take it again from a fresh micro-VM");
        }
        if (!ReferenceEquals(image, Image) && !image.Digest.SequenceEqual(Image.Digest))
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.ImageMismatch,
                $"the snapshot is of image {Describe(Image)}, this micro-VM runs image {Describe(image)}");
        }
        if (memorySize != MemorySize)
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.MemorySizeMismatch,
                $"the snapshot has 0x{MemorySize:X} bytes of guest memory, this micro-VM 0x{memorySize:X}");
        }
        if (features != Features)
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.FeatureMismatch,
                $"the snapshot's guest was offered features 0x{Features:X} (VM type {VmType}), this micro-VM offers 0x{features:X}");
        }
    }

    /// <summary>Throws unless this snapshot is of a micro-VM of <paramref name="architecture"/>.</summary>
    internal void CheckArchitecture(GuestArchitecture architecture)
    {
        if (architecture != Architecture)
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.ArchitectureMismatch,
                $"the snapshot is of an {Architecture} micro-VM, this micro-VM is {architecture}: a snapshot's memory and registers are of one instruction set");
        }
    }

    private static string Describe(GuestImage image) =>
        $"sha256:{Convert.ToHexStringLower(image.Digest[..8])}… ({image.Kind}, entry 0x{image.Entry:X}, {image.Exports.Count} exports)";
}
