// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// The kvm_main.c half of "[PATCH v3 04/15] KVM: Add common infrastructure for KVM Userfaults" (James Houghton,
/// 2025-06-18, unmerged; <see cref="EmulatorConfig.KvmUserfault"/>): the bitmap check of kvm_set_memory_region and
/// kvm_do_userfault, which the x86 fault path calls first thing in __kvm_mmu_faultin_pfn ([PATCH v3 05/15]).
/// </summary>
internal static class Userfault
{
    /// <summary>
    /// kvm_set_memory_region, after the KVM_MEM_MAX_NR_PAGES check (so before the slot lookup, also for a deletion):
    /// "if (mem->flags &amp; KVM_MEM_USERFAULT &amp;&amp; ((mem->userfault_bitmap != untagged_addr(mem->userfault_bitmap)) ||
    /// !access_ok(u64_to_user_ptr(mem->userfault_bitmap), DIV_ROUND_UP(mem->memory_size >> PAGE_SHIFT, BITS_PER_LONG) *
    /// sizeof(long)))) return -EINVAL". Only the range is checked, never that it is mapped or aligned: NULL passes (the
    /// series' own set_memory_region_test toggles the flag with userfault_bitmap = 0, [PATCH v3 13/15]); an unreadable
    /// bitmap is found at fault time. untagged_addr is the identity here (x86 without LAM).
    /// </summary>
    public static bool BitmapOk(Kvm kvm, in kvm_userspace_memory_region2 mem)
    {
        if ((mem.flags & KvmConstants.KVM_MEM_USERFAULT) == 0) return true;
        ulong npages = mem.memory_size >> EmulatorConfig.PageShift;
        ulong bytes = (npages + 63) / 64 * sizeof(ulong);
        return UserMemory.AccessOk(kvm.Kernel.Config, mem.userfault_bitmap, bytes);
    }

    /// <summary>"if (mem->flags &amp; KVM_MEM_USERFAULT) new->userfault_bitmap = u64_to_user_ptr(mem->userfault_bitmap)".</summary>
    public static ulong BitmapOf(in kvm_userspace_memory_region2 mem) =>
        (mem.flags & KvmConstants.KVM_MEM_USERFAULT) != 0 ? mem.userfault_bitmap : 0;

    /// <summary>
    /// kvm_do_userfault(vcpu, fault): null when the access may proceed (no KVM_MEM_USERFAULT, or the page's bit is
    /// clear). The bit is read from the VMM's memory as __get_user reads the long that holds it
    /// (userfault_bitmap + offset / BITS_PER_LONG); an unreadable long answers a bare EFAULT without a memory fault
    /// exit ("if (__get_user(chunk, user_chunk)) return true"). A set bit prepares the memory fault exit of the faulting
    /// page (gpa, PAGE_SIZE, PRIVATE if the access was private) and adds KVM_MEMORY_EXIT_FLAG_USERFAULT. Caller holds
    /// the kernel lock.
    /// </summary>
    public static GpaResult? Check(Kvm kvm, KvmMemorySlot slot, ulong gfn, ulong gpa, bool isPrivate)
    {
        if (!slot.IsUserfault) return null;
        ulong offset = gfn - slot.BaseGfn;
        ulong chunkAddress = slot.UserfaultBitmap + offset / 64 * sizeof(ulong);
        if (!UserMemory.CopyFromUser(kvm.Kernel.Config, chunkAddress, out ulong chunk)) return GpaResult.BareFault(Err.EFAULT);
        if ((chunk & (1UL << (int)(offset % 64))) == 0) return null;
        return GpaResult.Userfault(gpa, isPrivate);
    }
}
