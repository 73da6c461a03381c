// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Abi;

/// <summary>
/// Coalesced MMIO's numbers (include/uapi/linux/kvm.h, the arches' uapi asm/kvm.h; Documentation/virt/kvm/api.rst
/// 4.116 KVM_(UN)REGISTER_COALESCED_MMIO).
/// </summary>
public static class KvmCoalescedMmio
{
    /// <summary><c>_IOW(KVMIO, 0x67, struct kvm_coalesced_mmio_zone)</c> = 0x4010AE67 (a VM ioctl).</summary>
    public static readonly uint KVM_REGISTER_COALESCED_MMIO = _IOW(KvmIoctls.KVMIO, 0x67, (uint)Unsafe.SizeOf<kvm_coalesced_mmio_zone>());

    /// <summary><c>_IOW(KVMIO, 0x68, struct kvm_coalesced_mmio_zone)</c> = 0x4010AE68 (a VM ioctl).</summary>
    public static readonly uint KVM_UNREGISTER_COALESCED_MMIO = _IOW(KvmIoctls.KVMIO, 0x68, (uint)Unsafe.SizeOf<kvm_coalesced_mmio_zone>());

    /// <summary>arch/x86/include/uapi/asm/kvm.h: the ring is page 2 of a vCPU's mmap (after kvm_run and the PIO page).</summary>
    public const int KVM_COALESCED_MMIO_PAGE_OFFSET_X86 = 2;

    /// <summary>arch/arm64/include/uapi/asm/kvm.h: page 1 of a vCPU's mmap (arm64 has no PIO data page).</summary>
    public const int KVM_COALESCED_MMIO_PAGE_OFFSET_ARM64 = 1;

    /// <summary>The header (first, last) before the entries.</summary>
    public const int RingHeaderSize = 8;

    /// <summary>sizeof(struct kvm_coalesced_mmio).</summary>
    public const int EntrySize = 24;

    /// <summary>
    /// include/uapi/linux/kvm.h KVM_COALESCED_MMIO_MAX: "(PAGE_SIZE - sizeof(struct kvm_coalesced_mmio_ring)) /
    /// sizeof(struct kvm_coalesced_mmio)" — 170 entries with 4 KiB pages, of which at most 169 are ever in use.
    /// </summary>
    public static int MaxEntries(int pageSize) => (pageSize - RingHeaderSize) / EntrySize;
}
