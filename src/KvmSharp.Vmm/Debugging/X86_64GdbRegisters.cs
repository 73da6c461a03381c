// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// The x86-64 register file as gdb's i386:x86-64 numbers it (gdb/amd64-tdep.c amd64_register_names; the features
/// org.gnu.gdb.i386.core of gdb/features/i386/64bit-core.xml and org.gnu.gdb.i386.sse of 64bit-sse.xml), little-endian:
/// 0–15 rax rbx rcx rdx rsi rdi rbp rsp r8–r15 (8 bytes each), 16 rip (8), 17 eflags (4), 18–23 cs ss ds es fs gs (4
/// each, the selectors), 24–31 st0–st7 (10 bytes, the 80-bit values), 32–39 fctrl fstat ftag fiseg fioff foseg fooff
/// fop (4 each), 40–55 xmm0–xmm15 (16 each), 56 mxcsr (4) — the <c>g</c> packet, 536 bytes. The floating-point and
/// SSE registers are read from and written to the legacy (fxsave) area of the vCPU's FPU image (Intel SDM 1 §10.5.1
/// "FXSAVE Area", Table 10-2): FCW 0, FSW 2, abridged FTW 4, FOP 6, FIP 8 (fioff, then FCS as fiseg), FDP 16 (fooff,
/// then FDS as foseg), MXCSR 24, ST(i) 32 + 16i, XMM(i) 160 + 16i — converted as gdb converts its own fxsave
/// (gdb/i387-tdep.c i387_supply_fxsave / i387_collect_fxsave): ftag is the full tag word (2 bits a physical register:
/// 0 valid, 1 zero, 2 special, 3 empty), fop 11 bits, fiseg / foseg and fctrl / fstat 16 bits. Segment selectors are
/// read-only here: a write of them is accepted and ignored (a micro-VM's flat long-mode segments are the VMM's, not
/// the guest's to change).
/// </summary>
internal static class X86_64GdbRegisters
{
    /// <summary>Registers in the <c>g</c> packet.</summary>
    public const int Count = 57;

    /// <summary>gdb's number of RIP (16), used in stop replies' expedited registers.</summary>
    public const int Rip = 16;

    /// <summary>The first floating-point register (st0): registers below it are KVM_GET_REGS / KVM_GET_SREGS ones.</summary>
    public const int St0 = 24;

    private const int Fctrl = 32, Fstat = 33, Ftag = 34, Fiseg = 35, Fioff = 36, Foseg = 37, Fooff = 38, Fop = 39, Xmm0 = 40, Mxcsr = 56;

    /// <summary>Bytes of the general-purpose part of the <c>g</c> packet: 17 × 8 + 7 × 4.</summary>
    public const int GeneralSize = 17 * 8 + 7 * 4;

    /// <summary>Bytes of the <c>g</c> packet: the general part, 8 × 10 + 8 × 4 + 16 × 16 + 4.</summary>
    public const int GPacketSize = GeneralSize + 8 * 10 + 8 * 4 + 16 * 16 + 4;

    /// <summary>Bytes of the legacy fxsave area.</summary>
    public const int FxsaveSize = 512;

    // Offsets in the fxsave area (Intel SDM 1 Table 10-2).
    private const int FxFcw = 0, FxFsw = 2, FxFtw = 4, FxFop = 6, FxFip = 8, FxFcs = 12, FxFdp = 16, FxFds = 20, FxMxcsr = 24, FxSt = 32, FxXmm = 160;

    /// <summary>
    /// The target description: gdb's own core and SSE features (64bit-core.xml, 64bit-sse.xml), registers in the order
    /// above, so gdb's numbers are the <c>g</c> packet's.
    /// </summary>
    public const string TargetXml =
        "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target><architecture>i386:x86-64</architecture>" +
        "<feature name=\"org.gnu.gdb.i386.core\">" +
        "<flags id=\"i386_eflags\" size=\"4\"><field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>" +
        "<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/><field name=\"ZF\" start=\"6\" end=\"6\"/>" +
        "<field name=\"SF\" start=\"7\" end=\"7\"/><field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>" +
        "<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/><field name=\"NT\" start=\"14\" end=\"14\"/>" +
        "<field name=\"RF\" start=\"16\" end=\"16\"/><field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>" +
        "<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/><field name=\"ID\" start=\"21\" end=\"21\"/></flags>" +
        "<reg name=\"rax\" bitsize=\"64\" type=\"int64\"/><reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>" +
        "<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/><reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>" +
        "<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/><reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>" +
        "<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/><reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>" +
        "<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/><reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>" +
        "<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/><reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>" +
        "<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/><reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>" +
        "<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/><reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>" +
        "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/><reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>" +
        "<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/><reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>" +
        "<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/><reg name=\"es\" bitsize=\"32\" type=\"int32\"/>" +
        "<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/><reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>" +
        "<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>" +
        "<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>" +
        "<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>" +
        "<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>" +
        "<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/><reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>" +
        "<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/><reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>" +
        "<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/><reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>" +
        "<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/><reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>" +
        "</feature><feature name=\"org.gnu.gdb.i386.sse\">" +
        "<vector id=\"v8bf16\" type=\"bfloat16\" count=\"8\"/><vector id=\"v8h\" type=\"ieee_half\" count=\"8\"/>" +
        "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/><vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>" +
        "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/><vector id=\"v8i16\" type=\"int16\" count=\"8\"/>" +
        "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/><vector id=\"v2i64\" type=\"int64\" count=\"2\"/>" +
        "<union id=\"vec128\"><field name=\"v8_bfloat16\" type=\"v8bf16\"/><field name=\"v8_half\" type=\"v8h\"/>" +
        "<field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/><field name=\"v16_int8\" type=\"v16i8\"/>" +
        "<field name=\"v8_int16\" type=\"v8i16\"/><field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>" +
        "<field name=\"uint128\" type=\"uint128\"/></union>" +
        "<flags id=\"i386_mxcsr\" size=\"4\"><field name=\"IE\" start=\"0\" end=\"0\"/><field name=\"DE\" start=\"1\" end=\"1\"/>" +
        "<field name=\"ZE\" start=\"2\" end=\"2\"/><field name=\"OE\" start=\"3\" end=\"3\"/><field name=\"UE\" start=\"4\" end=\"4\"/>" +
        "<field name=\"PE\" start=\"5\" end=\"5\"/><field name=\"DAZ\" start=\"6\" end=\"6\"/><field name=\"IM\" start=\"7\" end=\"7\"/>" +
        "<field name=\"DM\" start=\"8\" end=\"8\"/><field name=\"ZM\" start=\"9\" end=\"9\"/><field name=\"OM\" start=\"10\" end=\"10\"/>" +
        "<field name=\"UM\" start=\"11\" end=\"11\"/><field name=\"PM\" start=\"12\" end=\"12\"/><field name=\"FZ\" start=\"15\" end=\"15\"/></flags>" +
        "<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\" regnum=\"40\"/><reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>" +
        "<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>" +
        "<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>" +
        "<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>" +
        "<reg name=\"xmm8\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm9\" bitsize=\"128\" type=\"vec128\"/>" +
        "<reg name=\"xmm10\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm11\" bitsize=\"128\" type=\"vec128\"/>" +
        "<reg name=\"xmm12\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm13\" bitsize=\"128\" type=\"vec128\"/>" +
        "<reg name=\"xmm14\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm15\" bitsize=\"128\" type=\"vec128\"/>" +
        "<reg name=\"mxcsr\" bitsize=\"32\" type=\"i386_mxcsr\" group=\"vector\"/></feature></target>";

    /// <summary>The size of register <paramref name="n"/>, or 0 for a number outside the <c>g</c> packet.</summary>
    public static int Size(int n) => n switch
    {
        >= 0 and <= Rip => 8,
        > Rip and < St0 => 4,
        >= St0 and < Fctrl => 10,
        >= Fctrl and < Xmm0 => 4,
        >= Xmm0 and < Mxcsr => 16,
        Mxcsr => 4,
        _ => 0,
    };

    /// <summary>The offset of register <paramref name="n"/> in the <c>g</c> packet.</summary>
    public static int Offset(int n) => n switch
    {
        <= Rip + 1 => n * 8,
        < St0 => 17 * 8 + (n - 17) * 4,
        < Fctrl => GeneralSize + (n - St0) * 10,
        < Xmm0 => GeneralSize + 80 + (n - Fctrl) * 4,
        _ => GeneralSize + 80 + 32 + (n - Xmm0) * 16,
    };

    /// <summary>
    /// The <c>g</c> packet's bytes for <paramref name="regs"/>, <paramref name="sregs"/> and the fxsave area
    /// <paramref name="fx"/>.
    /// </summary>
    public static byte[] Read(in kvm_regs regs, in kvm_sregs sregs, ReadOnlySpan<byte> fx)
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
        for (int n = St0; n < Count; n++) ReadFloat(fx, n, bytes.AsSpan(Offset(n), Size(n)));
        return bytes;
    }

    /// <summary>Register <paramref name="n"/> (st0 … mxcsr) from the fxsave area <paramref name="fx"/>.</summary>
    private static void ReadFloat(ReadOnlySpan<byte> fx, int n, Span<byte> value)
    {
        switch (n)
        {
            case < Fctrl:
                fx.Slice(FxSt + (n - St0) * 16, 10).CopyTo(value);
                return;
            case >= Xmm0 and < Mxcsr:
                fx.Slice(FxXmm + (n - Xmm0) * 16, 16).CopyTo(value);
                return;
        }
        uint v = n switch
        {
            Fctrl => U16(fx, FxFcw),
            Fstat => U16(fx, FxFsw),
            Ftag => FullTagWord(fx),
            Fiseg => U16(fx, FxFcs),
            Fioff => BinaryPrimitives.ReadUInt32LittleEndian(fx[FxFip..]),
            Foseg => U16(fx, FxFds),
            Fooff => BinaryPrimitives.ReadUInt32LittleEndian(fx[FxFdp..]),
            Fop => U16(fx, FxFop) & 0x7FFu,
            _ => BinaryPrimitives.ReadUInt32LittleEndian(fx[FxMxcsr..]),
        };
        BinaryPrimitives.WriteUInt32LittleEndian(value, v);
    }

    /// <summary>Writes register <paramref name="n"/> (st0 … mxcsr) into the fxsave area <paramref name="fx"/>.</summary>
    private static void WriteFloat(Span<byte> fx, int n, ReadOnlySpan<byte> value)
    {
        switch (n)
        {
            case < Fctrl:
                value[..10].CopyTo(fx.Slice(FxSt + (n - St0) * 16, 10));
                return;
            case >= Xmm0 and < Mxcsr:
                value.CopyTo(fx.Slice(FxXmm + (n - Xmm0) * 16, 16));
                return;
        }
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(value);
        switch (n)
        {
            case Fctrl: BinaryPrimitives.WriteUInt16LittleEndian(fx[FxFcw..], (ushort)v); break;
            case Fstat: BinaryPrimitives.WriteUInt16LittleEndian(fx[FxFsw..], (ushort)v); break;
            case Ftag: fx[FxFtw] = AbridgedTagWord(v); break;
            case Fiseg: BinaryPrimitives.WriteUInt16LittleEndian(fx[FxFcs..], (ushort)v); break;
            case Fioff: BinaryPrimitives.WriteUInt32LittleEndian(fx[FxFip..], v); break;
            case Foseg: BinaryPrimitives.WriteUInt16LittleEndian(fx[FxFds..], (ushort)v); break;
            case Fooff: BinaryPrimitives.WriteUInt32LittleEndian(fx[FxFdp..], v); break;
            case Fop:
                // FOP holds 11 bits (Intel SDM 1 §8.1.9); the rest of the word is kept as it was.
                BinaryPrimitives.WriteUInt16LittleEndian(fx[FxFop..], (ushort)((U16(fx, FxFop) & ~0x7FFu) | (v & 0x7FFu)));
                break;
            default: BinaryPrimitives.WriteUInt32LittleEndian(fx[FxMxcsr..], v); break;
        }
    }

    private static uint U16(ReadOnlySpan<byte> fx, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(fx[offset..]);

    /// <summary>
    /// The full x87 tag word from fxsave's abridged one (Intel SDM 1 §10.5.1.1; gdb/i387-tdep.c i387_tag): for physical
    /// register p, empty (3) when its abridged bit is clear, else by the value in ST((p − TOP) mod 8): exponent all ones
    /// special (2), exponent 0 zero (1) when the significand is 0 too, else special, a set integer bit valid (0), else
    /// special.
    /// </summary>
    internal static uint FullTagWord(ReadOnlySpan<byte> fx)
    {
        int top = (int)(U16(fx, FxFsw) >> 11) & 7;
        byte abridged = fx[FxFtw];
        uint tags = 0;
        for (int p = 0; p < 8; p++)
        {
            uint tag = 3;
            if ((abridged & (1 << p)) != 0)
            {
                ReadOnlySpan<byte> st = fx.Slice(FxSt + ((p - top) & 7) * 16, 10);
                int exponent = BinaryPrimitives.ReadUInt16LittleEndian(st[8..]) & 0x7FFF;
                ulong significand = BinaryPrimitives.ReadUInt64LittleEndian(st);
                bool integer = (significand >> 63) != 0;
                tag = exponent == 0x7FFF ? 2u
                    : exponent == 0 ? (significand == 0 ? 1u : 2u)
                    : integer ? 0u : 2u;
            }
            tags |= tag << (2 * p);
        }
        return tags;
    }

    /// <summary>The abridged tag word of a full one: bit p set unless physical register p is empty (tag 3).</summary>
    internal static byte AbridgedTagWord(uint full)
    {
        byte abridged = 0;
        for (int p = 0; p < 8; p++)
            if (((full >> (2 * p)) & 3) != 3) abridged |= (byte)(1 << p);
        return abridged;
    }

    /// <summary>
    /// Writes register <paramref name="n"/> from <paramref name="value"/> (its <see cref="Size"/> bytes) into
    /// <paramref name="regs"/> (0–23) or the fxsave area <paramref name="fx"/> (24–56); false for a number outside
    /// the <c>g</c> packet or a wrong length. The selectors (18–23) are ignored.
    /// </summary>
    public static bool Write(ref kvm_regs regs, Span<byte> fx, int n, ReadOnlySpan<byte> value)
    {
        int size = Size(n);
        if (size == 0 || value.Length != size) return false;
        if (n >= St0)
        {
            WriteFloat(fx, n, value);
            return true;
        }
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
    /// Writes a whole <c>g</c> packet into <paramref name="regs"/> and <paramref name="fx"/>: the general registers,
    /// and the floating-point ones when the packet holds them (<see cref="GPacketSize"/> bytes); false when it is
    /// shorter than <see cref="GeneralSize"/>. Returns in <paramref name="withFloat"/> whether it held them.
    /// </summary>
    public static bool WriteAll(ref kvm_regs regs, Span<byte> fx, ReadOnlySpan<byte> packet, out bool withFloat)
    {
        withFloat = packet.Length >= GPacketSize;
        if (packet.Length < GeneralSize) return false;
        int count = withFloat ? Count : St0;
        for (int n = 0; n < count; n++) Write(ref regs, fx, n, packet.Slice(Offset(n), Size(n)));
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
