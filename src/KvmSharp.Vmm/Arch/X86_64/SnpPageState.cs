// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The page-state change of an SEV-SNP micro-VM's runtime (<see cref="SnpRuntime"/>): guest code makes a 4 KiB-aligned
/// range of its own memory shared or private again with a <c>call</c> to <see cref="Layout.SnpMapGpaRange"/> — the SNP
/// form of "Private memory"'s KVM_HC_MAP_GPA_RANGE, as a Linux SNP guest does it (arch/x86/coco/sev/core.c
/// set_pages_state, __set_pages_state, vmgexit_psc; amd_enc_status_change_prepare/finish flip the C-bit of the page's
/// PTE around it). SysV calling convention: RDI = guest-physical address, RSI = 4 KiB pages, RDX = attributes (bit 4
/// set = private, clear = shared; bits 3:0 a page-size hint, ignored; bits 63:5 reserved); RAX = 0 or -KVM_EINVAL,
/// -KVM_EFAULT, -KVM_EPERM exactly as the hypercall answers (GUEST-ABI.md). RBX, RBP, R12–R15 are kept.
/// <list type="bullet">
/// <item>Checks first, in the order KVM and the VMM check the hypercall (x86.c ____kvm_emulate_hypercall, then
/// Confidential/MemoryConversion): unaligned address, zero pages or a range that wraps, reserved attribute bits →
/// EINVAL; a range past the end of guest memory (the private, measured size at <see cref="SnpDispatcher.EntryLimit"/>)
/// → EFAULT; a range below <see cref="Layout.ImageBase"/> (the host's pages and the GHCB stay shared) → EPERM. Only
/// the first 2 MiB have 4 KiB page-table entries whose C-bit can be flipped; above <see cref="Layout.LargePageSize"/>
/// memory is mapped with 2 MiB pages (splitting them would need page-table pages the layout does not have), so a range
/// that reaches past it must lie wholly above it in whole 2 MiB pages (2 MiB-aligned address and end), else EINVAL. A
/// refused request changes nothing.</item>
/// <item>Then, up to <see cref="MaxEntries"/> units at a time (VMGEXIT_PSC_MAX_ENTRY: the entries that fit in the
/// GHCB's shared buffer), a struct snp_psc_desc in the GHCB's shared buffer (hdr.cur_entry 0, hdr.end_entry n − 1,
/// one entry per 4 KiB page — or per 2 MiB page, pagesize 1, above 2 MiB — with operation 1 private / 2 shared),
/// sw_scratch = its GPA, sw_exit_code =
/// SVM_VMGEXIT_PSC, and VMGEXIT until hdr.cur_entry passes hdr.end_entry (the hypervisor may stop early). A VMGEXIT
/// error (sw_exit_info_1[31:0] ≠ 0), a PSC error (sw_exit_info_2 ≠ 0: the VMM refused KVM_HC_MAP_GPA_RANGE), a set
/// reserved header field, a changed end_entry or a cur_entry that does not advance → EINVAL. The pages of batches done
/// before a failing one stay converted, with their PTEs matching.</item>
/// <item>After each batch the C-bit of its pages' PTEs (<see cref="Layout.Pt"/>; above 2 MiB their PDEs in
/// <see cref="Layout.Pd"/>) is set (private) or cleared (shared):
/// the C-bit mask is the private, measured u64 at <see cref="CbitMask"/>. Last, CR3 is reloaded (the TLB flush).</item>
/// <item>PVALIDATE, as Linux's set_pages_state / pval_pages: before a batch goes shared its pages' validation is
/// rescinded (EDX = 0) while still mapped private; after a batch went private (PSC, then C-bits, then a TLB flush) its
/// pages are validated (EDX = 1) — else the guest's next private access raises #VC 0x404 (page not validated). 2 MiB
/// units try the 2 MiB form first and fall back to 512 4 KiB ones on PVALIDATE_FAIL_SIZEMISMATCH. A PVALIDATE failure
/// is a termination request (SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE); a refused PSC of a shared batch validates its
/// unconverted pages again. Every other private page of the micro-VM is launch-updated (<see cref="Confidential.SnpBoot"/>),
/// which leaves it validated by the firmware, so nothing has to be accepted at boot.</item>
/// </list>
/// Not modelled: the cache flush before a conversion.
/// </summary>
public static class SnpPageState
{
    /// <summary>The guest address of the C-bit mask the routine sets and clears in PTEs (a private u64 of the trampoline page, below <see cref="SnpDispatcher.EntryLimit"/>).</summary>
    public const ulong CbitMask = SnpDispatcher.EntryLimit - sizeof(ulong);

    /// <summary>SVM_VMGEXIT_PSC (arch/x86/include/uapi/asm/svm.h).</summary>
    public const uint ExitPsc = 0x8000_0010;

    /// <summary>VMGEXIT_PSC_MAX_ENTRY (sev-common.h): the entries of one request in the GHCB's shared buffer.</summary>
    public const int MaxEntries = 253;

    /// <summary>SNP_PAGE_STATE_PRIVATE and SNP_PAGE_STATE_SHARED (sev-common.h), the operation in entry bits 55:52.</summary>
    public const ulong OperationPrivate = 1, OperationShared = 2;

    /// <summary>PVALIDATE_FAIL_SIZEMISMATCH (arch/x86/include/asm/sev.h): the RMP entry's page size is not the one asked.</summary>
    public const int PvalidateFailSizeMismatch = 6;

    /// <summary>Offsets in the GHCB: sw_scratch (struct ghcb) and the shared buffer, where the PSC descriptor goes.</summary>
    public const int GhcbSwScratch = 0x3A8, GhcbSharedBuffer = 0x800;

    /// <summary>Emits the routine at <paramref name="entry"/>.</summary>
    internal static void Assemble(Assembler a, ref Label entry)
    {
        const int Header = GhcbSharedBuffer, Entries = GhcbSharedBuffer + 8;
        Label done = a.CreateLabel(), shared = a.CreateLabel(), batch = a.CreateLabel(), fill = a.CreateLabel();
        Label ask = a.CreateLabel(), pte = a.CreateLabel(), small = a.CreateLabel();
        Label pval = a.CreateLabel(), pscFail = a.CreateLabel(), rescinded = a.CreateLabel(), advance = a.CreateLabel();
        AssemblerRegister64[] kept = [rbx, r12, r13, r14, r15];

        a.Label(ref entry);
        foreach (var r in kept) a.push(r);
        // RDI = gpa, RSI = pages, RDX = attributes.
        a.mov(rax, -KvmPara.KVM_EINVAL);
        a.test(edi, 0xFFF);
        a.jnz(done);
        a.test(rsi, rsi);
        a.jz(done);
        a.mov(rcx, rdx);
        a.shr(rcx, 5);
        a.jnz(done);
        a.mov(rcx, rsi);
        a.shr(rcx, 52);
        a.jnz(done);
        a.mov(r12, rsi);
        a.shl(r12, 12);
        a.add(r12, rdi);                  // R12 = end
        a.jc(done);
        a.mov(rax, -KvmPara.KVM_EFAULT);
        a.cmp(r12, __qword_ptr[SnpDispatcher.EntryLimit]);
        a.ja(done);
        a.mov(rax, -KvmPara.KVM_EPERM);
        a.cmp(rdi, (int)Layout.ImageBase);
        a.jb(done);

        // R13 = operation << 52 (| pagesize << 56), R10 = the C-bit to set (0 for shared), R11 = ~C-bit; R14 = next
        // GPA, R15 = units left; ESI = log2(unit), RDI = the table of the units' entries.
        a.mov(r11, __qword_ptr[CbitMask]);
        a.xor(r10d, r10d);
        a.mov(r13d, (int)OperationShared);
        a.test(edx, (int)KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED);
        a.jz(shared);
        a.mov(r13d, (int)OperationPrivate);
        a.mov(r10, r11);
        a.Label(ref shared);
        a.not(r11);
        a.shl(r13, 52);
        a.mov(r14, rdi);
        a.mov(r15, rsi);
        a.mov(esi, 12);
        a.mov(edi, (uint)Layout.Pt);
        a.mov(rax, -KvmPara.KVM_EINVAL);
        a.cmp(r12, (int)Layout.LargePageSize);
        a.jbe(small);
        // Above the first 2 MiB: whole 2 MiB pages only (their PD entries), one 2 MiB PSC entry each.
        a.cmp(r14, (int)Layout.LargePageSize);
        a.jb(done);
        a.test(r14d, (int)(Layout.LargePageSize - 1));
        a.jnz(done);
        a.test(r12d, (int)(Layout.LargePageSize - 1));
        a.jnz(done);
        a.shr(r15, 9);
        a.mov(esi, 21);
        a.mov(edi, (uint)Layout.Pd);
        a.bts(r13, 56);
        a.Label(ref small);
        a.mov(ebx, (uint)Layout.Ghcb);

        // A batch of R12 = min(pages left, MaxEntries) entries: hdr.cur_entry = 0, end_entry = n - 1, reserved = 0.
        a.Label(ref batch);
        a.mov(r12d, MaxEntries);
        a.cmp(r15, r12);
        a.cmovb(r12, r15);
        // Going shared: rescind the batch's validation first, while its pages are still mapped private (Linux
        // __set_pages_state: "if (op == SNP_PAGE_STATE_SHARED) pvalidate_pages(data)" before vmgexit_psc).
        a.test(r10, r10);
        a.jnz(rescinded);
        a.xor(edx, edx);
        a.call(pval);
        a.Label(ref rescinded);
        a.lea(eax, __[r12 - 1]);
        a.shl(eax, 16);
        a.mov(__qword_ptr[rbx + Header], rax);
        a.mov(ecx, esi);
        a.mov(edx, 1);
        a.shl(rdx, cl);                   // RDX = the unit's size
        a.xor(ecx, ecx);
        a.mov(rax, r14);
        a.or(rax, r13);                   // gfn << 12 | operation << 52 | pagesize << 56; cur_page 0
        a.Label(ref fill);
        a.mov(__qword_ptr[rbx + rcx * 8 + Entries], rax);
        a.add(rax, rdx);
        a.inc(ecx);
        a.cmp(rcx, r12);
        a.jb(fill);
        a.xor(r9d, r9d);                  // the last cur_entry seen

        // VMGEXIT(SVM_VMGEXIT_PSC) until cur_entry > end_entry (vmgexit_psc).
        a.Label(ref ask);
        a.xor(eax, eax);
        a.mov(__qword_ptr[rbx + SnpRuntime.GhcbValidBitmap], rax);
        a.mov(__qword_ptr[rbx + SnpRuntime.GhcbValidBitmap + 8], rax);
        a.mov(__word_ptr[rbx + SnpRuntime.GhcbProtocolVersion], SnpRuntime.ProtocolVersion);
        a.mov(__dword_ptr[rbx + SnpRuntime.GhcbUsage], 0);
        a.mov(__qword_ptr[rbx + SnpRuntime.GhcbSwExitInfo1], rax);
        a.mov(__qword_ptr[rbx + SnpRuntime.GhcbSwExitInfo2], rax);
        a.mov(eax, ExitPsc);              // zero-extended: an imm32 store would sign-extend it
        a.mov(__qword_ptr[rbx + SnpRuntime.GhcbSwExitCode], rax);
        a.lea(rax, __[rbx + Header]);
        a.mov(__qword_ptr[rbx + GhcbSwScratch], rax);
        foreach (int field in new[] { SnpRuntime.GhcbSwExitCode, SnpRuntime.GhcbSwExitInfo1, SnpRuntime.GhcbSwExitInfo2, GhcbSwScratch })
            a.bts(__qword_ptr[rbx + SnpRuntime.GhcbValidBitmap + field / 8 / 64 * 8], (byte)(field / 8 % 64));
        a.mov(ecx, SnpRuntime.GhcbMsr);
        a.mov(eax, (uint)Layout.Ghcb);
        a.xor(edx, edx);
        a.wrmsr();
        a.vmgexit();
        a.mov(rax, -KvmPara.KVM_EINVAL);
        a.cmp(__dword_ptr[rbx + SnpRuntime.GhcbSwExitInfo1], 0);
        a.jne(pscFail);
        a.cmp(__qword_ptr[rbx + SnpRuntime.GhcbSwExitInfo2], 0);
        a.jne(pscFail);
        a.cmp(__dword_ptr[rbx + Header + 4], 0);
        a.jne(pscFail);
        a.movzx(ecx, __word_ptr[rbx + Header]);
        a.movzx(edx, __word_ptr[rbx + Header + 2]);
        a.lea(r8, __[r12 - 1]);
        a.cmp(rdx, r8);
        a.jne(pscFail);
        a.cmp(ecx, r9d);
        a.jbe(pscFail);                   // no progress: a hypervisor that never finishes must not hang the guest
        a.mov(r9d, ecx);
        a.cmp(ecx, edx);
        a.jbe(ask);

        // The batch's PTEs (or PDEs): C-bit set (private) or cleared (shared).
        a.mov(rax, r14);
        a.mov(ecx, esi);
        a.shr(rax, cl);
        a.lea(rcx, __[rdi + rax * 8]);
        a.mov(r8, r12);
        a.Label(ref pte);
        a.mov(rax, __qword_ptr[rcx]);
        a.and(rax, r11);
        a.or(rax, r10);
        a.mov(__qword_ptr[rcx], rax);
        a.add(rcx, 8);
        a.dec(r8);
        a.jnz(pte);
        // Gone private: validate the batch's pages through their new mappings (Linux __set_pages_state:
        // "if (op == SNP_PAGE_STATE_PRIVATE) pvalidate_pages(data)" after vmgexit_psc), after a TLB flush.
        a.test(r10, r10);
        a.jz(advance);
        a.mov(rcx, cr3);
        a.mov(cr3, rcx);
        a.mov(edx, 1);
        a.call(pval);
        a.Label(ref advance);
        a.mov(rax, r12);
        a.mov(ecx, esi);
        a.shl(rax, cl);
        a.add(r14, rax);
        a.sub(r15, r12);
        a.jnz(batch);
        a.xor(eax, eax);

        // The TLB flush (after a failing later batch too: the earlier ones changed PTEs), then RAX to the caller.
        a.Label(ref done);
        a.mov(rcx, cr3);
        a.mov(cr3, rcx);
        for (int i = kept.Length - 1; i >= 0; i--) a.pop(kept[i]);
        a.ret();

        // A refused PSC of a shared batch: the entries from hdr.cur_entry on stay private, so validate them again
        // (their PTEs still have the C-bit); RAX stays -EINVAL.
        a.Label(ref pscFail);
        a.test(r10, r10);
        a.jnz(done);
        a.movzx(ecx, __word_ptr[rbx + Header]);
        a.cmp(rcx, r12);
        a.jae(done);
        a.sub(r12, rcx);
        a.mov(rax, rcx);
        a.mov(ecx, esi);
        a.shl(rax, cl);
        a.add(r14, rax);
        a.mov(edx, 1);
        a.call(pval);
        a.mov(rax, -KvmPara.KVM_EINVAL);
        a.jmp(done);

        AssemblePvalidate(a, ref pval);
    }

    /// <summary>
    /// PVALIDATE of a batch (Linux pval_pages / pvalidate_pages): EDX = 1 validate, 0 rescind; the batch is R12 units
    /// of 1 &lt;&lt; ESI bytes from R14, their PTEs (PDEs) at RDI. Only units whose entry has the C-bit are touched (a
    /// page the guest maps shared has nothing to rescind). A 2 MiB unit is one PVALIDATE with ECX = 1; on
    /// PVALIDATE_FAIL_SIZEMISMATCH (4 KiB RMP entries) its 512 pages are done one by one. Any other failure is
    /// Linux's __pval_terminate: a termination request, reason set 1 code 2 (GHCB_TERM_PVALIDATE). CF = 1 (the page
    /// already had the requested state: a conversion of a range that already had it) is accepted, where Linux's
    /// pvalidate() would answer PVALIDATE_FAIL_NOUPDATE and terminate. Clobbers RAX, RCX, RDX, R8, R9.
    /// </summary>
    private static void AssemblePvalidate(Assembler a, ref Label pval)
    {
        Label unit = a.CreateLabel(), next = a.CreateLabel(), small = a.CreateLabel(), fail = a.CreateLabel();
        AssemblerRegister64[] kept = [rbx, r10, r11, r13, r15];
        a.Label(ref pval);
        foreach (var r in kept) a.push(r);
        a.mov(ecx, esi);
        a.mov(rbx, r14);
        a.shr(rbx, cl);
        a.lea(rbx, __[rdi + rbx * 8]);    // RBX = the first unit's PTE (PDE)
        a.mov(r10, r14);                  // R10 = the unit's address (identity-mapped)
        a.mov(r8, r12);
        a.mov(r9d, edx);
        a.mov(r13, __qword_ptr[CbitMask]);
        a.Label(ref unit);
        a.test(__qword_ptr[rbx], r13);
        a.jz(next);
        a.xor(ecx, ecx);
        a.cmp(esi, 21);
        a.sete(cl);                       // ECX = 1 (2 MiB) for a PDE unit
        a.mov(rax, r10);
        a.mov(edx, r9d);
        a.pvalidate();
        a.test(eax, eax);
        a.jz(next);
        a.cmp(eax, PvalidateFailSizeMismatch);
        a.jne(fail);
        a.test(ecx, ecx);
        a.jz(fail);
        a.mov(r11, r10);
        a.mov(r15d, 512);
        a.Label(ref small);
        a.xor(ecx, ecx);
        a.mov(rax, r11);
        a.mov(edx, r9d);
        a.pvalidate();
        a.test(eax, eax);
        a.jnz(fail);
        a.add(r11, (int)Layout.PageSize);
        a.dec(r15d);
        a.jnz(small);
        a.Label(ref next);
        a.add(rbx, 8);
        a.mov(ecx, esi);
        a.mov(eax, 1);
        a.shl(rax, cl);
        a.add(r10, rax);
        a.dec(r8);
        a.jnz(unit);
        for (int i = kept.Length - 1; i >= 0; i--) a.pop(kept[i]);
        a.ret();
        a.Label(ref fail);
        SnpRuntime.Terminate(a, SnpRuntime.TermSetLinux, SnpRuntime.TermPvalidate);
    }
}
