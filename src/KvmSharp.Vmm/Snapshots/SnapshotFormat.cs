// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// The snapshot file, version 7 (all integers little-endian):
/// <code>
///  0  8  magic "KVMSNAP\0"
///  8  4  u32 version = 7
/// 12  4  u32 page size = 4096
/// 16  8  u64 memory size (a valid MicroVmOptions.MemorySize)
/// 24  4  u32 VM type (KVM_CREATE_VM's argument)
/// 28  4  u32 GUEST-ABI version the memory was laid out by (CallRegion.VersionValue)
/// 32  8  u64 features (CallRegion.features the guest was offered)
/// 40  4  u32 image section length
/// 44  4  u32 page count
/// 48     image section (<see cref="ImageEncoding"/>)
///        page count × { u64 page number (strictly ascending, below memory size / page size); page size bytes }
///        u32 architecture: 0 x86-64, 1 arm64 (the vCPU section that follows is of that architecture)
///        x86-64 vCPU section:
///          312 bytes: struct kvm_sregs as KVM_GET_SREGS gave it (uAPI layout)
///          u32 MSR count (at most the 10 of VcpuState.Candidates)
///          MSR count × struct kvm_msr_entry { u32 index; u32 reserved = 0; u64 value }, indices strictly ascending,
///            each one of VcpuState.Candidates (KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK, SYSENTER_CS/ESP/EIP, PAT,
///            TSC_AUX)
///          u32 FPU image length L: 416 (struct kvm_fpu, a kernel without KVM_CAP_XSAVE) or 4096 ≤ L ≤ 65536, L % 4 = 0
///            (the XSAVE area as KVM_GET_XSAVE / KVM_GET_XSAVE2 gave it)
///          L bytes: the FPU image
///          u32 XCR0 flags (bit 0: XCR0 present, i.e. the kernel has KVM_CAP_XCRS; no other bit); u64 XCR0 (0 if absent)
///          128 bytes: struct kvm_debugregs as KVM_GET_DEBUGREGS gave it
///          64 bytes: struct kvm_vcpu_events as KVM_GET_VCPU_EVENTS gave it
///          u64 the guest's TSC (IA32_TSC) when the snapshot was taken
///          u32 the vCPU's TSC rate in kHz (KVM_GET_TSC_KHZ; 0: the kernel has no KVM_CAP_GET_TSC_KHZ)
///        arm64 vCPU section (VM type 0 and features 0 in the header):
///          u32 register count N, 1 ≤ N ≤ 4096
///          N × { u64 id: a KVM_GET/SET_ONE_REG id (KVM_REG_ARM64 | KVM_REG_SIZE_* | space: KVM_REG_ARM_CORE with the
///                  struct kvm_regs offset / 4, KVM_REG_ARM64_SYSREG with op0:op1:CRn:CRm:op2, firmware, timer, demux,
///                  and for an SVE vCPU KVM_REG_ARM64_SVE: the vector-length bitmap, Z0..Z31 and P0..P15, FFR, slice 0),
///                  each at most once, KVM_REG_SIZE(id) ≤ 256;
///                KVM_REG_SIZE(id) bytes: its value as KVM_GET_ONE_REG gave it }
///            in the order of the snapshotted vCPU's KVM_GET_REG_LIST, which is the restore's order (Arm64VcpuState)
///        32 bytes: SHA-256 of every byte before it
/// </code>
/// The image travels inside the snapshot, not as a hash of it: a snapshot must create a micro-VM in another process
/// that may never have seen the image, and calling by name needs the exports and entry, which guest memory does not
/// hold. Images are a few KiB, next to the pages they were loaded into. (Restore still compares images by digest, so
/// a snapshot read back fits the micro-VM created from the original image object.)
/// SHA-256 rather than a CRC: it is in the BCL (no package), fast enough for what is usually tens of pages, and the
/// same hash names images. One writer produces one byte sequence for one snapshot (segments by address, exports by
/// name), and the reader accepts only that order, so bytes that parse are rewritten identically.
/// Version 1 (the first days of snapshots) had 0 where version 2 records the GUEST-ABI version; GUEST-ABI v4 added
/// VMM pages (IDT, exception handlers) that a v3 snapshot lacks, so a snapshot must say which layout it holds.
/// Version 3 added the vCPU section (after the pages, so the header and the offsets of version 2 are unchanged).
/// Version 4 added the FPU image, XCR0, the debug registers and the events after the MSRs: a guest whose
/// initialisation set MXCSR, XCR0 or vector registers ran differently after a version 3 restore. Version 3 is refused
/// for the same reason as 1 and 2.
/// Version 5 added the guest's TSC at the end of the vCPU section: a micro-VM made from the snapshot reads no less
/// (MicroVm.RestoreTscOffset), where a new VM's TSC starts at 0 on upstream KVM. Version 4 is still read (as TSC 0,
/// no floor: what it did before).
/// Version 6 added TSC_AUX to the MSRs (RDTSCP's ECX and RDPID: a guest that set it in its initialisation read 0
/// after a restore) and the TSC rate after the TSC (a guest that turned ticks into time with the rate of CPUID
/// 0x40000010 must find the same rate after a restore on another host, or be refused). Versions 5 and 4 are still
/// read (rate 0: unknown, kept as the new vCPU's; no TSC_AUX, which such a file cannot hold).
/// Version 7 added the architecture before the vCPU section, and the arm64 vCPU section: arm64 micro-VMs gained
/// snapshots, and an x86-64 snapshot must never be loaded into an arm64 micro-VM or the reverse (MicroVmSnapshot
/// .Architecture; the refusal names both). An x86-64 file differs from version 6 only in the version and those 4
/// bytes; versions 6, 5 and 4 are still read, as x86-64.
/// SVE micro-VMs (MicroVmOptions.Arm64SveVectorBits) needed no new version: their Z, P and FFR registers, the
/// vector-length bitmap and ZCR_EL1 are on the vCPU's KVM_GET_REG_LIST, so a version 7 arm64 section already holds
/// them (a Z register is KVM_REG_SIZE_U2048, 256 bytes, the largest id the reader takes); a file from before SVE
/// micro-VMs has none and loads into a micro-VM without SVE, as it did (Arm64VcpuState.CheckSve).
/// Versions 1 and 2 are refused (<see cref="SnapshotFormatError.UnsupportedVersion"/>), not loaded with the boot
/// registers: a guest whose initialisation set FS base, KERNEL_GS_BASE, STAR … would silently run differently from
/// the micro-VM that was snapshotted. Take such a snapshot again.
/// </summary>
internal static class SnapshotFormat
{
    public static ReadOnlySpan<byte> Magic => "KVMSNAP\0"u8;

    public const uint Version = 7;

    /// <summary>The previous version, still read: an x86-64 snapshot without the architecture field.</summary>
    public const uint VersionWithoutArchitecture = 6;

    /// <summary>The version before, still read: everything but TSC_AUX and the TSC rate.</summary>
    public const uint VersionWithoutTscRate = 5;

    /// <summary>The oldest version read: everything but the TSC, its rate and TSC_AUX.</summary>
    public const uint VersionWithoutTsc = 4;

    /// <summary>The architecture field (version 7) of an x86-64 snapshot.</summary>
    public const uint ArchitectureX86_64 = 0;

    /// <summary>The architecture field (version 7) of an arm64 snapshot.</summary>
    public const uint ArchitectureArm64 = 1;

    /// <summary>The vCPU section's XCR0 flag: XCR0 present.</summary>
    public const uint HasXcr0 = 1;

    public const int HeaderSize = 48;

    public const int ChecksumSize = 32;

    // Header field offsets.
    public const int VersionOffset = 8;
    public const int PageSizeOffset = 12;
    public const int MemorySizeOffset = 16;
    public const int VmTypeOffset = 24;
    public const int AbiVersionOffset = 28;
    public const int FeaturesOffset = 32;
    public const int ImageLengthOffset = 40;
    public const int PageCountOffset = 44;

    /// <summary>Feature bits a snapshot may carry: the ones this library offers guests.</summary>
    public const ulong KnownFeatures = GuestAbi.CallRegion.FeaturePrivateMemory;
}
