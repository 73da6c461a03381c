// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.Mmu;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// Exception and interrupt delivery. Long mode goes through the 64-bit IDT (Intel SDM Vol. 3A 6.14); a fault while
/// delivering escalates by the double-fault rules (SDM Vol. 3A 6.15 "Interrupt 8", Table 6-5; KVM's
/// kvm_multiple_exception), and a fault while delivering #DF is a triple fault: KVM_REQ_TRIPLE_FAULT →
/// KVM_EXIT_SHUTDOWN with RIP on the faulting instruction. In long mode a gate to an inner ring switches to the
/// TSS's RSPn (a fault at CPL 3 reaching a ring-0 handler); in 32-bit protected mode only same-privilege delivery is
/// emulated, a change to an inner ring ends in an emulation failure. IST stacks are modelled (64-bit TSS at TR.base). 32-bit protected mode goes through 16- and 32-bit interrupt and
/// trap gates the same way (SDM 6.12; task gates are not emulated); real mode through the IVT (X86Emulator.RealModeEvents.cs).
/// </summary>
internal sealed partial class X86Emulator
{
    private enum ExceptionClass { Benign, Contributory, PageFault, DoubleFault }

    /// <summary>SDM Vol. 3A Table 6-4 (kvm exception_class()): #DE #TS #NP #SS #GP contributory, #PF its own class.</summary>
    private static ExceptionClass ClassOf(GuestFault f) => f.Software || f.External ? ExceptionClass.Benign : f.Vector switch
    {
        DE_VECTOR or TS_VECTOR or NP_VECTOR or SS_VECTOR or GP_VECTOR => ExceptionClass.Contributory,
        PF_VECTOR => ExceptionClass.PageFault,
        DF_VECTOR => ExceptionClass.DoubleFault,
        _ => ExceptionClass.Benign,
    };

    /// <summary>Exceptions that push an error code (SDM Vol. 3A 6.15): #DF #TS #NP #SS #GP #PF #AC.</summary>
    private static bool PushesErrorCode(GuestFault f) => f.Queued ? f.ErrorCodeValid :
        !f.Software && !f.External && f.Vector is DF_VECTOR or TS_VECTOR or NP_VECTOR or SS_VECTOR or GP_VECTOR or PF_VECTOR or 17
            or 29; // #VC (AMD APM Vol. 2, 15.35.5: the error code is the exit code; X86Emulator.SevEs.cs)

    /// <summary>
    /// arch/x86/kvm/x86.h exception_type(): #DB/#BP/#OF (and software INT n) are traps; #DF is an abort; the rest are
    /// faults. Injecting a fault sets RFLAGS.RF first (x86.c kvm_inject_exception → __kvm_set_rflags(… | RF)), so the
    /// pushed image — and the state after a triple fault — carries RF.
    /// </summary>
    private static bool IsFaultClass(GuestFault f) => !f.Software && f.Vector is not (DB_VECTOR or BP_VECTOR or OF_VECTOR or DF_VECTOR);

    private StepOutcome DeliverException(GuestFault fault)
    {
        // Real mode: through the IVT (X86Emulator.RealModeEvents.cs).
        if (!_cpu.ProtectedMode) return DeliverRealMode(fault);
        bool longMode = _cpu.LongModeActive;
        var current = fault;
        bool keepCr2 = false;
        while (true)
        {
            // CR2 is loaded before delivery starts and stays loaded if delivery fails (kvm_deliver_exception_payload).
            if (current.Vector == PF_VECTOR && !current.Software && !current.Queued && !keepCr2) _cpu.Sregs.cr2 = current.Address;
            if (IsFaultClass(current) && !current.Queued && !current.External) _cpu.Rflags |= RFLAGS_RF;
            Save();
            try
            {
                try
                {
                    if (longMode) Deliver64(current);
                    else Deliver32(current);
                }
                catch (MemoryFaultStop t) when (t.Result.TdPending && !TdSeptVeDisabled)
                {
                    throw TdPendingFault(t.Result); // the delivery touched a TD's PENDING page (X86Emulator.TdxModule.cs)
                }
                return StepOutcome.Continue;
            }
            catch (GuestFault next)
            {
                Restore();
                keepCr2 = false;
                if (_kvm.Kernel.Config.X86FramePushFaultLeavesCr2 && IsFramePushFault(next) && !current.Software)
                {
                    // kvm_pvm (HostDeviations.KvmPvmDoubleFaultFromAFramePushLeavesCr2, observed): a #PF pushing the frame
                    // loads no CR2; pushing an exception's frame it is #DF(0) at once, pushing an interrupt's it is delivered.
                    // (INT n is not covered: on kvm_pvm it fails on its own, HostDeviations.KvmPvmSoftwareInterruptsFail.)
                    if (!current.External)
                    {
                        if (current.Vector == DF_VECTOR) return TripleFault();
                        current = new GuestFault(DF_VECTOR);
                        continue;
                    }
                    keepCr2 = true;
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

    /// <summary>
    /// SDM Vol. 3A Table 6-5 (kvm_multiple_exception): <paramref name="next"/> was raised while delivering
    /// <paramref name="current"/>. A fault while delivering #DF → null (shutdown, <see cref="TripleFault"/>); contributory
    /// after contributory, or anything but benign after #PF → #DF(0); otherwise the second exception is delivered
    /// serially. Protected-mode and real-mode delivery escalate by this one rule.
    /// </summary>
    private static GuestFault? FaultDuringDelivery(GuestFault current, GuestFault next)
    {
        var first = ClassOf(current);
        if (first == ExceptionClass.DoubleFault) return null;
        var second = ClassOf(next);
        return (first == ExceptionClass.Contributory && second == ExceptionClass.Contributory) ||
               (first == ExceptionClass.PageFault && second != ExceptionClass.Benign)
            ? new GuestFault(DF_VECTOR)
            : next;
    }

    /// <summary>
    /// A page fault on a write during delivery: the only writes delivery makes are the frame's pushes (gate, descriptor
    /// and TSS accesses read), so this is a frame that could not be pushed (error code W, SDM Vol. 3A 4.7).
    /// </summary>
    private static bool IsFramePushFault(GuestFault f) => f.Vector == PF_VECTOR && !f.Software && (f.ErrorCode & 2) != 0;

    /// <summary>KVM_REQ_TRIPLE_FAULT: KVM_EXIT_SHUTDOWN, the vCPU state as it was before the failed delivery.</summary>
    private StepOutcome TripleFault()
    {
        _run.ExitReason = (uint)Abi.KvmExitReason.KVM_EXIT_SHUTDOWN;
        return StepOutcome.ExitToUser;
    }

    /// <summary>
    /// One delivery attempt through the 64-bit IDT (SDM Vol. 3A 6.14.1 gates, 6.14.2 frame, 6.12.1 checks). Throws the
    /// fault the attempt itself raises; the caller applies the double-fault rules.
    /// </summary>
    private void Deliver64(GuestFault f)
    {
        int ext = f.Software ? 0 : 1;
        // Error code of a fault on the gate: IDT bit (1) set, index = vector (SDM Vol. 3A 6.13, Figure 6-6).
        int idtError = (f.Vector << 3) | 2 | ext;
        if ((ulong)f.Vector * 16 + 15 > _cpu.Sregs.idt.limit) throw new GuestFault(GP_VECTOR, idtError);
        Span<byte> gate = stackalloc byte[16];
        SystemRead(_cpu.Sregs.idt.@base + (ulong)f.Vector * 16, gate);
        ulong low = BinaryPrimitives.ReadUInt64LittleEndian(gate);
        ulong high = BinaryPrimitives.ReadUInt64LittleEndian(gate[8..]);
        int type = (int)(low >> 40) & 0xf;
        int gateDpl = (int)(low >> 45) & 3;
        // Only 64-bit interrupt (0xE) and trap (0xF) gates are valid in the IDT in IA-32e mode (SDM 6.14.1).
        if (type is not (0xE or 0xF)) throw new GuestFault(GP_VECTOR, idtError);
        // INT n / INT3 check the gate's DPL against the CPL; exceptions do not (SDM 6.12.1.1).
        if (f.Software && gateDpl < _cpu.Cpl) throw new GuestFault(GP_VECTOR, idtError);
        if ((low & (1UL << 47)) == 0) throw new GuestFault(NP_VECTOR, idtError);
        ushort selector = (ushort)(low >> 16);
        int ist = (int)(low >> 32) & 7;
        ulong target = (low & 0xffff) | ((low >> 32) & 0xffff_0000) | (high << 32);

        var cs = LoadGateCodeSegment(selector, ext);
        // A handler in an inner ring (a fault at CPL 3, e.g. CPUID with CPUID faulting on; not a conforming segment)
        // switches stacks: RSPn of the 64-bit TSS (offset 4 + 8·n) unless the gate names an IST, and SS becomes the NULL
        // selector with RPL = the new CPL (SDM Vol. 3A 6.14.4).
        bool inner = cs.dpl < _cpu.Cpl && (cs.type & 4) == 0;
        if (!IsCanonical(target)) throw new GuestFault(GP_VECTOR, ext);

        ulong oldRsp = _cpu.Gpr[X86Cpu.RSP];
        // IST: the stack pointer comes from the 64-bit TSS (IST1 at offset 0x24), else the current RSP; either way it
        // is aligned down to 16 bytes before the frame is pushed (SDM 6.14.2, 6.14.5).
        ulong rsp = ist != 0 ? ReadTssQword(0x24 + (ulong)(ist - 1) * 8) : inner ? ReadTssQword(4 + (ulong)cs.dpl * 8) : oldRsp;
        rsp &= ~0xfUL;
        ulong returnRip = f.Software ? _cpu.Rip + (ulong)_fetchedLength : _cpu.Rip;
        bool error = PushesErrorCode(f);
        int count = error ? 6 : 5;
        ulong frame = rsp - (ulong)count * 8;
        if (!IsCanonical(frame) || !IsCanonical(rsp - 1)) throw new GuestFault(SS_VECTOR, ext);
        Span<byte> bytes = stackalloc byte[6 * 8];
        var q = bytes[..(count * 8)];
        int at = 0;
        if (error) { BinaryPrimitives.WriteUInt64LittleEndian(q[at..], (ulong)(uint)f.ErrorCode); at += 8; }
        BinaryPrimitives.WriteUInt64LittleEndian(q[at..], returnRip);
        BinaryPrimitives.WriteUInt64LittleEndian(q[(at + 8)..], _cpu.Sregs.cs.selector);
        BinaryPrimitives.WriteUInt64LittleEndian(q[(at + 16)..], _cpu.Rflags | HostSingleStepTf);
        BinaryPrimitives.WriteUInt64LittleEndian(q[(at + 24)..], oldRsp);
        BinaryPrimitives.WriteUInt64LittleEndian(q[(at + 32)..], _cpu.Sregs.ss.selector);
        // Pushed from the top down (SS first), so a fault reports the highest qword that could not be written in CR2.
        for (int k = count - 1; k >= 0; k--) SystemWrite(frame + (ulong)k * 8, q.Slice(k * 8, 8));

        _cpu.Gpr[X86Cpu.RSP] = frame;
        if (inner) _cpu.Sregs.ss = new Abi.kvm_segment { selector = cs.dpl, dpl = cs.dpl, unusable = 1, db = 1, s = 1, type = 3 };
        cs.selector = (ushort)((selector & ~3) | _cpu.Cpl);
        _cpu.Sregs.cs = cs;
        _cpu.Rip = target;
        // After saving RFLAGS: TF, VM, RF, NT cleared; an interrupt gate also clears IF (SDM 6.12.1.3).
        ulong flags = _cpu.Rflags & ~(RFLAGS_TF | RFLAGS_VM | RFLAGS_RF | RFLAGS_NT);
        if (type == 0xE) flags &= ~RFLAGS_IF;
        _cpu.Rflags = flags;
    }

    /// <summary>
    /// One delivery attempt through the legacy IDT of 32-bit protected mode (SDM Vol. 3A 6.10–6.12, Figures 6-2 and
    /// 6-4): 8-byte task (not emulated), 16-bit and 32-bit interrupt/trap gates; same privilege only, so the frame is
    /// [error code,] EIP, CS, EFLAGS on the current stack, each as wide as the gate.
    /// </summary>
    private void Deliver32(GuestFault f)
    {
        int ext = f.Software ? 0 : 1;
        int idtError = (f.Vector << 3) | 2 | ext;
        if ((ulong)f.Vector * 8 + 7 > _cpu.Sregs.idt.limit) throw new GuestFault(GP_VECTOR, idtError);
        Span<byte> gate = stackalloc byte[8];
        SystemRead((_cpu.Sregs.idt.@base + (ulong)f.Vector * 8) & 0xffff_ffff, gate);
        ulong low = BinaryPrimitives.ReadUInt64LittleEndian(gate);
        int type = (int)(low >> 40) & 0xf;
        int gateDpl = (int)(low >> 45) & 3;
        if (type == 0x5) throw new EmulationFailure("exception delivery through a task gate", haveInstructionBytes: _fetchedLength > 0);
        if (type is not (0x6 or 0x7 or 0xE or 0xF)) throw new GuestFault(GP_VECTOR, idtError);
        if (f.Software && gateDpl < _cpu.Cpl) throw new GuestFault(GP_VECTOR, idtError);
        if ((low & (1UL << 47)) == 0) throw new GuestFault(NP_VECTOR, idtError);
        int size = (type & 8) != 0 ? 4 : 2;
        ushort selector = (ushort)(low >> 16);
        ulong target = (low & 0xffff) | (size == 4 ? (low >> 32) & 0xffff_0000 : 0);

        var cs = LoadLegacyGateCodeSegment(selector, ext);
        if (cs.dpl < _cpu.Cpl)
            throw new EmulationFailure("exception delivery to an inner privilege level", haveInstructionBytes: _fetchedLength > 0);
        if (target > cs.limit) throw new GuestFault(GP_VECTOR, ext);
        ulong returnIp = f.Software ? _cpu.Rip + (ulong)_fetchedLength : _cpu.Rip;
        Push(_cpu.Rflags & Alu.Mask(size), size);
        Push(_cpu.Sregs.cs.selector, size);
        Push(returnIp & Alu.Mask(size), size);
        if (PushesErrorCode(f)) Push((uint)f.ErrorCode & Alu.Mask(size), size);

        cs.selector = (ushort)((selector & ~3) | _cpu.Cpl);
        _cpu.Sregs.cs = cs;
        _cpu.Rip = target;
        ulong flags = _cpu.Rflags & ~(RFLAGS_TF | RFLAGS_VM | RFLAGS_RF | RFLAGS_NT);
        if ((type & 1) == 0) flags &= ~RFLAGS_IF;
        _cpu.Rflags = flags;
    }

    /// <summary>A legacy gate's code segment: null → #GP(EXT), not code → #GP(selector|EXT), absent → #NP.</summary>
    private Abi.kvm_segment LoadLegacyGateCodeSegment(ushort selector, int ext)
    {
        int error = (selector & 0xfffc) | ext;
        if ((selector & 0xfffc) == 0) throw new GuestFault(GP_VECTOR, ext);
        var seg = SegmentDescriptor.Decode(ReadDescriptor(selector, error), selector);
        if (seg.s == 0 || (seg.type & 8) == 0) throw new GuestFault(GP_VECTOR, error);
        if (seg.present == 0) throw new GuestFault(NP_VECTOR, error);
        return seg;
    }

    /// <summary>The gate's code segment (SDM 6.12.1.1): null → #GP(EXT), bad → #GP(selector|EXT), absent → #NP.</summary>
    private Abi.kvm_segment LoadGateCodeSegment(ushort selector, int ext)
    {
        int error = (selector & 0xfffc) | ext;
        if ((selector & 0xfffc) == 0) throw new GuestFault(GP_VECTOR, ext);
        ulong raw = ReadDescriptor(selector, error);
        var seg = SegmentDescriptor.Decode(raw, selector);
        // A 64-bit code segment: S=1, type code (bit 3), L=1 and D=0.
        if (seg.s == 0 || (seg.type & 8) == 0 || seg.l == 0 || seg.db != 0) throw new GuestFault(GP_VECTOR, error);
        if (seg.present == 0) throw new GuestFault(NP_VECTOR, error);
        return seg;
    }

    /// <summary>A qword of the 64-bit TSS at TR.base (SDM Vol. 3A 8.7, Figure 8-11).</summary>
    private ulong ReadTssQword(ulong offset)
    {
        if (offset + 7 > _cpu.Sregs.tr.limit) throw new GuestFault(TS_VECTOR, (_cpu.Sregs.tr.selector & 0xfffc) | 1);
        Span<byte> b = stackalloc byte[8];
        SystemRead(_cpu.Sregs.tr.@base + offset, b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private ulong ReadMemoryLinear(ulong linear, int size)
    {
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        SystemRead(linear, b[..size]);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private static bool IsCanonical(ulong linear) => (ulong)((long)(linear << 16) >> 16) == linear;

    private void SystemRead(ulong linear, Span<byte> data) => SystemAccess(linear, data, write: false);

    private void SystemWrite(ulong linear, Span<byte> data) => SystemAccess(linear, data, write: true);

    /// <summary>
    /// An implicit supervisor access (descriptor tables, TSS, exception frames), split at pages. Such structures in
    /// emulated MMIO are not emulated: an emulation failure rather than a half-delivered exception.
    /// </summary>
    private void SystemAccess(ulong linear, Span<byte> data, bool write)
    {
        ulong page = (ulong)EmulatorConfig.PageSize;
        int done = 0;
        while (done < data.Length)
        {
            ulong at = linear + (ulong)done;
            if (_cpu.Bitness != 64 && !_cpu.LongModeActive) at &= 0xffff_ffff;
            int chunk = (int)Math.Min((ulong)(data.Length - done), page - (at & (page - 1)));
            ulong gpa = TranslateAs(at, write ? PageAccess.Write : PageAccess.Read);
            var piece = data.Slice(done, chunk);
            var r = write ? _mem.Write(gpa, piece) : _mem.Read(gpa, piece);
            if (r.Status == GpaStatus.MemoryFault) throw new MemoryFaultStop(r);
            if (r.Status == GpaStatus.Mmio)
                throw new EmulationFailure("descriptor table, TSS or exception frame in emulated MMIO", haveInstructionBytes: true);
            done += chunk;
        }
    }
}
