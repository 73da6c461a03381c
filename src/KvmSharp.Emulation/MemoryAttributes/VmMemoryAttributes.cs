// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.MemoryAttributes;

/// <summary>
/// Per-VM memory attributes: KVM_SET_MEMORY_ATTRIBUTES (virt/kvm/kvm_main.c, CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES)
/// and the seed 002 variant KVM_SET_MEMORY_ATTRIBUTES2 on the VM fd ("Introduce KVM_SET_MEMORY_ATTRIBUTES2",
/// Mar 2026), which share one handler. Attributes are per GFN and independent of memslots.
/// </summary>
internal static class VmMemoryAttributes
{
    /// <summary>
    /// vm_memory_attributes of [PATCH v8 09/46] / seed 002: the VM-level ioctls exist only with the Kconfig, and
    /// step aside (ENOTTY, cap 0) when guest_memfd tracks private/shared in place.
    /// </summary>
    public static bool Enabled(EmulatedKernel kernel) =>
        kernel.Config.Kconfig.KVM_GENERIC_MEMORY_ATTRIBUTES && !kernel.InPlaceConversion;

    /// <summary>kvm_supported_mem_attributes(kvm): PRIVATE for /dev/kvm and VMs with private memory.</summary>
    public static ulong Supported(EmulatedKernel kernel, Kvm? kvm) =>
        kvm is null || kernel.Arch.HasPrivateMem(kvm) ? KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;

    /// <summary>kvm_vm_ioctl KVM_SET_MEMORY_ATTRIBUTES[2]: copy (v1 into a zeroed v2 struct), then the checks.</summary>
    public static long Ioctl(Kvm kvm, IoctlArg arg, bool v2)
    {
        // seed 002: r = -ENOTTY; if (!vm_memory_attributes) goto out; — before copy_from_user.
        if (!Enabled(kvm.Kernel)) return Err.ENOTTY;
        kvm_memory_attributes2 attrs;
        bool copied = v2
            ? arg.CopyFromUser(out attrs)
            : arg.CopyFromUserPrefix(Unsafe.SizeOf<kvm_memory_attributes>(), out attrs);
        if (!copied) return Err.EFAULT;
        return Set(kvm, attrs);
    }

    /// <summary>kvm_vm_ioctl_set_mem_attributes, checks in order.</summary>
    private static long Set(Kvm kvm, in kvm_memory_attributes2 attrs)
    {
        // flags is currently not used.
        if (attrs.flags != 0) return Err.EINVAL;
        if ((attrs.attributes & ~Supported(kvm.Kernel, kvm)) != 0) return Err.EINVAL;
        if (attrs.size == 0 || attrs.offset + attrs.size < attrs.offset) return Err.EINVAL;
        ulong pageMask = (ulong)EmulatorConfig.PageSize - 1;
        if ((attrs.offset & pageMask) != 0 || (attrs.size & pageMask) != 0) return Err.EINVAL;
        // seed 002: every word after flags (reserved[12], where v8 later carved out error_offset) must be zero;
        // KVM_SET_MEMORY_ATTRIBUTES zeroes them, so v1 always passes.
        if (attrs.error_offset != 0) return Err.EINVAL;
        for (int i = 0; i < 11; i++)
        {
            if (attrs.reserved[i] != 0) return Err.EINVAL;
        }
        int shift = EmulatorConfig.PageShift;
        ulong start = attrs.offset >> shift;
        ulong end = (attrs.offset + attrs.size) >> shift;
        // kvm_vm_set_mem_attributes: nothing to do if the entire range has the desired attributes.
        if (kvm.MemAttrArray.AllEqual(start, end, attrs.attributes)) return 0;
        // kvm_arch_pre_set_memory_attributes → kvm_unmap_gfn_range: the leaves overlapping the range go (a huge leaf
        // whole); kvm_arch_post_set_memory_attributes then sets KVM_LPAGE_MIXED_FLAG where the huge pages became
        // mixed, so the next fault maps smaller (Mmu/MmuMappingLevel.cs computes the flag at the fault).
        Mmu.MmuMappings.InvalidateRanges(kvm, [(start, end)]);
        // kvm_arch_pre_set_memory_attributes: converting to shared zaps the private SPTEs (attr_filter
        // KVM_FILTER_PRIVATE) — for a TD, TDH.MEM.PAGE.REMOVE (Arch/X86/TdxSept.cs).
        if ((attrs.attributes & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0) Arch.TdxSept.Zap(kvm, start, end);
        kvm.MemAttrArray.Set(start, end, attrs.attributes);
        return 0;
    }
}
