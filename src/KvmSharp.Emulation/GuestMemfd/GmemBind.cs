// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>virt/kvm/guest_memfd.c kvm_gmem_bind / kvm_gmem_unbind.</summary>
internal static class GmemBind
{
    /// <summary>
    /// kvm_gmem_bind: fget(fd) fails → EBADF; not a guest_memfd or another VM's → EINVAL; offset unaligned or
    /// offset + size past i_size (both unsigned) → EINVAL; any page already bound → EINVAL. The file reference is
    /// dropped again on success: the binding does not keep the file open. The offset is guest_memfd_offset, a u64
    /// (kvm_set_memory_region has already refused an offset + memory_size that wraps).
    /// </summary>
    public static long Bind(Kvm kvm, KvmMemorySlot slot, uint fd, long offset)
    {
        KernelFile? file = kvm.Kernel.Fget(fd);
        if (file is null) return Err.EBADF;
        if (file is not GmemFile f || f.Kvm != kvm) return Err.EINVAL;
        // "KVM: guest_memfd: Treat memslot binding offset+size as unsigned values" (Sean Christopherson, 2026; KVM
        // queue for 7.2, and carried by CVE backport branches such as sashal/linux noble-cves, i.e. a fix for every
        // release with guest_memfd, so every generation here has it): kvm_gmem_bind takes the offset unsigned.
        // Before it, a loff_t offset such as ALIGN_DOWN(INT64_MAX, PAGE_SIZE) made offset + size wrap negative and
        // the binding was accepted; selftest guest_memfd_test.c test_invalid_binding ("KVM: selftests: Add
        // guest_memfd regression test signed offset+size bug") expects EINVAL.
        ulong uoffset = (ulong)offset;
        ulong size = slot.NPages << EmulatorConfig.PageShift;
        if ((uoffset & (ulong)(EmulatorConfig.PageSize - 1)) != 0 || uoffset + size > (ulong)f.GmemInode.Size) return Err.EINVAL;
        ulong start = uoffset >> EmulatorConfig.PageShift;
        ulong end = start + slot.NPages;
        foreach (var other in f.Bindings)
        {
            if (other.GmemPgoff < end && start < other.GmemPgoff + other.NPages) return Err.EINVAL;
        }
        slot.GmemFile = f;
        slot.GmemPgoff = start;
        if (f.GmemInode.SupportsMmap) slot.GmemOnly = true;
        f.AddBinding(slot);
        return 0;
    }

    /// <summary>kvm_gmem_unbind: nothing to do if the file was already released; else drop the binding.</summary>
    public static void Unbind(KvmMemorySlot slot)
    {
        var f = slot.GmemFile;
        if (f is null) return;
        f.RemoveBinding(slot);
        slot.GmemFile = null;
    }
}
