// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SEV-SNP page validation in the guest: PVALIDATE (F2 0F 01 FF; AMD APM Vol. 3, PVALIDATE) and the #VC an access to
/// an unvalidated private page raises (AMD APM Vol. 2, 15.36 "Page Validation"). The RMP is
/// <see cref="SnpRmp"/>. PVALIDATE: rAX = the page's guest-virtual address (AX/EAX/RAX by address size), ECX = page
/// size (0 = 4 KiB, 1 = 2 MiB), EDX[0] = 1 validate / 0 rescind; EAX = the return code (0 success,
/// 1 PVALIDATE_FAIL_INPUT, 6 PVALIDATE_FAIL_SIZEMISMATCH: arch/x86/include/asm/sev.h), CF = 1 when the Validated bit
/// already had the requested value and nothing changed (Linux maps it to the software code PVALIDATE_FAIL_NOUPDATE,
/// 255, in pvalidate()). The other arithmetic flags are left as they were (not modelled).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>
    /// The #VC error code of a private access to an assigned page whose Validated bit is clear (AMD APM Vol. 2, 15.36
    /// "Page Validation": #VC with error code 0x404).
    /// </summary>
    private const int VcPageNotValidated = 0x404;

    /// <summary>PVALIDATE; false for anything else.</summary>
    private bool TryPvalidate(in Instruction i, ref ulong f)
    {
        if (i.Mnemonic != Mnemonic.Pvalidate) return false;
        Pvalidate(i, ref f);
        return true;
    }

    private void Pvalidate(in Instruction i, ref ulong f)
    {
        // APM Vol. 3 PVALIDATE, exceptions: #UD when the processor has no SEV-SNP (CPUID Fn8000_001F_EAX[SNP] = 0 —
        // here: the emulated host offers no SNP VM type, sev_snp_enabled); #GP(0) outside an SNP guest or at CPL > 0.
        if (!_kvm.Kernel.Config.VmTypes.Contains(KvmConstants.KVM_X86_SNP_VM)) throw new GuestFault(UD_VECTOR);
        if (!SnpRmp.IsSnpGuest(_kvm)) throw new GuestFault(GP_VECTOR);
        RequireCpl0();
        ulong va = i.Code switch
        {
            Code.Pvalidatew => (ushort)_cpu.Gpr[X86Cpu.RAX],
            Code.Pvalidated => (uint)_cpu.Gpr[X86Cpu.RAX],
            _ => _cpu.Gpr[X86Cpu.RAX],
        };
        uint size = (uint)_cpu.Gpr[X86Cpu.RCX];
        bool validate = (_cpu.Gpr[X86Cpu.RDX] & 1) != 0;
        f &= ~RFLAGS_CF;
        // Bad operands → PVALIDATE_FAIL_INPUT: a page size other than 0/1, an address not aligned to the page size.
        ulong align = size == 1 ? 2UL << 20 : (ulong)EmulatorConfig.PageSize;
        if (size > 1 || (va & (align - 1)) != 0)
        {
            WriteReg(Register.EAX, SnpRmp.PvalidateFailInput);
            return;
        }
        var (rc, noUpdate) = OnSnpPrivatePage(va, size == 1, (inode, index) =>
        {
            var result = SnpRmp.Pvalidate(inode, index, size == 1, validate);
            // A rescinded page must fault again on its next private access: the vCPUs' cached mappings go.
            if (result.Rc == SnpRmp.PvalidateSuccess && !result.NoUpdate && !validate) _kvm.InvalidateGuestMappings();
            return result;
        });
        WriteReg(Register.EAX, (ulong)rc);
        if (noUpdate) f |= RFLAGS_CF;
    }

    /// <summary>
    /// <paramref name="update"/> on the RMP entry of the page PVALIDATE or RMPADJUST names at <paramref name="va"/>, under
    /// the kernel's lock: the guest's translation (#PF as for a read); the RMP entry is the one of the private page behind
    /// it. An unmapped page is the #NPF KVM answers by faulting the private GPA in (sev_gmem_prepare: assigned, not
    /// validated) — or, for a GPA that is shared now, by the private/shared mismatch's KVM_EXIT_MEMORY_FAULT (an implicit
    /// conversion request) — after which the instruction runs again; an entry of another GPA is the RMP #NPF KVM leaves
    /// alone (the instruction runs again). A 4 KiB access (<paramref name="large"/> false) on a 2 MiB entry: #NPF
    /// (PFERR_GUEST_SIZEM) → sev_handle_rmp_fault: PSMASH and kvm_zap_gfn_range, then the instruction runs again on the
    /// 4 KiB entry (SnpRmpVmpl.PsmashFor4K).
    /// </summary>
    private T OnSnpPrivatePage<T>(ulong va, bool large, Func<GmemInode, ulong, T> update)
    {
        ulong gpa = Translate(va, PageAccess.Read) & ~_mem.EncryptionMask;
        var r = _mem.SnpMapPrivate(gpa);
        if (r.Status != GpaStatus.Done) throw new MemoryFaultStop(r.Status == GpaStatus.Mmio ? GpaResult.Fault(Vfs.Err.EFAULT, gpa, true) : r);
        lock (_kvm.Kernel.SyncRoot)
        {
            ulong gfn = gpa >> EmulatorConfig.PageShift;
            var slot = GuestMemoryPath.GfnToMemslot(_kvm, 0, gfn);
            if (slot?.GmemFile is not GmemFile file) throw new MemoryFaultStop(GpaResult.Fault(Vfs.Err.EFAULT, gpa, true));
            ulong index = gfn - slot.BaseGfn + slot.GmemPgoff;
            if (!large && SnpRmpVmpl.PsmashFor4K(file.GmemInode, index)) _kvm.InvalidateGuestMappings();
            return update(file.GmemInode, index);
        }
    }

    /// <summary>
    /// An SNP guest's private access reached an assigned but unvalidated page (<see cref="GpaResult.SnpUnvalidated"/>):
    /// #VC with error code 0x404 (fault-like: RIP stays on the instruction).
    /// </summary>
    private StepOutcome SnpUnvalidatedAccess() => DeliverException(QueueGuestFault(new GuestFault(VcVector, VcPageNotValidated)));
}
