// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>One entry of sev-&gt;regions_list (sev.c struct enc_region: uaddr, size, npages).</summary>
internal sealed record EncRegion(ulong Address, ulong Size, ulong Pages);

/// <summary>
/// KVM_MEMORY_ENCRYPT_REG_REGION / KVM_MEMORY_ENCRYPT_UNREG_REGION (arch/x86/kvm/x86.c kvm_arch_vm_ioctl;
/// arch/x86/kvm/svm/sev.c sev_mem_enc_register_region / sev_mem_enc_unregister_region, Linux 6.18) and the pin
/// check they share with KVM_SEV_LAUNCH_UPDATE_DATA (sev_pin_memory).
/// <para>
/// The pin is bookkeeping: what it can refuse is modelled (a range not wholly mapped writable, the memlock limit),
/// not its side effects (pages faulted in and held, the clflush). An SNP guest registers like any SEV guest (6.18 has
/// no SNP check here). Mirror VMs (KVM_CAP_VM_COPY_ENC_CONTEXT_FROM, "is_mirroring_enc_context → -EINVAL") are not
/// modelled. sev_vm_destroy unpins the regions left over; here they go with the VM's <see cref="SevInfo"/>, and
/// pages_locked is per VM, so nothing else observes them.
/// </para>
/// </summary>
internal static class SevRegions
{
    /// <summary>include/uapi/linux/capability.h CAP_IPC_LOCK.</summary>
    private const int CapIpcLock = 14;

    public static long Register(Kvm kvm, IoctlArg arg)
    {
        // x86.c: "r = -EFAULT; if (copy_from_user(&region, argp, sizeof(region))) goto out;" — before the hook check.
        if (!arg.CopyFromUser(out kvm_enc_region range)) return Err.EFAULT;
        // x86.c: "r = -ENOTTY; if (!kvm_x86_ops.mem_enc_register_region) goto out;" — no vendor module, or kvm_intel
        // (vt ops have none; the emulated host serves every non-SEV type with it). kvm_amd on a type-0 VM would reach
        // sev_guest() == false below: ENOTTY as well.
        if (!CocoState.IsSevType(kvm)) return Err.ENOTTY;
        var sev = CocoState.Sev(kvm);
        // sev_mem_enc_register_region: "if (!sev_guest(kvm)) return -ENOTTY;" — sev->active, set by KVM_SEV_INIT2.
        if (!sev.IsSevGuest) return Err.ENOTTY;
        // "if (range->addr > ULONG_MAX || range->size > ULONG_MAX) return -EINVAL;" never holds on a 64-bit kernel.
        lock (sev) // mutex_lock(&kvm->lock) around sev_pin_memory and list_add_tail
        {
            long r = Pin(kvm, sev, range.addr, range.size, out ulong pages);
            if (r != 0) return r;
            sev.PagesLocked += pages;
            // list_add_tail with no overlap or duplicate check: the same range can be registered twice.
            sev.Regions.Add(new EncRegion(range.addr, range.size, pages));
            return 0;
        }
    }

    public static long Unregister(Kvm kvm, IoctlArg arg)
    {
        // x86.c: copy_from_user → -EFAULT, then "if (!kvm_x86_ops.mem_enc_unregister_region) goto out;" → -ENOTTY.
        if (!arg.CopyFromUser(out kvm_enc_region range)) return Err.EFAULT;
        if (!CocoState.IsSevType(kvm)) return Err.ENOTTY;
        var sev = CocoState.Sev(kvm);
        lock (sev)
        {
            // sev_mem_enc_unregister_region: under kvm->lock, "if (!sev_guest(kvm)) { ret = -ENOTTY; goto failed; }".
            if (!sev.IsSevGuest) return Err.ENOTTY;
            // find_enc_region: the first entry with "i->uaddr == range->addr && i->size == range->size", else -EINVAL.
            int i = sev.Regions.FindIndex(e => e.Address == range.addr && e.Size == range.size);
            if (i < 0) return Err.EINVAL;
            // __unregister_enc_region_locked → sev_unpin_memory: "pages_locked -= npages"; list_del.
            sev.PagesLocked -= sev.Regions[i].Pages;
            sev.Regions.RemoveAt(i);
            return 0;
        }
    }

    /// <summary>
    /// sev.c sev_pin_memory's refusals, in its order; <paramref name="pages"/> is npages on success. The caller holds
    /// kvm->lock and adds the pages to pages_locked if it keeps them (LAUNCH_UPDATE_DATA unpins before returning).
    /// </summary>
    internal static long Pin(Kvm kvm, SevInfo sev, ulong uaddr, ulong ulen, out ulong pages)
    {
        pages = 0;
        // "if (ulen == 0 || uaddr + ulen < uaddr) return ERR_PTR(-EINVAL);"
        if (ulen == 0 || unchecked(uaddr + ulen) < uaddr) return Err.EINVAL;
        int shift = EmulatorConfig.PageShift;
        ulong first = uaddr >> shift, last = (uaddr + ulen - 1) >> shift;
        ulong npages = last - first + 1;
        // "locked = sev->pages_locked + npages; lock_limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
        //  if (locked > lock_limit && !capable(CAP_IPC_LOCK)) return ERR_PTR(-ENOMEM);"
        ulong locked = sev.PagesLocked + npages;
        if (locked > MemlockLimit() >> shift && !HasEffectiveCapability(CapIpcLock)) return Err.ENOMEM;
        // "if (WARN_ON_ONCE(npages > INT_MAX)) return ERR_PTR(-EINVAL);"
        if (npages > int.MaxValue) return Err.EINVAL;
        // pin_user_pages_fast(uaddr, npages, FOLL_WRITE…): "if (npinned != npages) { ret = -ENOMEM; goto err; }" —
        // a page pins when a writable mapping covers it (GUP's check_vma_flags: FOLL_WRITE needs VM_WRITE), which no
        // page at or above TASK_SIZE has.
        if (last >= kvm.Kernel.Config.TaskSizeMax >> shift) return Err.ENOMEM;
        if (!MappedWritable(first << shift, (last + 1) << shift)) return Err.ENOMEM;
        pages = npages;
        return 0;
    }

    /// <summary>Whether /proc/self/maps covers [start, end) without a hole, every mapping writable.</summary>
    private static bool MappedWritable(ulong start, ulong end)
    {
        ulong covered = start;
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            // "7f12a000-7f12c000 rw-p 00000000 00:00 0", sorted by address.
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash < 0 || space < dash || line.Length < space + 3) continue;
            ulong from = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong to = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (to <= covered) continue;
            if (from > covered || line[space + 2] != 'w') return false;
            covered = to;
            if (covered >= end) return true;
        }
        return false;
    }

    /// <summary>rlimit(RLIMIT_MEMLOCK): this process's soft limit in bytes ("Max locked memory" of /proc/self/limits).</summary>
    private static ulong MemlockLimit()
    {
        const string Name = "Max locked memory";
        foreach (string line in File.ReadLines("/proc/self/limits"))
        {
            if (!line.StartsWith(Name, StringComparison.Ordinal)) continue;
            string soft = line[Name.Length..].TrimStart().Split(' ', 2)[0];
            return soft == "unlimited" ? ulong.MaxValue : ulong.Parse(soft, CultureInfo.InvariantCulture);
        }
        return ulong.MaxValue;
    }

    /// <summary>capable(cap) as this process's effective set shows it (CapEff of /proc/self/status).</summary>
    private static bool HasEffectiveCapability(int cap)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith("CapEff:", StringComparison.Ordinal)) continue;
            ulong mask = ulong.Parse(line.AsSpan("CapEff:".Length).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return ((mask >> cap) & 1) != 0;
        }
        return false;
    }
}
