// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.GuestMemfd;

/// <summary>virt/kvm/guest_memfd.c kvm_gmem_bind / kvm_gmem_unbind.</summary>
internal static class GmemBind
{
    /// <summary>
    /// kvm_gmem_bind: fget(fd) fails → EBADF; not a guest_memfd or another VM's → EINVAL; offset &lt; 0, unaligned or
    /// past i_size → EINVAL; any page already bound → EINVAL. The file reference is dropped again on success: the
    /// binding does not keep the file open.
    /// </summary>
    public static long Bind(Kvm kvm, KvmMemorySlot slot, uint fd, long offset)
    {
        KernelFile? file = kvm.Kernel.Fget(fd);
        if (file is null) return Err.EBADF;
        if (file is not GmemFile f || f.Kvm != kvm) return Err.EINVAL;
        long size = (long)(slot.NPages << EmulatorConfig.PageShift);
        if (offset < 0 || (offset & (EmulatorConfig.PageSize - 1)) != 0 || offset + size > f.GmemInode.Size) return Err.EINVAL;
        ulong start = (ulong)offset >> EmulatorConfig.PageShift;
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
