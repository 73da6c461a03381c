// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// KVM's own accesses to the guest areas its PV MSRs name (kvmclock's pvclock and wall clock, steal time, the async-PF
/// token, the PV EOI byte): virt/kvm/kvm_main.c kvm_read_guest / kvm_write_guest and the gfn_to_hva cache checks,
/// through the memslots' userspace addresses, for the vCPU that owns an X86Cpu.
/// </summary>
internal static class KvmGuestMemory
{
    /// <summary>The vCPU whose MSRs <paramref name="cpu"/> holds (null for an X86Cpu built without a VM: unit tests).</summary>
    internal static KvmVcpu? Owner(X86Cpu cpu)
    {
        if (cpu.Msrs.Vm is not { } kvm) return null;
        foreach (var vcpu in kvm.Irqchip.Online)
            if (vcpu.Cpu == cpu) return vcpu;
        return null;
    }

    /// <summary>__gfn_to_hva_many for a write: a KVM_MEM_READONLY slot gives KVM_HVA_ERR_RO_BAD.</summary>
    internal static bool Writable(KvmVcpu vcpu, ulong gpa)
    {
        lock (vcpu.Kvm.Kernel.SyncRoot)
            return GuestMemoryPath.GfnToMemslot(vcpu.Kvm, 0, gpa >> EmulatorConfig.PageShift) is { } slot
                && (slot.Flags & KvmConstants.KVM_MEM_READONLY) == 0;
    }

    /// <summary>
    /// kvm_read_guest / kvm_write_guest (address space 0): page by page through the memslot's userspace_addr; false
    /// when a page has no memslot (or no host page), or on a write to a KVM_MEM_READONLY slot; a write marks the page
    /// dirty (mark_page_dirty_in_slot, the running vCPU's dirty ring).
    /// </summary>
    internal static bool Access(KvmVcpu vcpu, ulong gpa, Span<byte> data, bool write)
    {
        var kvm = vcpu.Kvm;
        int shift = EmulatorConfig.PageShift;
        ulong pageMask = (1UL << shift) - 1;
        int done = 0;
        while (done < data.Length)
        {
            ulong a = gpa + (ulong)done;
            int chunk = (int)Math.Min((ulong)(data.Length - done), pageMask + 1 - (a & pageMask));
            ulong gfn = a >> shift;
            KvmMain.KvmMemorySlot? slot;
            lock (kvm.Kernel.SyncRoot) slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn);
            if (slot is null || slot.UserspaceAddr == 0) return false;
            if (write && (slot.Flags & KvmConstants.KVM_MEM_READONLY) != 0) return false;
            ulong hva = slot.UserspaceAddr + ((gfn - slot.BaseGfn) << shift) + (a & pageMask);
            if (kvm.Kernel.GupRefuses(hva)) return false;
            var part = data.Slice(done, chunk);
            long rc = write ? HostMemory.WriteProcessMemory(hva, part) : HostMemory.ReadProcessMemory(hva, part);
            if (rc < 0) return false;
            if (write) lock (kvm.Kernel.SyncRoot) slot.MarkDirty(gfn, vcpu.Memory.DirtyRing);
            done += chunk;
        }
        return true;
    }

    /// <summary>
    /// kvm_gfn_to_hva_cache_init(kvm, ghc, gpa, len) succeeds: every page of [gpa, gpa + len) is in a memslot of address
    /// space 0 that is not KVM_MEM_READONLY (gfn_to_hva_many asks for a writable HVA), and len is not 0 ("if (start_gfn
    /// &gt; end_gfn) return -EINVAL").
    /// </summary>
    internal static bool HvaCacheInit(KvmMain.Kvm? kvm, ulong gpa, ulong len)
    {
        if (kvm is null || len == 0) return false;
        int shift = EmulatorConfig.PageShift;
        ulong first = gpa >> shift, last = (gpa + len - 1) >> shift;
        if (first > last) return false;
        lock (kvm.Kernel.SyncRoot)
        {
            for (ulong gfn = first; gfn <= last; gfn++)
                if (GuestMemoryPath.GfnToMemslot(kvm, 0, gfn) is not { } slot || (slot.Flags & KvmConstants.KVM_MEM_READONLY) != 0)
                    return false;
        }
        return true;
    }
}
