// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Arch;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// INS/OUTS (string port I/O, with and without REP), as arch/x86/kvm/emulate.c runs them (opcode_table 0x6C–0x6F:
/// "I2bvIP(DstDI | SrcDX | Mov | String | Unaligned, em_in, ins, …)", "I2bvIP(SrcSI | DstDX | String, em_out, outs,
/// …)"): OUTS reads DS:rSI (the segment can be overridden), INS writes ES:rDI (it cannot). The I/O permission check
/// (check_perm_in/out) is X86Emulator.Privilege.cs RequireIoPermission.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>x86.c emulator_pio_in_out / em_in: struct read_cache's "u8 data[1024]" bounds one INS batch.</summary>
    private const int PioReadAheadBytes = 1024;

    private static bool IsStringIo(Mnemonic m) =>
        m is Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd;

    /// <summary>
    /// One step of INS/OUTS. Returns false when a REP is not finished: the caller leaves RIP on the instruction, which
    /// runs again (emulate.c x86_emulate_insn: "goto done; /* skip rip writeback */"), with RFLAGS.RF set — x86_emulate_insn
    /// sets it for every REP string instruction ("if (ctxt-&gt;rep_prefix &amp;&amp; (ctxt-&gt;d &amp; String)) ctxt-&gt;eflags |=
    /// X86_EFLAGS_RF") and clears it only once the instruction completes, so an exit in the middle shows RF = 1 (probed on
    /// Linux 6.18 kvm_pvm by the differential fuzzer: rflags 0x10403 after a REP INSB's MMIO write exit).
    /// </summary>
    private bool StringPortIo(in Instruction i)
    {
        bool output = i.Mnemonic is Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd;
        int size = i.MemorySize.GetSize();
        bool rep = i.HasRepPrefix || i.HasRepePrefix || i.HasRepnePrefix;
        var (counter, _, _) = StringRegisters(AddressSizeOf(i.GetOpKind(output ? 1 : 0)));
        // x86_emulate_insn: "All REP prefixes have the same first termination condition": rCX = 0 ends it first.
        if (rep && ReadReg(counter) == 0) return true;
        ushort port = (ushort)ReadReg(Register.DX);
        // INS/OUTS are intercepted (vmx.c handle_io / svm.c io_interception → kvm_emulate_instruction) and KVM's
        // emulator does their memory accesses, checking no data breakpoint: the hardware raises none for them
        // (EmulatorConfig.X86DataBreakpoints; X86DebugExitTests.Ins_write_raises_no_data_breakpoint_but_a_later_store_does,
        // Outs_read_to_an_in_kernel_device_raises_no_data_breakpoint).
        ulong hitsBefore = _dataHits;
        try
        {
            return output ? StringOut(i, size, rep, port) : StringIn(i, size, rep, port);
        }
        finally
        {
            _dataHits = hitsBefore;
        }
    }

    /// <summary>
    /// OUTS. emulate.c em_out passes one element ("pio_out_emulated(ctxt, ctxt->src.bytes, ctxt->dst.val,
    /// &amp;ctxt->src.val, 1)"), so a REP OUTS to userspace exits once per element with io.count 1. x86.c
    /// x86_emulate_instruction writes the registers back before that exit (rCX decremented, rSI moved), and RIP stays
    /// on the instruction even after the last element (string_insn_completed only checks REPE/REPNE's ZF; the rCX = 0
    /// test is at the next entry). Probed on Linux 6.18 kvm_pvm: rep outsb of 5 bytes exits 5 times, the last with
    /// rcx 0 and rip at the instruction. An in-kernel device (kvm_io_bus_write) takes an element without an exit.
    /// </summary>
    private bool StringOut(in Instruction i, int size, bool rep, ushort port)
    {
        var (counter, si, _) = StringRegisters(AddressSizeOf(i.GetOpKind(1)));
        ulong mask = Alu.Mask(counter.GetSize());
        ulong step = (_cpu.Rflags & RFLAGS_DF) != 0 ? unchecked((ulong)-size) : (ulong)size;
        for (int iterations = 0; ; iterations++)
        {
            if (rep && ReadReg(counter) == 0) return true;
            if (rep && iterations == RepChunk) return false;
            ulong v;
            try
            {
                v = ReadMemory(i.MemorySegment, ReadReg(si), size);
            }
            catch (MmioReadStop) when (iterations > 0)
            {
                return false; // commit what went to in-kernel devices; the next step starts with the MMIO read
            }
            bool inKernel = _kvm.IoBus.Write(KvmMain.KvmBus.Pio, _vcpu, port, size, v);
            WriteReg(si, (ReadReg(si) + step) & mask);
            if (rep) WriteReg(counter, (ReadReg(counter) - 1) & mask);
            if (!inKernel)
            {
                var data = _run.SetIoExit(output: true, size, port);
                for (int b = 0; b < size; b++) data[b] = (byte)(v >> (8 * b));
                _exit = StepOutcome.ExitToUser;
                return !rep;
            }
            if (!rep) return true;
        }
    }

    /// <summary>
    /// INS. emulate.c pio_in_emulated reads ahead "n = min3(in_page, sizeof(rc->data) / size, count)" elements (at
    /// least 1): count is rCX (1 without REP), in_page the bytes from rDI to the end of its page (DF = 0) or rDI's
    /// offset in its page (DF = 1) — the register, not the linear address. A batch userspace answers is one
    /// KVM_EXIT_IO with io.count n (x86.c emulator_pio_in_out "vcpu->run->io.count = count"), registers unchanged at
    /// the exit; complete_emulator_pio_in hands the data back when KVM_RUN re-enters, and the elements go to ES:rDI
    /// (one block for REP with DF = 0, element by element otherwise; the result is the same). The next batch is the
    /// next execution of the instruction. An in-kernel device answering the first element answers the batch
    /// (kvm_io_bus_read per element; one that stops answering later reads as 0). Probed on Linux 6.18 kvm_pvm: rep
    /// insb of 5000 bytes at rdi 0 exits with counts 1024, 1024, 1024, 1024, 904; rep insw 600 with 512, 88; rep insb
    /// 5 at rdi 0xffe with 2, 3; DF = 1 at rdi 0x1000 with 1, 4.
    /// </summary>
    private bool StringIn(in Instruction i, int size, bool rep, ushort port)
    {
        var (counter, _, di) = StringRegisters(AddressSizeOf(i.GetOpKind(0)));
        ulong mask = Alu.Mask(counter.GetSize());
        bool down = (_cpu.Rflags & RFLAGS_DF) != 0;
        ulong step = down ? unchecked((ulong)-size) : (ulong)size;
        ulong page = (ulong)EmulatorConfig.PageSize;
        ulong offsetInPage = _cpu.Gpr[X86Cpu.RDI] & (page - 1);
        ulong inPage = down ? offsetInPage : page - offsetInPage;
        ulong count = rep ? ReadReg(counter) : 1;
        int n = (int)Math.Min(Math.Min(inPage, (ulong)(PioReadAheadBytes / size)), count);
        if (n == 0) n = 1;
        byte[] data = new byte[n * size];
        if (!ReadPioFromDevices(port, size, data))
        {
            if (_pending is not { IsMmio: false } p || p.Length != data.Length || _completionData is not byte[] d)
                throw new PioInStop(port, size, n);
            d.AsSpan(0, data.Length).CopyTo(data);
            _completionData = null;
        }
        if (rep && !down)
        {
            // em_in → pio_in_emulated: "if (ctxt->rep_prefix && (ctxt->d & String) && !(ctxt->eflags &
            // X86_EFLAGS_DF)) { ctxt->dst.type = OP_MEM_STR; ctxt->dst.count = (rc->end - rc->pos) / size; }": the
            // whole batch is one segmented_write at writeback.
            bool toMmio = WriteInsBlock(Linear(Register.ES, ReadReg(di)), data);
            WriteReg(di, (ReadReg(di) + (ulong)data.Length) & mask);
            WriteReg(counter, (ReadReg(counter) - (ulong)n) & mask);
            // x86_emulate_instruction: "else if (vcpu->mmio_needed) { … r = 0; }" with writeback — registers are
            // committed before the exit, and RIP stays on a REP string instruction (string_insn_completed tests only
            // REPE/REPNE; the RCX = 0 test is at its next execution). Without MMIO the batch completes in the kernel.
            return !toMmio && ReadReg(counter) == 0;
        }
        for (int e = 0; e < n; e++)
        {
            ulong v = 0;
            for (int b = 0; b < size; b++) v |= (ulong)data[e * size + b] << (8 * b);
            WriteMemory(Register.ES, ReadReg(di), size, v);
            WriteReg(di, (ReadReg(di) + step) & mask);
            // Element by element (DF = 1), each element is its own x86_emulate_insn (EMULATION_RESTART), and an element
            // written to MMIO ends the run: x86_emulate_instruction tests vcpu->mmio_needed before "r ==
            // EMULATION_RESTART". The elements left in the read-ahead cache are lost: the next execution decodes
            // afresh (init_decode_cache: "ctxt->io_read.pos = 0; ctxt->io_read.end = 0;") and reads a new batch.
            if (rep && _mmioWriteLength > 0)
            {
                WriteReg(counter, (ReadReg(counter) - (ulong)(e + 1)) & mask);
                return false;
            }
        }
        if (!rep) return true;
        WriteReg(counter, (ReadReg(counter) - (ulong)n) & mask);
        return ReadReg(counter) == 0;
    }

    // The pieces of an MMIO write still to exit after the first (x86.c vcpu->mmio_fragments, mmio_cur_fragment).
    private readonly Queue<(ulong Gpa, byte[] Data)> _mmioWritePieces = new();

    /// <summary>
    /// Writes an INS batch to ES:rDI (<paramref name="linear"/>): x86.c emulator_write_emulated → emulator_read_write,
    /// split at a page boundary ("Crossing a page boundary?"), each page by emulator_read_write_onepage. Guest memory
    /// takes its bytes (emulator_write_phys); a page that is not writable memory (no slot, or KVM_MEM_READONLY) goes to
    /// vcpu_mmio_write, which offers it to the in-kernel APIC and KVM_MMIO_BUS 8 bytes at a time ("n = min(len, 8)")
    /// until one is refused; the rest of the page is an MMIO fragment. The first fragment's first 8 bytes are the
    /// KVM_EXIT_MMIO of this instruction (emulator_read_write: "run->mmio.len = min(8u,
    /// vcpu->mmio_fragments[0].len)"); the others follow one exit per KVM_RUN (<see cref="NextMmioWritePiece"/>).
    /// Returns true when an exit is due. No data breakpoint is noted (<see cref="StringPortIo"/>).
    /// </summary>
    private bool WriteInsBlock(ulong linear, byte[] data)
    {
        ulong page = (ulong)EmulatorConfig.PageSize;
        var pieces = new List<(ulong Gpa, byte[] Data)>();
        int done = 0;
        while (done < data.Length)
        {
            ulong at = linear + (ulong)done;
            if (_cpu.Bitness != 64) at &= 0xffff_ffff; // emulator_read_write: "if (ctxt->mode != X86EMUL_MODE_PROT64) addr = (u32)addr"
            int chunk = (int)Math.Min((ulong)(data.Length - done), page - (at & (page - 1)));
            ulong gpa = Translate(at, PageAccess.Write);
            var piece = data.AsSpan(done, chunk);
            var r = _mem.Write(gpa, piece);
            if (r.Status == GpaStatus.MemoryFault) throw new MemoryFaultStop(r);
            if (r.Status == GpaStatus.Mmio)
            {
                int handled = 0;
                while (handled < chunk)
                {
                    int len = Math.Min(8, chunk - handled);
                    var bytes = piece.Slice(handled, len);
                    if (!TryApicMmio(r.Gpa + (ulong)handled, bytes, write: true) && !IoBusTakes(r.Gpa + (ulong)handled, bytes)) break;
                    handled += len;
                }
                // complete_emulated_mmio: "Go forward to the next mmio piece" — 8 bytes per exit.
                for (int at8 = handled; at8 < chunk; at8 += 8)
                    pieces.Add((r.Gpa + (ulong)at8, piece.Slice(at8, Math.Min(8, chunk - at8)).ToArray()));
            }
            done += chunk;
        }
        if (pieces.Count == 0) return false;
        _mmioWritePieces.Clear();
        (_mmioWriteGpa, var first) = pieces[0];
        first.CopyTo(_mmioWriteData, 0);
        _mmioWriteLength = first.Length;
        for (int p = 1; p < pieces.Count; p++) _mmioWritePieces.Enqueue(pieces[p]);
        return true;
    }

    private bool IoBusTakes(ulong gpa, ReadOnlySpan<byte> bytes)
    {
        ulong value = 0;
        for (int b = 0; b < bytes.Length; b++) value |= (ulong)bytes[b] << (8 * b);
        return _kvm.IoBus.Write(KvmMain.KvmBus.Mmio, _vcpu, gpa, bytes.Length, value);
    }

    /// <summary>
    /// complete_emulated_mmio for a write, at the next KVM_RUN: the next piece exits KVM_EXIT_MMIO ("return 0", before
    /// the immediate_exit test); after the last the run goes on ("if (vcpu-&gt;mmio_is_write) return 1"). Returns true
    /// when it set an exit.
    /// </summary>
    public bool NextMmioWritePiece()
    {
        if (!_mmioWritePieces.TryDequeue(out var next)) return false;
        _run.SetMmioExit(next.Gpa, next.Data, next.Data.Length, write: true);
        return true;
    }

    /// <summary>
    /// x86.c emulator_pio_in_out: kvm_io_bus_read for each element; the first one decides whether userspace is asked
    /// ("if (i == 0) goto userspace_io"); a device that stops answering later is read as 0.
    /// </summary>
    private bool ReadPioFromDevices(ushort port, int size, Span<byte> data)
    {
        for (int at = 0; at < data.Length; at += size)
        {
            if (_kvm.IoBus.Read(KvmMain.KvmBus.Pio, _vcpu, port, data.Slice(at, size))) continue;
            if (at == 0) return false;
            data[at..].Clear();
            break;
        }
        return true;
    }

    /// <summary>
    /// INS/OUTS in a TD: a #VE like IN/OUT (<see cref="TdVirtualizationException"/>), its I/O qualification with bit
    /// 4 (string) and bit 5 (REP) set and the port always in DX (Intel SDM Vol. 3C Table 28-5; Linux tdx.c handle_io
    /// refuses string I/O: "if (VE_IS_IO_STRING(ve-&gt;exit_qual)) return -EIO").
    /// </summary>
    private ulong StringIoQualification(in Instruction i) =>
        TdVeInfo.IoQualification(i.MemorySize.GetSize(), input: i.Mnemonic is Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd,
            immediate: false, (ushort)_cpu.Gpr[X86Cpu.RDX], isString: true,
            rep: i.HasRepPrefix || i.HasRepePrefix || i.HasRepnePrefix);
}
