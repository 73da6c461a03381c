// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Emulated MMIO of one data access, as arch/x86/kvm/x86.c does it: emulator_read_write splits an access that crosses
/// a page ("Crossing a page boundary?") and emulator_read_write_onepage gives each page to guest memory or, failing
/// that, to vcpu_mmio_read/vcpu_mmio_write — the in-kernel local APIC and KVM_MMIO_BUS, 8 bytes at a time ("n =
/// min(len, 8)") until one refuses. What is left of a page is an MMIO fragment (vcpu-&gt;mmio_fragments,
/// KVM_MAX_MMIO_FRAGMENTS = 2). The first fragment's first 8 bytes are the KVM_EXIT_MMIO ("run-&gt;mmio.len = min(8u,
/// vcpu-&gt;mmio_fragments[0].len)"); complete_emulated_mmio sends the rest one KVM_EXIT_MMIO per KVM_RUN ("Go forward
/// to the next mmio piece", then "Switch to the next fragment"). A write's instruction completes before its first exit
/// (x86_emulate_instruction: mmio_is_write keeps writeback); a read's completes after its last, with the bytes read
/// from memory and devices at the first attempt and userspace's pieces (read_prepare: mmio_read_completed).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>x86.c struct kvm_mmio_fragment: <see cref="Length"/> bytes at <see cref="Gpa"/>, <see cref="Offset"/> into the access.</summary>
    private readonly record struct MmioFragment(ulong Gpa, int Offset, int Length);

    /// <summary>The read fragments of one access: one per page, so at most two (KVM_MAX_MMIO_FRAGMENTS).</summary>
    private struct MmioReadFragments
    {
        public MmioFragment First, Second;
        public int Count;

        public void Add(MmioFragment f)
        {
            if (Count == 0) First = f;
            else Second = f;
            Count++;
        }
    }

    /// <summary>
    /// A read exited for one of several pieces: the access (<see cref="Linear"/>, <see cref="Data"/>'s length), its
    /// bytes so far and the ≤ 8-byte pieces userspace answers, <see cref="Next"/> being the one in kvm_run now.
    /// </summary>
    private sealed class FragmentedMmioRead(ulong linear, byte[] data, MmioFragment[] pieces)
    {
        public ulong Linear { get; } = linear;

        public byte[] Data { get; } = data;

        public MmioFragment[] Pieces { get; } = pieces;

        public int Next { get; set; }
    }

    private FragmentedMmioRead? _mmioRead;

    /// <summary>x86.c vcpu_mmio_read after the APIC: kvm_io_bus_read(KVM_MMIO_BUS) 8 bytes at a time, until a refusal. Returns the bytes read.</summary>
    private int ReadMmioDevices(ulong gpa, Span<byte> piece)
    {
        int handled = 0;
        while (handled < piece.Length)
        {
            int n = Math.Min(8, piece.Length - handled);
            if (!_kvm.IoBus.Read(KvmBus.Mmio, _vcpu, gpa + (ulong)handled, piece.Slice(handled, n))) break;
            handled += n;
        }
        return handled;
    }

    /// <summary>
    /// The access's MMIO fragments go to userspace. One piece (a fragment of at most 8 bytes): answered by the data
    /// userspace supplied on re-entry, else it exits. Several: <see cref="_mmioRead"/> keeps the access's bytes and
    /// the first piece exits; <see cref="ResumeMmioRead"/> takes the answers.
    /// </summary>
    private void ReadMmio(ulong linear, Span<byte> data, in MmioReadFragments fragments)
    {
        var first = fragments.First;
        if (fragments.Count == 1 && first.Length <= 8)
        {
            if (_pending is { IsMmio: true } p && _completionData is byte[] answer && p.Length == first.Length)
            {
                answer.AsSpan(0, first.Length).CopyTo(data.Slice(first.Offset, first.Length));
                _completionData = null;
                return;
            }
            throw new MmioReadStop(first.Gpa, first.Length);
        }
        var pieces = new List<MmioFragment>();
        AddPieces(pieces, first);
        if (fragments.Count > 1) AddPieces(pieces, fragments.Second);
        _mmioRead = new FragmentedMmioRead(linear, data.ToArray(), [.. pieces]);
        throw new MmioReadStop(pieces[0].Gpa, pieces[0].Length);
    }

    /// <summary>complete_emulated_mmio: a fragment leaves in pieces of 8 bytes from its start, the last shorter.</summary>
    private static void AddPieces(List<MmioFragment> pieces, MmioFragment f)
    {
        for (int at = 0; at < f.Length; at += 8)
            pieces.Add(new MmioFragment(f.Gpa + (ulong)at, f.Offset + at, Math.Min(8, f.Length - at)));
    }

    /// <summary>
    /// The re-executed read of <see cref="_mmioRead"/> with userspace's answer for its current piece
    /// (complete_emulated_mmio: "memcpy(frag-&gt;data, run-&gt;mmio.data, len)"): the next piece exits, or after the
    /// last the access reads the bytes gathered. False when this is not that access or no answer came (a fresh read).
    /// </summary>
    private bool ResumeMmioRead(ulong linear, Span<byte> data)
    {
        var read = _mmioRead!;
        _mmioRead = null;
        if (read.Linear != linear || read.Data.Length != data.Length) return false;
        if (_pending is not { IsMmio: true } p || _completionData is not byte[] answer) return false;
        var piece = read.Pieces[read.Next];
        if (p.Length != piece.Length) return false;
        answer.AsSpan(0, piece.Length).CopyTo(read.Data.AsSpan(piece.Offset, piece.Length));
        _completionData = null;
        if (++read.Next < read.Pieces.Length)
        {
            _mmioRead = read;
            throw new MmioReadStop(read.Pieces[read.Next].Gpa, read.Pieces[read.Next].Length);
        }
        read.Data.CopyTo(data);
        return true;
    }

    /// <summary>
    /// An MMIO page of a write: its bytes are a fragment (<see cref="_mmioWriteGpa"/>, or <see cref="_mmioWriteGpa2"/>
    /// from <see cref="_mmioWriteSplit"/> for the access's second page), offered to the MMIO bus once the instruction
    /// committed (<see cref="ExitForMmioWrite"/>).
    /// </summary>
    private void RecordMmioWrite(ulong gpa, Span<byte> piece, bool secondFragment)
    {
        // x86.c emulator_read_write starts each access with "vcpu->mmio_nr_fragments = 0": a second MMIO write access
        // in one instruction would drop the first one's fragments; such an instruction is not emulated.
        if (_mmioWriteLength > 0 && !secondFragment)
            throw new EmulationFailure("more than one MMIO write in one instruction", haveInstructionBytes: true);
        int at = _mmioWriteLength;
        if (at + piece.Length > _mmioWriteData.Length) Array.Resize(ref _mmioWriteData, Math.Max(at + piece.Length, 2 * _mmioWriteData.Length));
        piece.CopyTo(_mmioWriteData.AsSpan(at));
        if (secondFragment) (_mmioWriteGpa2, _mmioWriteSplit) = (gpa, at);
        else _mmioWriteGpa = gpa;
        _mmioWriteLength = at + piece.Length;
    }

    /// <summary>
    /// After the instruction committed: each write fragment goes to vcpu_mmio_write; the first piece no device took is
    /// this KVM_RUN's KVM_EXIT_MMIO, the others wait for the next KVM_RUNs (<see cref="NextMmioWritePiece"/>). Returns
    /// true when an exit is due.
    /// </summary>
    private bool ExitForMmioWrite()
    {
        int split = _mmioWriteSplit == 0 ? _mmioWriteLength : _mmioWriteSplit;
        bool exit = false;
        WriteMmioFragment(_mmioWriteGpa, 0, split, ref exit);
        if (split < _mmioWriteLength) WriteMmioFragment(_mmioWriteGpa2, split, _mmioWriteLength - split, ref exit);
        return exit;
    }

    private void WriteMmioFragment(ulong gpa, int offset, int length, ref bool exit)
    {
        var bytes = _mmioWriteData.AsSpan(offset, length);
        // vcpu_mmio_write: kvm_io_bus_write(KVM_MMIO_BUS) (an ioeventfd, a coalesced MMIO zone) 8 bytes at a time.
        int handled = 0;
        while (handled < length)
        {
            int n = Math.Min(8, length - handled);
            if (!IoBusTakes(gpa + (ulong)handled, bytes.Slice(handled, n))) break;
            handled += n;
        }
        for (int at = handled; at < length; at += 8)
        {
            var piece = bytes.Slice(at, Math.Min(8, length - at));
            if (exit) _mmioWritePieces.Enqueue((gpa + (ulong)at, piece.ToArray()));
            else _run.SetMmioExit(gpa + (ulong)at, piece, piece.Length, write: true);
            exit = true;
        }
    }
}
