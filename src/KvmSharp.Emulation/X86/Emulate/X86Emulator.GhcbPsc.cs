// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// An SNP guest's page-state change through the GHCB (SVM_VMGEXIT_PSC; arch/x86/kvm/svm/sev.c snp_begin_psc,
/// snp_complete_one_psc, __snp_complete_one_psc, snp_complete_psc). sw_scratch names a struct psc_buffer of
/// sw_exit_info_2 bytes (setup_vmgexit_scratch): a struct psc_hdr {u16 cur_entry; u16 end_entry; u32 reserved} and
/// struct psc_entry u64s (cur_page 11:0, gfn 51:12, operation 55:52, pagesize 56; sev-common.h). KVM merges adjacent
/// entries of one operation into one KVM_EXIT_HYPERCALL(KVM_HC_MAP_GPA_RANGE) per range, marks them done
/// (cur_page = 1 or 512, hdr.cur_entry) when userspace answers 0, and ends with sw_exit_info_1 = 0 ("no action") and
/// sw_exit_info_2 = the PSC return code (0, VMGEXIT_PSC_ERROR_*). The buffer is read and written in place (KVM copies
/// a buffer outside the GHCB and writes it back when the vCPU enters again: the same bytes in the end).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>arch/x86/include/asm/sev-common.h: VMGEXIT_PSC_MAX_COUNT and the VMGEXIT_PSC_ERROR_* codes.</summary>
    private const int VmgexitPscMaxCount = 253;
    private const ulong VmgexitPscErrorGeneric = 0x100UL << 32, VmgexitPscErrorInvalidHdr = (1UL << 32) | 1;
    private const ulong VmgexitPscErrorInvalidEntry = (1UL << 32) | 2;

    /// <summary>GHCB_SCRATCH_AREA_LIMIT: 16 pages for a scratch area outside the GHCB.</summary>
    private const ulong GhcbScratchAreaLimit = 16UL * 4096;

    private ulong _pscBuffer;
    private int _pscIdx, _pscInflight;

    /// <summary>The SVM_VMGEXIT_PSC case: setup_vmgexit_scratch(svm, true, exit_info_2), then snp_begin_psc.</summary>
    private bool BeginGhcbPsc(ulong length)
    {
        if (!SetupScratch(length, out long errno))
        {
            if (errno == 0) return false; // svm_vmgexit_bad_input(GHCB_ERR_INVALID_SCRATCH_AREA): resume the guest
            _exit = new StepOutcome(true, errno);
            _vmgexitCompletion = VmgexitCompletion.GhcbUnmap;
            return true;
        }
        _pscBuffer = _ghcbScratch;
        if (!BeginPsc()) return false;
        return ExitWithGhcbMapped(VmgexitCompletion.GhcbPsc);
    }

    /// <summary>
    /// setup_vmgexit_scratch: no scratch GPA, or one that wraps, or one in the GHCB's page that leaves the shared
    /// buffer [0x800, 0xff0) → GHCB_ERR_INVALID_SCRATCH_AREA (false, errno 0); outside the GHCB more than 16 pages is
    /// the same, and an unreadable area is -EFAULT.
    /// </summary>
    private bool SetupScratch(ulong length, out long errno)
    {
        errno = 0;
        ulong begin = _ghcbScratch, end = begin + length;
        ulong ghcb = _ghcbGpa!.Value;
        bool bad = begin == 0 || end < begin;
        if (!bad && (begin & ~0xfffUL) == ghcb)
            bad = begin < ghcb + GhcbSharedBuffer || end > ghcb + GhcbReserved0xff0;
        else if (!bad && length > GhcbScratchAreaLimit)
            bad = true;
        else if (!bad)
        {
            Span<byte> one = stackalloc byte[1];
            for (ulong page = begin & ~0xfffUL; page < end; page += 0x1000)
            {
                if (!HostGuestAccess(Math.Max(page, begin), one, write: false))
                {
                    errno = Vfs.Err.EFAULT; // "kvm_read_guest for scratch area failed"
                    return false;
                }
            }
        }
        if (bad) SetReturnCode(GhcbHvRespMalformedInput, GhcbErrInvalidScratchArea);
        return !bad;
    }

    /// <summary>
    /// snp_begin_psc: false when the request is finished (the GHCB has its answer), true when a KVM_EXIT_HYPERCALL for
    /// the next range is set up.
    /// </summary>
    private bool BeginPsc()
    {
        if ((_kvm.HypercallExitEnabled & (1UL << (int)KvmPara.KVM_HC_MAP_GPA_RANGE)) == 0) return CompletePsc(VmgexitPscErrorGeneric);
        while (true)
        {
            int idxStart = (int)PscRead(0, 2), idxEnd = (int)PscRead(2, 2);
            if (idxEnd >= VmgexitPscMaxCount) return CompletePsc(VmgexitPscErrorInvalidHdr);
            int idx;
            ulong start = 0, gfn = 0;
            int npages = 0;
            bool huge = false;
            // "Find the start of the next range which needs processing." (hdr->cur_entry advances past done entries).
            for (idx = idxStart; idx <= idxEnd; idx++)
            {
                start = PscEntry(idx);
                gfn = (start >> 12) & ((1UL << 40) - 1);
                huge = ((start >> 56) & 1) != 0;
                npages = huge ? 512 : 1;
                int curPage = (int)(start & 0xfff);
                if (curPage > npages || (gfn & (ulong)(npages - 1)) != 0) return CompletePsc(VmgexitPscErrorInvalidEntry);
                if (curPage != 0)
                {
                    // A partly done 2M range goes on at 4K.
                    npages -= curPage;
                    gfn += (ulong)curPage;
                    huge = false;
                }
                if (npages != 0) break;
                PscWrite(0, 2, PscRead(0, 2) + 1);
            }
            if (idx > idxEnd) return CompletePsc(0); // "Nothing more to process."
            _pscIdx = idx;
            _pscInflight = 1;
            ulong startGfn = (start >> 12) & ((1UL << 40) - 1);
            ulong op = (start >> 52) & 0xf;
            // Adjacent entries of the same operation and size join the range (upstream compares with the
            // entry's own GFN plus the pages counted so far).
            while (++idx <= idxEnd)
            {
                ulong e = PscEntry(idx);
                if (((e >> 52) & 0xf) != op || ((e >> 12) & ((1UL << 40) - 1)) != startGfn + (ulong)npages ||
                    (e & 0xfff) != 0 || (((e >> 56) & 1) != 0) != huge)
                    break;
                _pscInflight++;
                npages += huge ? 512 : 1;
            }
            if (op is 1 or 2)
            {
                ulong attrs = (op == 1 ? KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED : KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED) |
                    (((start >> 56) & 1) != 0 ? KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_2M : KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_4K);
                _run.SetHypercallExit(KvmPara.KVM_HC_MAP_GPA_RANGE, gfn << 12, (ulong)npages, attrs, _run.HypercallFlags);
                return true;
            }
            // Other operations (SMASH/UNSMASH …) count as done without an exit: "goto next_range".
            CompleteOnePsc();
        }
    }

    /// <summary>
    /// snp_complete_one_psc on the next KVM_RUN: userspace's non-zero hypercall.ret ends the request with
    /// VMGEXIT_PSC_ERROR_GENERIC; else the range is marked done and the next one begins. True when it exits again.
    /// </summary>
    private bool CompleteGhcbPsc()
    {
        if (_run.HypercallRet != 0) return CompletePsc(VmgexitPscErrorGeneric);
        CompleteOnePsc();
        if (!BeginPsc()) return false;
        _vmgexitCompletion = VmgexitCompletion.GhcbPsc;
        return true;
    }

    /// <summary>__snp_complete_one_psc: cur_page = 512 or 1 for every in-flight entry; hdr.cur_entry = the next one.</summary>
    private void CompleteOnePsc()
    {
        int idx = _pscIdx;
        for (; _pscInflight > 0; _pscInflight--, idx++)
        {
            ulong e = PscEntry(idx);
            ulong done = ((e >> 56) & 1) != 0 ? 512UL : 1UL;
            PscWrite(8 + 8 * idx, 8, (e & ~0xfffUL) | done);
        }
        PscWrite(0, 2, (ulong)idx);
    }

    /// <summary>snp_complete_psc → svm_vmgexit_no_action(svm, psc_ret); false (the request is finished).</summary>
    private bool CompletePsc(ulong pscRet)
    {
        _pscInflight = 0;
        _pscIdx = 0;
        SetReturnCode(GhcbHvRespNoAction, pscRet);
        return false;
    }

    private ulong PscEntry(int idx) => PscRead(8 + 8 * idx, 8);

    private ulong PscRead(int offset, int size)
    {
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        HostGuestAccess(_pscBuffer + (ulong)offset, b[..size], write: false);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private void PscWrite(int offset, int size, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        HostGuestAccess(_pscBuffer + (ulong)offset, b[..size], write: true);
    }
}
