// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// The x86-64 register file as gdb's i386:x86-64 numbers it (gdb/amd64-tdep.c amd64_register_names; the
/// org.gnu.gdb.i386.core feature of gdb/features/i386/64bit-core.xml): 0–15 rax rbx rcx rdx rsi rdi rbp rsp r8–r15
/// (8 bytes each), 16 rip (8), 17 eflags (4), 18–23 cs ss ds es fs gs (4 each, the selectors), little-endian. The
/// <c>g</c> packet holds these 24 (164 bytes); gdb takes a shorter <c>g</c> than its full layout and marks the rest
/// (x87, SSE) unavailable (gdb/remote.c process_g_packet). Segment selectors are read-only here: a write of them is
/// accepted and ignored (a micro-VM's flat long-mode segments are the VMM's, not the guest's to change).
/// </summary>
internal static class X86_64GdbRegisters
{
    /// <summary>Registers in the <c>g</c> packet.</summary>
    public const int Count = 24;

    /// <summary>gdb's number of RIP (16), used in stop replies' expedited registers.</summary>
    public const int Rip = 16;

    /// <summary>Bytes of the <c>g</c> packet: 17 × 8 + 7 × 4.</summary>
    public const int GPacketSize = 17 * 8 + 7 * 4;

    /// <summary>The target description: the architecture only, gdb's own register layout for it.</summary>
    public const string TargetXml =
        "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target><architecture>i386:x86-64</architecture></target>";

    /// <summary>The size of register <paramref name="n"/>, or 0 for a number outside the <c>g</c> packet.</summary>
    public static int Size(int n) => n switch
    {
        >= 0 and <= 16 => 8,
        >= 17 and < Count => 4,
        _ => 0,
    };

    /// <summary>
    /// The size of a register of gdb's full amd64 layout that the stub does not read (st0–st7 10 bytes, fctrl–fop 4,
    /// xmm0–xmm15 16, mxcsr 4: gdb/features/i386/64bit-core.xml and 64bit-sse.xml), or 0 past it.
    /// </summary>
    public static int UnavailableSize(int n) => n switch
    {
        >= 24 and <= 31 => 10,
        >= 32 and <= 39 => 4,
        >= 40 and <= 55 => 16,
        56 => 4,
        _ => 0,
    };

    /// <summary>The offset of register <paramref name="n"/> in the <c>g</c> packet.</summary>
    public static int Offset(int n) => n <= 17 ? n * 8 : 17 * 8 + (n - 17) * 4;

    /// <summary>The <c>g</c> packet's bytes for <paramref name="regs"/> and <paramref name="sregs"/>.</summary>
    public static byte[] Read(in kvm_regs regs, in kvm_sregs sregs)
    {
        var bytes = new byte[GPacketSize];
        Span<ulong> gprs =
        [
            regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.rbp, regs.rsp,
            regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15, regs.rip,
        ];
        for (int i = 0; i < gprs.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(i * 8), gprs[i]);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(Offset(17)), (uint)regs.rflags);
        Span<ushort> selectors = [sregs.cs.selector, sregs.ss.selector, sregs.ds.selector, sregs.es.selector, sregs.fs.selector, sregs.gs.selector];
        for (int i = 0; i < selectors.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(Offset(18 + i)), selectors[i]);
        return bytes;
    }

    /// <summary>
    /// Writes register <paramref name="n"/> from <paramref name="value"/> (its <see cref="Size"/> bytes) into
    /// <paramref name="regs"/>; false for a number outside the <c>g</c> packet or a wrong length. The selectors
    /// (18–23) are ignored.
    /// </summary>
    public static bool Write(ref kvm_regs regs, int n, ReadOnlySpan<byte> value)
    {
        int size = Size(n);
        if (size == 0 || value.Length != size) return false;
        if (n >= 18) return true;
        if (n == 17)
        {
            // EFLAGS is 32 bits in gdb's layout; RFLAGS' upper half is reserved (Intel SDM 3.4.3).
            regs.rflags = BinaryPrimitives.ReadUInt32LittleEndian(value);
            return true;
        }
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(value);
        switch (n)
        {
            case 0: regs.rax = v; break;
            case 1: regs.rbx = v; break;
            case 2: regs.rcx = v; break;
            case 3: regs.rdx = v; break;
            case 4: regs.rsi = v; break;
            case 5: regs.rdi = v; break;
            case 6: regs.rbp = v; break;
            case 7: regs.rsp = v; break;
            case 8: regs.r8 = v; break;
            case 9: regs.r9 = v; break;
            case 10: regs.r10 = v; break;
            case 11: regs.r11 = v; break;
            case 12: regs.r12 = v; break;
            case 13: regs.r13 = v; break;
            case 14: regs.r14 = v; break;
            case 15: regs.r15 = v; break;
            default: regs.rip = v; break;
        }
        return true;
    }

    /// <summary>
    /// Writes a whole <c>g</c> packet (<see cref="GPacketSize"/> bytes or more: gdb sends its full layout, whose x87
    /// and SSE part is ignored) into <paramref name="regs"/>; false when it is shorter.
    /// </summary>
    public static bool WriteAll(ref kvm_regs regs, ReadOnlySpan<byte> packet)
    {
        if (packet.Length < GPacketSize) return false;
        for (int n = 0; n < Count; n++) Write(ref regs, n, packet.Slice(Offset(n), Size(n)));
        return true;
    }

    /// <summary>
    /// DR7 for execute breakpoints in DR0–DR(count−1): L0–L3 (bit 2i), R/W and LEN 0 (instruction), bit 10 reads as
    /// 1 (Intel SDM 3 §18.2.4, "Debug Control Register (DR7)").
    /// </summary>
    public static ulong Dr7ForExecuteBreakpoints(int count)
    {
        ulong dr7 = 0x400;
        for (int i = 0; i < count; i++) dr7 |= 1UL << (2 * i);
        return dr7;
    }
}
