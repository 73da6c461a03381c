// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Two speed-ups of the instruction fetch that cannot change what is fetched or decoded. The bytes are always read
/// from guest memory again (so self-modifying code and host writes to guest code are seen at once):
/// <list type="bullet">
/// <item>the code page's <see cref="GuestPhysicalMemory.ReadView"/> is kept across instructions, so the read is the copy
/// GuestPhysicalMemory.Read would make from that cached page, without its per-access lookup, while the view is current
/// (same page, same kvm->mmu_invalidate_seq); otherwise the read goes through GuestPhysicalMemory.Read as before (data
/// reads keep a view of their own page the same way);</item>
/// <item>Iced's decoding is a pure function of (bitness, IP, bytes): a decoded instruction is reused when all
/// <see cref="MaxInstructionLength"/> freshly fetched bytes, the IP and the bitness are the ones it was decoded from.
/// Only full fetches that decoded without error are remembered.</item>
/// </list>
/// </summary>
internal sealed partial class X86Emulator
{
    private const int DecodeCacheEntries = 256;

    private GuestPhysicalMemory.ReadView _codeView, _dataView;
    private DecodedInstruction[]? _decoded;

    private struct DecodedInstruction
    {
        public int Bitness; // 0: empty
        public ulong Ip, Bytes0, Bytes7;
        public Instruction Instruction;
        public bool WritesOnlyGprs; // X86Emulator.Rollback.cs WritesOnlyGprs(Instruction), a function of the instruction alone
    }

    /// <summary>
    /// FetchChunk's read of instruction bytes: GuestPhysicalMemory.Read, through the kept code-page view when current.
    /// </summary>
    private GpaResult ReadCode(ulong gpa, Span<byte> into)
    {
        if (_mem.TryReadThrough(_codeView, gpa, into)) return GpaResult.Done;
        var r = _mem.Read(gpa, into);
        if (r.Status == GpaStatus.Done) _mem.TryGetReadView(gpa, out _codeView);
        return r;
    }

    /// <summary>
    /// AccessMemory's data reads: GuestPhysicalMemory.Read, through the kept view of the page last read when current —
    /// the same speed-up as <see cref="ReadCode"/>, and like it for reads only (a write may fault: dirty logging).
    /// </summary>
    private GpaResult ReadData(ulong gpa, Span<byte> into)
    {
        if (_mem.TryReadThrough(_dataView, gpa, into)) return GpaResult.Done;
        var r = _mem.Read(gpa, into);
        if (r.Status == GpaStatus.Done) _mem.TryGetReadView(gpa, out _dataView);
        return r;
    }

    /// <summary>
    /// The instruction decoded earlier from exactly the bytes now in <see cref="_fetched"/> at this IP and bitness.
    /// </summary>
    private bool TryDecoded(ulong ip, int bitness, out Instruction instr)
    {
        if (_fetchedLength == MaxInstructionLength && _decoded is { } cache)
        {
            ref var d = ref cache[(int)(ip & (DecodeCacheEntries - 1))];
            if (d.Bitness == bitness && d.Ip == ip && d.Bytes0 == FetchedQword(0) && d.Bytes7 == FetchedQword(7))
            {
                instr = d.Instruction;
                return true;
            }
        }
        instr = default;
        return false;
    }

    /// <summary>Remembers an instruction Iced decoded without error from a full fetch.</summary>
    private void RememberDecoded(ulong ip, int bitness, in Instruction instr)
    {
        if (_fetchedLength != MaxInstructionLength) return;
        var cache = _decoded ??= new DecodedInstruction[DecodeCacheEntries];
        ref var d = ref cache[(int)(ip & (DecodeCacheEntries - 1))];
        d.Bitness = bitness;
        d.Ip = ip;
        d.Bytes0 = FetchedQword(0);
        d.Bytes7 = FetchedQword(7);
        d.Instruction = instr;
        d.WritesOnlyGprs = WritesOnlyGprs(instr);
    }

    // Bytes [at, at + 8) of the fetch: 0 and 7 cover all 15.
    private ulong FetchedQword(int at) => BinaryPrimitives.ReadUInt64LittleEndian(_fetched.AsSpan(at, 8));
}
