// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The instruction fetch's common case in one method, with the same result and side effects as
/// <see cref="FetchFull"/>: 64-bit code with paging, all <see cref="MaxInstructionLength"/> bytes in one page, the
/// page's walk remembered and every entry of it read again unchanged (X86Emulator.WalkReuse.cs StillSame), the code
/// page's read view current (X86Emulator.DecodeCache.cs), and the 15 bytes read again from guest memory now equal to
/// the ones the decode cache's instruction at this IP was decoded from. Anything else (another mode, a fetch crossing a
/// page, a walk or view to renew, new bytes) returns false having changed nothing, and the full fetch runs. So
/// self-modifying code, page-table edits with or without INVLPG, CR3/CR0/EFER/CPUID changes and invalidations are seen
/// at the next instruction exactly as before: what is skipped is only the re-computation of values those checks fix.
/// </summary>
internal sealed partial class X86Emulator
{
    // EmulatorConfig.PageSize (Environment.SystemPageSize, fixed for the process) and its shift, read once.
    private static readonly int s_pageSize = EmulatorConfig.PageSize;
    private static readonly int s_pageShift = EmulatorConfig.PageShift;

    /// <summary>WritesOnlyGprs(the instruction <see cref="Fetch"/> returned): X86Emulator.Rollback.cs.</summary>
    private bool _fetchedWritesOnlyGprs;

    /// <summary>
    /// <see cref="FetchFull"/>'s outcome when it would take only cached paths (see the type's summary); false, with no
    /// state changed, otherwise.
    /// </summary>
    private bool TryFetchRepeat(out Instruction instr)
    {
        ref var sregs = ref _cpu.Sregs;
        ulong ip = _cpu.Rip;
        ulong offset = ip & (ulong)(s_pageSize - 1);
        // Bitness 64 (X86Cpu.Bitness: EFER.LMA and CS.L) with paging on (TranslateAs → TranslateLong), a canonical RIP
        // (else #GP), and a single chunk in FetchFull (first == MaxInstructionLength).
        if ((sregs.efer & EFER_LMA) == 0 || sregs.cs.l == 0 || (sregs.cr0 & CR0_PG) == 0 || !IsCanonical(ip)
            || offset > (ulong)(s_pageSize - MaxInstructionLength) || _decoded is not { } decoded || _fetchWalks is not { } walks)
        {
            instr = default;
            return false;
        }
        // Translate: the CPL 3 user bit (X86Cpu.Cpl), the C-bit, the remembered walk when still the same.
        var access = (sregs.cr0 & CR0_PE) != 0 && (sregs.ss.dpl & 3) == 3 ? PageAccess.Fetch | PageAccess.User : PageAccess.Fetch;
        ulong cbit = _mem.EncryptionMask;
        if (RememberedStillSame(walks, ip, access, cbit) is not { } walk)
        {
            instr = default;
            return false;
        }
        ulong gpa = walk.GpaPage | (ip & 0xfff) | cbit; // WithFetchCbit
        // ReadCode through the kept code-page view (GuestPhysicalMemory.TryReadThrough's test), then TryDecoded.
        ref readonly var view = ref _codeView;
        if (view.Gfn != gpa >> s_pageShift || !_mem.IsCurrent(view))
        {
            instr = default;
            return false;
        }
        var bytes = view.Span(gpa & (ulong)(s_pageSize - 1), MaxInstructionLength);
        ulong bytes0 = BinaryPrimitives.ReadUInt64LittleEndian(bytes), bytes7 = BinaryPrimitives.ReadUInt64LittleEndian(bytes[7..]);
        ref var d = ref decoded[(int)(ip & (DecodeCacheEntries - 1))];
        if (d.Bitness != 64 || d.Ip != ip || d.Bytes0 != bytes0 || d.Bytes7 != bytes7)
        {
            instr = default;
            return false;
        }
        // What FetchFull leaves: TranslateAs's last access, the fetched bytes, the instruction's length.
        _lastLinear = ip;
        _lastAccess = access;
        BinaryPrimitives.WriteUInt64LittleEndian(_fetched.AsSpan(0, 8), bytes0);
        BinaryPrimitives.WriteUInt64LittleEndian(_fetched.AsSpan(7, 8), bytes7);
        _fetchedLength = d.Instruction.Length;
        _fetchedWritesOnlyGprs = d.WritesOnlyGprs;
        instr = d.Instruction;
        return true;
    }
}
