// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.MemoryAttributes;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The guest-owner fields of one RMP entry next to <see cref="RmpEntry"/> (AMD APM Vol. 2, 15.36.3 "Reverse Map
/// Table"; arch/x86/virt/svm/sev.c struct rmpentry: gpa, asid; the VMPL permission masks of 15.36.7 "Virtual Machine
/// Privilege Levels"): the <see cref="Asid"/> and <see cref="Gpa"/> the page was made private for, and the permission
/// masks of VMPL1–3 (VMPL0 always has every permission). Default: a hypervisor-owned entry (all zero).
/// </summary>
internal readonly record struct RmpOwner(int Asid, ulong Gpa, byte Vmpl1Perms, byte Vmpl2Perms, byte Vmpl3Perms)
{
    /// <summary>The permission mask of <paramref name="vmpl"/> (0–3); VMPL0 has <see cref="SnpRmpVmpl.PermAll"/>.</summary>
    public byte Permissions(int vmpl) => vmpl switch
    {
        0 => SnpRmpVmpl.PermAll,
        1 => Vmpl1Perms,
        2 => Vmpl2Perms,
        3 => Vmpl3Perms,
        _ => 0,
    };
}

/// <summary>
/// The ASID, GPA and VMPL permission parts of the emulated RMP (<see cref="SnpRmp"/> keeps assigned / validated /
/// size / VMSA), and what KVM and the CPU do with them:
/// <list type="bullet">
/// <item>rmp_make_private(pfn, gpa, level, asid, false) (arch/x86/virt/svm/sev.c, from sev_gmem_prepare and
/// sev_gmem_post_populate) records the guest's ASID and the page's GPA; RMPUPDATE writes the whole entry, so the
/// VMPL1–3 masks start at 0 (the SNP_LAUNCH_UPDATE KVM 6.18 issues has no VMPL permissions: sev_gmem_post_populate
/// leaves sev_data_snp_launch_update.vmpl1..3_perms 0). rmp_make_shared (sev_gmem_invalidate) zeroes it.</item>
/// <item>A private access (or PVALIDATE / RMPADJUST) whose GPA differs from the entry's is an RMP nested page fault
/// (APM Vol. 2, 15.36.10 "RMP and VMPL Access Checks"; #NPF with PFERR_GUEST_RMP_MASK). KVM (svm.c
/// npf_interception → sev_handle_rmp_fault) finds the 4 KiB entry assigned and "goto out": nothing changes and the
/// guest re-runs the instruction, which faults again — the vCPU makes no progress until KVM_RUN is interrupted.</item>
/// <item>A 4 KiB PVALIDATE / RMPADJUST on a 2 MiB entry is an #NPF with PFERR_GUEST_SIZEM: sev_handle_rmp_fault
/// PSMASHes the entry (snp_rmptable_psmash: 512 4 KiB entries with the same fields, APM Vol. 3 PSMASH), zaps the
/// 2 MiB GFN range (kvm_zap_gfn_range) and the instruction runs again on a 4 KiB entry.</item>
/// <item>RMPADJUST (APM Vol. 3) by the guest at its VMPL sets a numerically higher VMPL's permission mask and, at
/// VMPL0, the VMSA bit. KVM 6.18 runs every vCPU at VMPL0 (no SVSM support: the VMSA's vmpl field stays 0), so no
/// access is ever checked against VMPL1–3 masks: they are recorded here and read back with <see cref="Owner"/>.</item>
/// </list>
/// The ASID of a guest_memfd page always matches its VM's: a guest_memfd is bound only to the VM that created it
/// (kvm_gmem_bind: "if (file->f_op != &amp;kvm_gmem_fops || kvm != gmem->kvm) goto err"), so the ASID check cannot fail.
/// Callers hold the kernel lock.
/// </summary>
internal static class SnpRmpVmpl
{
    /// <summary>APM Vol. 2 15.36.7 permission mask bits: read, write, execute-user, execute-supervisor, supervisor shadow stack.</summary>
    public const byte PermRead = 1, PermWrite = 2, PermExecUser = 4, PermExecSupervisor = 8, PermSupervisorShadowStack = 0x10;

    /// <summary>Every defined permission (bits 7:5 are reserved).</summary>
    public const byte PermAll = 0x1F;

    /// <summary>RMPADJUST's EAX codes (APM Vol. 3 RMPADJUST; the same numbers as PVALIDATE's).</summary>
    public const int RmpadjustSuccess = 0, RmpadjustFailInput = 1, RmpadjustFailPermission = 2, RmpadjustFailSizeMismatch = 6;

    /// <summary>Stored per range: the GFN minus the page index (constant over a contiguous binding) instead of the GPA.</summary>
    private readonly record struct Fields(int Asid, long GfnDelta, byte Vmpl1, byte Vmpl2, byte Vmpl3);

    private static readonly ConditionalWeakTable<GmemInode, RangeMap<Fields>> s_fields = [];
    private static readonly ConditionalWeakTable<Kvm, StrongBox<int>> s_asids = [];

    /// <summary>The ASID/GPA/VMPL fields of page <paramref name="index"/> of <paramref name="inode"/>.</summary>
    public static RmpOwner Owner(GmemInode inode, ulong index)
    {
        if (!s_fields.TryGetValue(inode, out var map)) return default;
        var f = map.Get(index);
        if (f == default) return default;
        return new RmpOwner(f.Asid, (ulong)((long)index + f.GfnDelta) << EmulatorConfig.PageShift, f.Vmpl1, f.Vmpl2, f.Vmpl3);
    }

    /// <summary>The fields of the page bound at <paramref name="gfn"/> through its gmem memslot, or null without one.</summary>
    public static RmpOwner? OwnerAtGfn(Kvm kvm, ulong gfn)
    {
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn);
        if (slot?.GmemFile is not GmemFile f) return null;
        return Owner(f.GmemInode, gfn - slot.BaseGfn + slot.GmemPgoff);
    }

    /// <summary>
    /// The VM's SNP ASID. sev_asid_new: the lowest free ASID of the SEV-ES/SNP range, which starts at 1
    /// (find_next_zero_bit(sev_asid_bitmap, max_asid + 1, min_asid)); freed at VM destruction. Here: the lowest not
    /// held by another live VM of the same kernel.
    /// </summary>
    public static int Asid(Kvm kvm)
    {
        if (s_asids.TryGetValue(kvm, out var box)) return box.Value;
        var used = new HashSet<int>();
        foreach (var other in kvm.Kernel.InvariantView.Vms)
            if (other != kvm && s_asids.TryGetValue(other, out var b)) used.Add(b.Value);
        int asid = 1;
        while (used.Contains(asid)) asid++;
        s_asids.Add(kvm, new StrongBox<int>(asid));
        return asid;
    }

    /// <summary>
    /// rmp_make_private for pages [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="inode"/>, the
    /// first bound at <paramref name="startGfn"/>: this VM's ASID, the pages' GPAs, VMPL1–3 masks 0 (RMPUPDATE).
    /// </summary>
    public static void MadePrivate(Kvm kvm, GmemInode inode, ulong start, ulong end, ulong startGfn) =>
        Map(inode).Set(start, end, new Fields(Asid(kvm), (long)startGfn - (long)start, 0, 0, 0));

    /// <summary>rmp_make_shared (sev_gmem_invalidate): the entries of [<paramref name="start"/>, <paramref name="end"/>) go back to zero.</summary>
    public static void MadeShared(GmemInode inode, ulong start, ulong end)
    {
        if (s_fields.TryGetValue(inode, out var map) && start < end) map.Set(start, end, default);
    }

    /// <summary>
    /// The RMP's nested-page-fault check of a private access to <paramref name="gfn"/> after KVM's fault-in (APM Vol. 2,
    /// 15.36.10: the entry must be assigned to the guest's ASID at this GPA): true when it fails — an assigned entry
    /// made private for another GPA or ASID. Only for an SNP guest.
    /// </summary>
    public static bool NestedFault(Kvm kvm, KvmMemorySlot slot, ulong gfn)
    {
        if (!SnpRmp.IsSnpGuest(kvm) || slot.GmemFile is not GmemFile file) return false;
        var entry = SnpRmp.Prepare(kvm, slot, gfn);
        if (!entry.Assigned) return false;
        var owner = Owner(file.GmemInode, gfn - slot.BaseGfn + slot.GmemPgoff);
        return owner.Asid != Asid(kvm) || owner.Gpa != gfn << EmulatorConfig.PageShift;
    }

    /// <summary>
    /// sev_handle_rmp_fault for a 4 KiB PVALIDATE / RMPADJUST on page <paramref name="index"/>: when its entry is a
    /// 2 MiB one, snp_rmptable_psmash splits it (APM Vol. 3 PSMASH: 512 4 KiB entries, each keeping the 2 MiB entry's
    /// assigned / validated / ASID / VMPL fields and its own GPA) and returns true (the caller zaps the guest's mappings,
    /// kvm_zap_gfn_range). False when the entry is already 4 KiB.
    /// </summary>
    public static bool PsmashFor4K(GmemInode inode, ulong index)
    {
        var entry = SnpRmp.Get(inode, index);
        if (!entry.Large) return false;
        ulong start = index - index % SnpRmp.PagesPer2M;
        SnpRmp.SetRange(inode, start, start + SnpRmp.PagesPer2M, entry with { Large = false });
        return true;
    }

    /// <summary>
    /// RMPADJUST's update of the entry of page <paramref name="index"/> (APM Vol. 3 RMPADJUST), executed at VMPL
    /// <paramref name="currentVmpl"/>; <paramref name="large"/>: the 2 MiB form. The caller has checked the operands
    /// (FAIL_INPUT) and that <paramref name="targetVmpl"/> is numerically higher than the current VMPL and has PSMASHed
    /// a 2 MiB entry for the 4 KiB form (<see cref="PsmashFor4K"/>). Returns the EAX code:
    /// <list type="bullet">
    /// <item>a 2 MiB request on a 4 KiB entry → FAIL_SIZEMISMATCH;</item>
    /// <item>a mask granting what the current VMPL lacks → FAIL_PERMISSION;</item>
    /// <item>else the target VMPL's mask becomes <paramref name="perms"/> (every page of a 2 MiB entry) and, at VMPL0
    /// only, the VMSA bit becomes <paramref name="vmsa"/> ("Ignored when the current VMPL != 0").</item>
    /// </list>
    /// </summary>
    public static int Rmpadjust(GmemInode inode, ulong index, bool large, int currentVmpl, int targetVmpl, byte perms, bool vmsa)
    {
        var entry = SnpRmp.Get(inode, index);
        if (large && !entry.Large) return RmpadjustFailSizeMismatch;
        var owner = Owner(inode, index);
        if ((perms & ~owner.Permissions(currentVmpl)) != 0) return RmpadjustFailPermission;
        ulong start = large ? index - index % SnpRmp.PagesPer2M : index;
        ulong end = large ? start + SnpRmp.PagesPer2M : index + 1;
        var map = Map(inode);
        foreach (var (s, e, f) in map.Segments(start, end).ToArray())
        {
            var updated = targetVmpl switch
            {
                1 => f with { Vmpl1 = perms },
                2 => f with { Vmpl2 = perms },
                _ => f with { Vmpl3 = perms },
            };
            map.Set(s, e, updated);
        }
        if (currentVmpl == 0 && entry.Vmsa != vmsa) SnpRmp.SetRange(inode, start, end, entry with { Vmsa = vmsa });
        return RmpadjustSuccess;
    }

    private static RangeMap<Fields> Map(GmemInode inode) => s_fields.GetValue(inode, _ => new RangeMap<Fields>(default));
}
