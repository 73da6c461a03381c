// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The session's host mappings: mmap(2) of guest_memfds and vCPU run pages, munmap(2) and madvise(2) of (parts of)
/// them, and host accesses through them (<see cref="Touch"/>) only where the emulator's fault verdict allows. The
/// session tracks every mapping it still owns so it never unmaps a range twice.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>A host mapping this session made and still owns: [Start, Start+Length), from file <see cref="Kind"/>.</summary>
    private sealed record Mapping(nint Start, ulong Length, FdKind Kind, long Offset, bool Anonymous, int Prot);

    /// <summary>mmap(2) of a guest_memfd or vCPU (now and then anonymous), never MAP_FIXED, MAP_POPULATE or MAP_LOCKED.</summary>
    private string Mmap()
    {
        int fd = PickFd(_rng.Next(4) == 0 ? FdKind.Vcpu : FdKind.Gmem);
        bool anonymous = _rng.Next(20) == 0;
        ulong length = _rng.Next(8) switch
        {
            0 => Interesting(),
            1 => Ps * (ulong)_rng.Next(1, 8) + (ulong)_rng.Next(1, PageSize),
            _ => Ps * (ulong)_rng.Next(1, 33),
        };
        long offset = _rng.Next(6) switch
        {
            0 => (long)Interesting(),
            1 => _rng.Next(1, PageSize),
            < 4 => (long)(Ps * (ulong)_rng.Next(0, 8)),
            // Around the dirty ring's pages (KVM_DIRTY_LOG_PAGE_OFFSET): kvm_vcpu_mmap's MAP_SHARED-only rule.
            4 when _rng.Next(2) == 0 => (long)(Ps * (ulong)(KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET - 1 + _rng.Next(0, 4))),
            _ => 0,
        };
        int prot = _rng.Next(6) == 0 ? _rng.Next(16) : LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE;
        int flags = _rng.Next(6) switch
        {
            0 => _rng.Next(0x200000),
            1 => LinuxConstants.MAP_PRIVATE,
            2 => 0x03, // MAP_SHARED_VALIDATE
            _ => LinuxConstants.MAP_SHARED,
        };
        if (anonymous) flags |= LinuxConstants.MAP_ANONYMOUS;
        // Anonymous memory is the host's, not the emulator's: keep it plain (MAP_HUGETLB would need huge-page munmaps).
        if ((flags & LinuxConstants.MAP_ANONYMOUS) != 0) flags &= ~(0x40000 | (0x3f << 26));
        // Never MAP_FIXED (it would replace memory of this process), MAP_POPULATE or MAP_LOCKED (real allocations).
        flags &= ~(LinuxConstants.MAP_FIXED | LinuxConstants.MAP_POPULATE | 0x2000 | 0x100000 /* MAP_FIXED_NOREPLACE */);
        if ((flags & LinuxConstants.MAP_ANONYMOUS) != 0 && length > (64UL << 20)) length = Ps;
        string what = string.Create(CultureInfo.InvariantCulture, $"mmap(len=0x{length:X}, prot=0x{prot:X}, flags=0x{flags:X}, {fd}, 0x{offset:X})");
        Begin(what);
        long rc = _kernel.Mmap(0, length, prot, flags, fd < 0 && _rng.Next(2) == 0 ? null : Handle(fd), offset, out nint mapped);
        if (rc == 0)
        {
            ulong aligned = (length + Ps - 1) & ~(Ps - 1);
            _mappings.Add(new Mapping(mapped, aligned, KindOf(fd), offset, (flags & LinuxConstants.MAP_ANONYMOUS) != 0, prot));
        }
        return Record(what, rc);
    }

    /// <summary>munmap(2) of a part of one of the session's mappings, or of a range the kernel rejects before the host sees it.</summary>
    private string Munmap()
    {
        if (_mappings.Count == 0 || _rng.Next(10) == 0)
        {
            // Rejected before the host sees it: unaligned address or zero length.
            nint bad = _rng.Next(2) == 0 ? (nint)(0x1000_0000 + _rng.Next(1, PageSize)) : 0;
            ulong len = bad == 0 ? 0 : (ulong)_rng.Next(0, 3) * Ps;
            Begin($"munmap(0x{bad:X}, 0x{len:X})");
            if (bad == 0)
            {
                // munmap(NULL, 0): length 0 → EINVAL.
                return Record("munmap(0, 0)", _kernel.Munmap(0, 0));
            }
            return Record($"munmap(0x{bad:X}, 0x{len:X})", _kernel.Munmap(bad, len));
        }
        int index = _rng.Next(_mappings.Count);
        var m = _mappings[index];
        ulong pages = m.Length / Ps;
        ulong first = _rng.Next(2) == 0 ? 0 : (ulong)_rng.NextInt64(0, (long)pages);
        ulong count = _rng.Next(2) == 0 ? pages - first : (ulong)_rng.NextInt64(1, (long)(pages - first) + 1);
        nint start = m.Start + (nint)(first * Ps);
        ulong length = count * Ps - (_rng.Next(4) == 0 ? (ulong)_rng.Next(0, PageSize) : 0);
        string what = string.Create(CultureInfo.InvariantCulture, $"munmap(map{index}+0x{first * Ps:X}, 0x{length:X})");
        Begin(what);
        long rc = _kernel.Munmap(start, length);
        if (rc == 0)
        {
            // Keep only what is still ours (never unmap a range twice: the runtime may reuse it).
            _mappings.RemoveAt(index);
            if (first > 0) _mappings.Add(m with { Length = first * Ps });
            ulong endPage = first + count;
            if (endPage < pages) _mappings.Add(m with { Start = m.Start + (nint)(endPage * Ps), Length = (pages - endPage) * Ps, Offset = m.Offset + (long)(endPage * Ps) });
        }
        return Record(what, rc);
    }

    /// <summary>madvise(2) on a part of one of the session's mappings (or an unaligned address), never an advice that harms the host.</summary>
    private string Madvise()
    {
        // Never MADV_HWPOISON/SOFT_OFFLINE (100/101: poisoned pages kill the process), MADV_GUARD_INSTALL (102),
        // MADV_REMOVE or MADV_POPULATE_* (real allocations behind the emulator).
        int[] advice = [0, 1, 2, 4, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 24, 25, 26, 60, 99, 150, 200, -1];
        int a = advice[_rng.Next(advice.Length)];
        if (_mappings.Count == 0 || _rng.Next(10) == 0)
        {
            nint unaligned = (nint)(0x1000_0000 + _rng.Next(1, PageSize));
            string bad = $"madvise(0x{unaligned:X}, 0x1000, {a})";
            Begin(bad);
            return Record(bad, _kernel.Madvise(unaligned, Ps, a));
        }
        int index = _rng.Next(_mappings.Count);
        var m = _mappings[index];
        ulong pages = m.Length / Ps;
        ulong first = (ulong)_rng.NextInt64(0, (long)pages);
        ulong length = (ulong)_rng.NextInt64(1, (long)(pages - first) + 1) * Ps;
        string what = string.Create(CultureInfo.InvariantCulture, $"madvise(map{index}+0x{first * Ps:X}, 0x{length:X}, {a})");
        Begin(what);
        return Record(what, _kernel.Madvise(m.Start + (nint)(first * Ps), length, a));
    }

    /// <summary>A host access through one of this session's mappings, only where the emulator's verdict allows it.</summary>
    private string Touch()
    {
        var candidates = _mappings.Where(m => !m.Anonymous && (m.Kind == FdKind.Gmem || (m.Kind == FdKind.Vcpu && m.Offset == 0))).ToList();
        if (candidates.Count == 0) return Record("touch (no mapping)", 0);
        var m = candidates[_rng.Next(candidates.Count)];
        if (m.Kind == FdKind.Vcpu)
        {
            // kvm_run.immediate_exit of a vCPU's run page (inside its first page, always backed).
            nint at = m.Start + KvmRunLayout.immediate_exit;
            byte v = (byte)_rng.Next(2);
            Begin($"run page immediate_exit = {v}");
            if ((m.Prot & LinuxConstants.PROT_WRITE) != 0 && _kernel.CheckHostAccess(at, 1) is null) Marshal.WriteByte(at, v);
            return Record($"run page immediate_exit = {v}", 0);
        }
        ulong offset = (ulong)_rng.NextInt64(0, (long)m.Length);
        // A run of bytes inside one page (random guest code or data when written).
        int length = (int)Math.Min((ulong)_rng.Next(1, 65), Ps - offset % Ps);
        nint address = m.Start + (nint)offset;
        Begin($"touch 0x{address:X}");
        var verdict = _kernel.CheckHostAccess(address, (ulong)length);
        string what = $"touch map+0x{offset:X} len {length} ({verdict?.ToString() ?? "allowed"})";
        if (verdict is null)
        {
            if (_rng.Next(2) == 0 && (m.Prot & LinuxConstants.PROT_WRITE) != 0)
            {
                byte[] bytes = new byte[length];
                _rng.NextBytes(bytes);
                Marshal.Copy(bytes, 0, address, length);
            }
            else if ((m.Prot & LinuxConstants.PROT_READ) != 0)
            {
                _ = Marshal.ReadByte(address + length - 1);
            }
        }
        return Record(what, 0);
    }
}
