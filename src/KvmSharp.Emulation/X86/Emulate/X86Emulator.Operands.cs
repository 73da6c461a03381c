// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Iced.Intel;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>Operand access: registers by Iced name, effective addresses, segmented linear memory through the MMU.</summary>
internal sealed partial class X86Emulator
{
    // ------------------------------------------------------------ registers

    private static bool IsHighByte(Register r) => r is Register.AH or Register.CH or Register.DH or Register.BH;

    private static int GprIndex(Register r) => IsHighByte(r) ? r - Register.AH : r.GetFullRegister() - Register.RAX;

    /// <summary>Where a general-purpose register lives in X86Cpu.Gpr, per Iced <see cref="Register"/> (ReadReg/WriteReg).</summary>
    private readonly record struct GprSlot(bool IsGpr, int Index, int Shift, ulong ValueMask, ulong KeepMask);

    // The same rules as the switch in ReadOtherReg/WriteOtherReg, tabulated once: index GprIndex, high bytes 8 bits up,
    // 8/16-bit writes keep the other bits, 32-bit writes zero-extend (SDM 3.4.1.1).
    private static readonly GprSlot[] s_gprSlots = BuildGprSlots();

    private static GprSlot[] BuildGprSlots()
    {
        var table = new GprSlot[Enum.GetValues<Register>().Max(r => (int)r) + 1];
        for (int n = 0; n < table.Length; n++)
        {
            var r = (Register)n;
            if (!r.IsGPR()) continue;
            int size = r.GetSize();
            bool high = IsHighByte(r);
            ulong keep = size switch { 1 when high => ~0xff00UL, 1 => ~0xffUL, 2 => ~0xffffUL, _ => 0 };
            table[n] = new GprSlot(true, GprIndex(r), high ? 8 : 0, Alu.Mask(size), keep);
        }
        return table;
    }

    public ulong ReadReg(Register r)
    {
        var slots = s_gprSlots;
        if ((uint)r < (uint)slots.Length)
        {
            ref readonly var g = ref slots[(int)r];
            if (g.IsGpr) return (_cpu.Gpr[g.Index] >> g.Shift) & g.ValueMask;
        }
        return ReadOtherReg(r);
    }

    /// <summary>ReadReg of what is not in <see cref="s_gprSlots"/>: no register, a segment register, or an error.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong ReadOtherReg(Register r)
    {
        if (r == Register.None) return 0;
        if (r.IsSegmentRegister()) return Segment(r).selector;
        if (!r.IsGPR()) throw new EmulationFailure($"register {r} is not emulated", haveInstructionBytes: true);
        ulong v = _cpu.Gpr[GprIndex(r)];
        if (IsHighByte(r)) return (v >> 8) & 0xff;
        return v & Alu.Mask(r.GetSize());
    }

    /// <summary>Register write: 8/16-bit writes keep the other bits, 32-bit writes zero-extend (SDM 3.4.1.1).</summary>
    public void WriteReg(Register r, ulong value)
    {
        var slots = s_gprSlots;
        if ((uint)r < (uint)slots.Length)
        {
            ref readonly var g = ref slots[(int)r];
            if (g.IsGpr)
            {
                ref ulong reg = ref _cpu.Gpr[g.Index];
                reg = (reg & g.KeepMask) | ((value & g.ValueMask) << g.Shift);
                return;
            }
        }
        WriteOtherReg(r, value);
    }

    /// <summary>WriteReg of what is not in <see cref="s_gprSlots"/>: always an error (the original rules kept).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteOtherReg(Register r, ulong value)
    {
        if (!r.IsGPR()) throw new EmulationFailure($"register {r} is not emulated", haveInstructionBytes: true);
        int i = GprIndex(r);
        ulong old = _cpu.Gpr[i];
        _cpu.Gpr[i] = r.GetSize() switch
        {
            1 when IsHighByte(r) => (old & ~0xff00UL) | ((value & 0xff) << 8),
            1 => (old & ~0xffUL) | (value & 0xff),
            2 => (old & ~0xffffUL) | (value & 0xffff),
            4 => value & 0xffff_ffff,
            _ => value,
        };
    }

    private ref Abi.kvm_segment Segment(Register r)
    {
        switch (r)
        {
            case Register.ES: return ref _cpu.Sregs.es;
            case Register.CS: return ref _cpu.Sregs.cs;
            case Register.SS: return ref _cpu.Sregs.ss;
            case Register.DS: return ref _cpu.Sregs.ds;
            case Register.FS: return ref _cpu.Sregs.fs;
            case Register.GS: return ref _cpu.Sregs.gs;
            default: throw new EmulationFailure($"segment {r}", haveInstructionBytes: true);
        }
    }

    /// <summary>The base of a segment for address computation: only FS and GS have one in 64-bit mode.</summary>
    private ulong SegmentBase(Register seg)
    {
        if (seg == Register.None) return 0;
        if (_cpu.Bitness == 64 && seg is not (Register.FS or Register.GS)) return 0;
        return Segment(seg).@base;
    }

    // ------------------------------------------------------------ operands

    /// <summary>Operand size in bytes of operand <paramref name="op"/>.</summary>
    private static int OpSize(in Instruction i, int op) => i.GetOpKind(op) switch
    {
        OpKind.Register => i.GetOpRegister(op).GetSize(),
        OpKind.Immediate8 or OpKind.Immediate8_2nd => 1,
        OpKind.Immediate16 or OpKind.Immediate8to16 => 2,
        OpKind.Immediate32 or OpKind.Immediate8to32 => 4,
        OpKind.Immediate64 or OpKind.Immediate8to64 or OpKind.Immediate32to64 => 8,
        _ => i.MemorySize.GetSize(),
    };

    private ulong ReadOp(in Instruction i, int op, int size)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                return ReadReg(i.GetOpRegister(op));
            case OpKind.Memory:
                return ReadMemory(i.MemorySegment, EffectiveAddress(i), size);
            case OpKind.Immediate8:
            case OpKind.Immediate8_2nd:
            case OpKind.Immediate16:
            case OpKind.Immediate32:
            case OpKind.Immediate64:
            case OpKind.Immediate8to16:
            case OpKind.Immediate8to32:
            case OpKind.Immediate8to64:
            case OpKind.Immediate32to64:
                return i.GetImmediate(op) & Alu.Mask(size);
            default:
                throw new EmulationFailure($"operand kind {i.GetOpKind(op)}", haveInstructionBytes: true);
        }
    }

    private void WriteOp(in Instruction i, int op, int size, ulong value)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                WriteReg(i.GetOpRegister(op), value);
                return;
            case OpKind.Memory:
                WriteMemory(i.MemorySegment, EffectiveAddress(i), size, value);
                return;
            default:
                throw new EmulationFailure($"destination kind {i.GetOpKind(op)}", haveInstructionBytes: true);
        }
    }

    /// <summary>The effective address (offset in the segment) of the memory operand, wrapped to the address size.</summary>
    private ulong EffectiveAddress(in Instruction i)
    {
        if (i.IsIPRelativeMemoryOperand) return i.IPRelativeMemoryAddress;
        ulong ea = i.MemoryDisplacement64;
        if (i.MemoryBase != Register.None) ea += ReadReg(i.MemoryBase);
        if (i.MemoryIndex != Register.None) ea += ReadReg(i.MemoryIndex) * (ulong)i.MemoryIndexScale;
        int addressSize = i.MemoryBase != Register.None ? i.MemoryBase.GetSize()
            : i.MemoryIndex != Register.None ? i.MemoryIndex.GetSize()
            : i.MemoryDisplSize;
        return addressSize switch
        {
            2 => ea & 0xffff,
            4 => ea & 0xffff_ffff,
            _ => ea,
        };
    }

    // ------------------------------------------------------------ memory

    private ulong Linear(Register seg, ulong offset)
    {
        ulong linear = SegmentBase(seg) + offset;
        if (_cpu.Bitness != 64) return linear & 0xffff_ffff;
        // A non-canonical address in 64-bit mode is #GP (#SS for the stack).
        if ((ulong)((long)(linear << 16) >> 16) != linear) throw new GuestFault(X86Consts.GP_VECTOR);
        return linear;
    }

    public ulong ReadMemory(Register seg, ulong offset, int size)
    {
        CheckRealModeLimit(seg, offset, size); // X86Emulator.RealModeEvents.cs
        Span<byte> buffer = stackalloc byte[8];
        AccessMemory(Linear(seg, offset), buffer[..size], write: false);
        return BinaryPrimitives.ReadUInt64LittleEndian(buffer);
    }

    public void WriteMemory(Register seg, ulong offset, int size, ulong value)
    {
        CheckRealModeLimit(seg, offset, size); // X86Emulator.RealModeEvents.cs
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, value);
        AccessMemory(Linear(seg, offset), buffer[..size], write: true);
    }

    /// <summary>
    /// A data access, split at page boundaries; each piece is translated and resolved on its own (x86.c
    /// emulator_read_write: "Crossing a page boundary?", emulator_read_write_onepage). The parts of an MMIO page no
    /// in-kernel device takes are MMIO fragments for userspace (X86Emulator.MmioFragments.cs).
    /// </summary>
    private void AccessMemory(ulong linear, Span<byte> data, bool write)
    {
        if (DataBreakpointsModelled) NoteDataAccess(linear, data.Length, write); // data breakpoints (X86Emulator.GuestDebug.cs)
        if (!write && _mmioRead is not null && ResumeMmioRead(linear, data)) return;
        ulong page = (ulong)s_pageSize; // EmulatorConfig.PageSize
        int done = 0;
        bool wroteMmio = false;
        var readFragments = default(MmioReadFragments);
        while (done < data.Length)
        {
            ulong at = linear + (ulong)done;
            int chunk = (int)Math.Min((ulong)(data.Length - done), page - (at & (page - 1)));
            ulong gpa = Translate(at, write ? PageAccess.Write : PageAccess.Read);
            var piece = data.Slice(done, chunk);
            var r = write ? _mem.Write(gpa, piece) : ReadData(gpa, piece); // _mem.Read (X86Emulator.DecodeCache.cs)
            if (r.Status == GpaStatus.MemoryFault) throw new MemoryFaultStop(r);
            if (r.Status == GpaStatus.Mmio) SevEsMmioException(); // SEV-ES/SNP: #VC (X86Emulator.SevEs.cs)
            if (r.Status == GpaStatus.Mmio && !TryApicMmio(r.Gpa, piece, write))
            {
                if (write)
                {
                    RecordMmioWrite(r.Gpa, piece, secondFragment: wroteMmio);
                    wroteMmio = true;
                }
                else
                {
                    int handled = ReadMmioDevices(r.Gpa, piece);
                    if (handled < chunk) readFragments.Add(new MmioFragment(r.Gpa + (ulong)handled, done + handled, chunk - handled));
                }
            }
            done += chunk;
        }
        if (readFragments.Count > 0) ReadMmio(linear, data, readFragments);
    }
}
