// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Exceptions and software interrupts in real mode, delivered through the IVT (Intel SDM Vol. 3A 20.1.4, Vol. 2A
/// INT n "REAL-ADDRESS-MODE"; arch/x86/kvm/emulate.c __emulate_int_real, x86.c kvm_inject_realmode_interrupt):
/// push FLAGS, CS, IP; clear IF, TF, AC; CS:IP from the 4-byte entry at IDTR.base + 4·vector; never an error code
/// (x86.c kvm_inject_exception: "has_error_code &amp;= is_protmode"). Probed on Linux 6.18 kvm_pvm (C probe, then
/// Conformance/Cases/RealModeInterruptTests.cs), which runs real mode through KVM's instruction emulator:
/// <list type="bullet">
/// <item>A fault (#DE, #UD, #GP, #SS) pushes the IP of the faulting instruction; INT n / INT3 / INTO the IP after it;
/// an injected event (KVM_INTERRUPT, KVM_SET_VCPU_EVENTS) the current IP.</item>
/// <item>INT n's own pushes are limit-checked (a word at SS:0xFFFF → #SS, delivered with the INT's IP); a fault's
/// delivery writes its frame with SP wrapping at 16 bits and no limit check.</item>
/// <item>kvm_pvm ignores IDTR.limit (HostDeviations.KvmPvmRealModeIgnoresIvtLimit) and never finishes INT n for n ≥ 0x80
/// (HostDeviations.KvmPvmRealModeHighSoftwareInterruptsSpin); the emulator follows the SDM there: an entry beyond the
/// limit is #GP, escalating by the double-fault rules (SDM Vol. 3A 6.15 Table 6-5) to a shutdown.</item>
/// <item>UD2 itself stays an emulation failure, as on this host (emulate.c's twobyte_table has no UD2; docs/STATUS.md).</item>
/// </list>
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>RFLAGS.AC (bit 18), cleared by real-mode delivery with IF and TF (emulate.c __emulate_int_real).</summary>
    private const ulong RflagsAc = 1UL << 18;

    /// <summary>INTO (SDM Vol. 2A INT n/INTO/INT3): with OF set, #OF as a software interrupt (IP past INTO); else nothing.</summary>
    private bool TryInterruptOnOverflow(in Instruction i)
    {
        if (i.Mnemonic != Mnemonic.Into) return false;
        if ((_cpu.Rflags & RFLAGS_OF) != 0) throw new GuestFault(OF_VECTOR, software: true);
        return true;
    }

    /// <summary>UD2 in real mode: an emulation failure as on this host (emulate.c twobyte_table 0x0B is N; docs/STATUS.md).</summary>
    private GuestStop InvalidOpcodeStop() => _cpu.ProtectedMode
        ? new GuestFault(UD_VECTOR)
        : new EmulationFailure("UD2 in real mode (KVM's instruction emulator has no UD2)", haveInstructionBytes: true);

    /// <summary>
    /// The real-mode segment limit (emulate.c __linearize, "if (addr.ea > lim) goto bad; … if (size > *max_size) goto
    /// bad" → emulate_ss for SS, else emulate_gp, both with error code 0): an access whose last byte is beyond the
    /// cached limit (0xFFFF after reset) faults.
    /// </summary>
    private void CheckRealModeLimit(Register seg, ulong offset, int size)
    {
        if (_cpu.ProtectedMode || seg == Register.None) return;
        if (offset + (ulong)size - 1 > Segment(seg).limit) throw new GuestFault(seg == Register.SS ? SS_VECTOR : GP_VECTOR, 0);
    }

    /// <summary>Set while a real-mode delivery runs: a stop during it that would deliver again ends in a shutdown.</summary>
    private bool _deliveringRealMode;

    /// <summary>Real-mode delivery of <paramref name="fault"/> with the double-fault rules of SDM Table 6-5.</summary>
    private StepOutcome DeliverRealMode(GuestFault fault)
    {
        // #VC (an SEV-ES/SNP guest's access, X86Emulator.SevEs.cs / .Pvalidate.cs) has no real-mode delivery here: an
        // SEV-ES guest's real mode is outside the subset, an emulation failure as before this file existed.
        if (fault.Vector == VcVector && !fault.Software && !fault.Queued)
        {
            _run.SetEmulationFailure(_fetched.AsSpan(0, _fetchedLength));
            return StepOutcome.ExitToUser;
        }
        // A stop raised by the delivery's own accesses that Stopped() turns into another delivery (e.g. #VC for an
        // unvalidated IVT page): a fault while delivering, KVM_REQ_TRIPLE_FAULT rather than endless recursion.
        if (_deliveringRealMode) return TripleFault();
        _deliveringRealMode = true;
        try
        {
            return DeliverRealModeEscalating(fault);
        }
        finally
        {
            _deliveringRealMode = false;
        }
    }

    private StepOutcome DeliverRealModeEscalating(GuestFault fault)
    {
        // kvm_inject_exception: a real-mode exception pushes no error code, and the queue forgets it had one.
        if (!fault.Software && !fault.Queued) SuppressRealModeErrorCode(_cpu.State);
        var current = fault;
        while (true)
        {
            if (IsFaultClass(current) && !current.Queued && !current.External) _cpu.Rflags |= RFLAGS_RF;
            Save();
            try
            {
                DeliverRealModeOnce(current);
                return StepOutcome.Continue;
            }
            catch (GuestFault next)
            {
                Restore();
                // INT n / INT3 / INTO whose own push faults: that fault is delivered instead, at the INT's IP.
                if (current.Software && !current.Queued && next.Vector == SS_VECTOR)
                {
                    current = QueueGuestFault(next);
                    SuppressRealModeErrorCode(_cpu.State);
                    continue;
                }
                if (FaultDuringDelivery(current, next) is not GuestFault escalated) return TripleFault();
                current = escalated;
            }
            catch (GuestStop stop)
            {
                Restore();
                return Stopped(stop);
            }
        }
    }

    /// <summary>One attempt: the IVT entry (beyond IDTR.limit → #GP(0), SDM INT n), the frame, then CS:IP.</summary>
    private void DeliverRealModeOnce(GuestFault f)
    {
        if ((ulong)f.Vector * 4 + 3 > _cpu.Sregs.idt.limit) throw new GuestFault(GP_VECTOR, 0);
        ulong entry = ReadMemoryLinear(_cpu.Sregs.idt.@base + (ulong)f.Vector * 4, 4);
        bool instruction = f.Software && !f.Queued;
        ulong ip = (instruction ? _cpu.Rip + (ulong)_fetchedLength : _cpu.Rip) & 0xffff;
        ulong flags = _cpu.Rflags & 0xffff;
        if (instruction)
        {
            // em_int → __emulate_int_real → em_push: segmented writes, limit-checked (CheckRealModeLimit).
            Push(flags, 2);
            Push(_cpu.Sregs.cs.selector, 2);
            Push(ip, 2);
        }
        else
        {
            PushUnchecked(flags);
            PushUnchecked(_cpu.Sregs.cs.selector);
            PushUnchecked(ip);
        }
        _cpu.Rflags &= ~(RFLAGS_IF | RFLAGS_TF | RflagsAc);
        ushort seg = (ushort)(entry >> 16);
        _cpu.Sregs.cs.selector = seg;
        _cpu.Sregs.cs.@base = (ulong)seg << 4;
        _cpu.Rip = entry & 0xffff;
    }

    /// <summary>A frame word of an event's delivery on this host: SP wraps at the stack size, no limit check.</summary>
    private void PushUnchecked(ulong value)
    {
        ulong sp = (ReadStackPointer() - 2) & Alu.Mask(StackAddressSize);
        Span<byte> b = stackalloc byte[2];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)value);
        SystemWrite(_cpu.Sregs.ss.@base + sp, b);
        WriteStackPointer(sp);
    }
}
