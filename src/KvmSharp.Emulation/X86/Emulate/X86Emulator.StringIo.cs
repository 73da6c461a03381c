// SPDX-License-Identifier: MIT
using Iced.Intel;
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
    /// runs again (emulate.c x86_emulate_insn: "goto done; /* skip rip writeback */").
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
        return output ? StringOut(i, size, rep, port) : StringIn(i, size, rep, port);
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
        for (int e = 0; e < n; e++)
        {
            ulong v = 0;
            for (int b = 0; b < size; b++) v |= (ulong)data[e * size + b] << (8 * b);
            WriteMemory(Register.ES, ReadReg(di), size, v);
            WriteReg(di, (ReadReg(di) + step) & mask);
        }
        if (!rep) return true;
        WriteReg(counter, (ReadReg(counter) - (ulong)n) & mask);
        return ReadReg(counter) == 0;
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
