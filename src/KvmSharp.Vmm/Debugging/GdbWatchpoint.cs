// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Debugging;

/// <summary>The access a watchpoint stops on, by gdb's Z packet type (gdb/doc "Packets": Z2, Z3, Z4).</summary>
internal enum GdbWatchKind
{
    /// <summary>Z2: a write (reported as <c>watch:</c>).</summary>
    Write = 2,

    /// <summary>Z3: a read (<c>rwatch:</c>).</summary>
    Read = 3,

    /// <summary>Z4: a read or a write (<c>awatch:</c>).</summary>
    Access = 4,
}

/// <summary>
/// One watchpoint gdb set: <paramref name="Length"/> (1–8) bytes at <paramref name="Address"/>. A hardware watchpoint
/// register watches bytes of one aligned doubleword (Arm ARM D2.10.2, DBGWCR.BAS with DBGWVR[2:0] = 0), so a range
/// that crosses a doubleword boundary takes two registers (<see cref="Pieces"/>).
/// </summary>
internal readonly record struct GdbWatchpoint(GdbWatchKind Kind, ulong Address, int Length)
{
    /// <summary>The longest range one Z packet may watch: one doubleword's bytes.</summary>
    public const int MaxLength = 8;

    /// <summary>The doublewords the range touches, each with its byte-address-select mask (bit b: byte dword + b).</summary>
    public IEnumerable<(ulong Doubleword, byte Bas)> Pieces()
    {
        ulong first = Address & ~7UL;
        ulong end = Address + (ulong)Length; // exclusive
        for (ulong dword = first; dword < end; dword += 8)
        {
            byte bas = 0;
            for (int b = 0; b < 8; b++)
            {
                ulong a = dword + (ulong)b;
                if (a >= Address && a < end) bas |= (byte)(1 << b);
            }
            yield return (dword, bas);
        }
    }

    /// <summary>Hardware registers this watchpoint takes: 1, or 2 when it crosses a doubleword boundary.</summary>
    public int Registers => ((Address & 7) + (ulong)Length > 8) ? 2 : 1;

    /// <summary>True when <paramref name="address"/> is one of the watched bytes.</summary>
    public bool Contains(ulong address) => address >= Address && address - Address < (ulong)Length;

    /// <summary>True when this watchpoint stops on an access that writes (<paramref name="write"/>) or reads.</summary>
    public bool Matches(bool write) => Kind == GdbWatchKind.Access || (Kind == GdbWatchKind.Write) == write;
}
