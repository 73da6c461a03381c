// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using Iced.Intel;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>What one emulated instruction asks of KVM_RUN: go on, or return <see cref="Rc"/> (0 or -errno).</summary>
internal readonly record struct StepOutcome(bool Exit, long Rc = 0)
{
    public static StepOutcome Continue => default;

    public static StepOutcome ExitToUser => new(true, 0);
}

/// <summary>
/// Runs guest code one instruction at a time: the emulated vCPU's "hardware", in the role of
/// arch/x86/kvm/emulate.c x86_emulate_insn. Instructions are decoded with Iced from bytes fetched through the guest
/// MMU (real mode: CS base + IP; long mode: a 4-level page walk), executed on <see cref="X86Cpu"/>, and every
/// memory operand goes through the same guest-physical path. Port I/O, MMIO, HLT, faults and emulation failures
/// become kvm_run exits. An instruction that stops early (MMIO read, IN) is undone and re-executed on the next
/// KVM_RUN with userspace's data, the way KVM completes emulated I/O (complete_emulated_pio/mmio).
/// </summary>
internal sealed partial class X86Emulator
{
    private const int MaxInstructionLength = 15;

    private readonly X86Cpu _cpu;
    private readonly KvmVcpu _vcpu;
    private readonly Kvm _kvm;
    private readonly GuestPhysicalMemory _mem;
    private readonly KvmRunPage _run;
    private readonly InstructionBytes _reader = new();
    private readonly Decoder _decoder16, _decoder32, _decoder64;
    private readonly byte[] _fetched = new byte[MaxInstructionLength];
    private int _fetchedLength;

    // Undo log for one instruction (registers only; memory is written in program order). The 312-byte kvm_sregs is
    // copied only when the decoded instruction may write it (X86Emulator.Rollback.cs, _sregsSaved).
    private readonly ulong[] _savedGpr = new ulong[16];
    private ulong _savedRip, _savedRflags;
    private Abi.kvm_sregs _savedSregs;
    private bool _sregsSaved;

    // Completion data userspace supplied for a restarted instruction.
    private PendingIo? _pending;
    private byte[]? _completionData;

    // The MMIO write the current instruction made (one access, at most two page fragments: the second starts at
    // _mmioWriteSplit, 0 when there is none); reported once the instruction committed (X86Emulator.MmioFragments.cs).
    private ulong _mmioWriteGpa, _mmioWriteGpa2;
    private byte[] _mmioWriteData = new byte[16];
    private int _mmioWriteLength, _mmioWriteSplit;

    public X86Emulator(KvmVcpu vcpu, X86Cpu cpu, GuestPhysicalMemory mem, KvmRunPage run)
    {
        _vcpu = vcpu;
        _kvm = vcpu.Kvm;
        _cpu = cpu;
        _mem = mem;
        _run = run;
        _decoder16 = Decoder.Create(16, _reader);
        _decoder32 = Decoder.Create(32, _reader);
        _decoder64 = Decoder.Create(64, _reader);
    }

    /// <summary>True when the last exit waits for userspace's data (IN, MMIO read) before the instruction can finish.</summary>
    public bool HasPendingCompletion => _pending is not null;

    /// <summary>
    /// complete_userspace_io: take the data userspace left in kvm_run for the interrupted instruction. The caller then
    /// re-executes that instruction, which consumes it.
    /// </summary>
    public void CaptureCompletion()
    {
        if (_pending is not PendingIo p) return;
        var source = p.IsMmio ? _run.MmioData(p.Length) : _run.IoData(p.Length);
        _completionData = source.ToArray();
    }

    /// <summary>Executes one instruction.</summary>
    public StepOutcome Step()
    {
        SaveRegisters(); // kvm_sregs too once the instruction is decoded, unless it writes only GPRs (ExecuteOne)
        if (VerifyRollback) _verifySregs = _cpu.Sregs;
        _mmioWriteLength = 0;
        _mmioWriteSplit = 0;
        try
        {
            ExecuteOne();
            if (VerifyRollback) CheckSregsUntouched();
            // An instruction completed: the interrupt shadow it ran in ends, and STI (with IF clear before) or MOV SS
            // starts a new one over the next instruction (Events.cs; x86.c toggle_interruptibility).
            _cpu.State.InterruptShadow = _shadowAfter;
            _pending = null;
            _completionData = null;
            _mmioRead = null;
            // x86.c vcpu_mmio_write → kvm_io_bus_write(KVM_MMIO_BUS): a write an ioeventfd takes completes in the kernel.
            if (_mmioWriteLength > 0 && ExitForMmioWrite()) return StepOutcome.ExitToUser;
            return AfterInstruction(_exit); // KVM_GUESTDBG_SINGLESTEP (X86Emulator.GuestDebug.cs)
        }
        catch (GuestStop stop)
        {
            if (VerifyRollback) CheckSregsUntouched();
            Restore();
            return Stopped(stop);
        }
        finally
        {
            _exit = StepOutcome.Continue;
            _shadowAfter = 0;
        }
    }

    // Set by instructions that end the run after committing (OUT, HLT).
    private StepOutcome _exit;

    // The interrupt shadow the executing instruction leaves for the next one (KVM_X86_SHADOW_INT_STI / MOV_SS).
    private byte _shadowAfter;

    /// <summary>
    /// x86.c toggle_interruptibility: "if (int_shadow &amp; mask) mask = 0" — an STI (MOV SS) executed in the shadow of
    /// an STI (MOV SS) leaves none ("an sti; sti; sequence only disable interrupts for the first instruction"). Probed
    /// on Linux 6.18 kvm_pvm: sti; sti; mov ax,[mmio] exits with shadow 0.
    /// </summary>
    private byte ToggledShadow(byte mask) => (_cpu.State.InterruptShadow & mask) != 0 ? (byte)0 : mask;

    private StepOutcome Stopped(GuestStop stop)
    {
        switch (stop)
        {
            case MmioReadStop m:
                _pending = new PendingIo(true, m.Length);
                _completionData = null;
                _run.SetMmioExit(m.Gpa, default, m.Length, write: false);
                return StepOutcome.ExitToUser;
            case PioInStop p:
                _pending = new PendingIo(false, p.Size * p.Count);
                _completionData = null;
                _run.SetIoExit(output: false, p.Size, p.Port, p.Count).Clear();
                return StepOutcome.ExitToUser;
            case MemoryFaultStop { Result.TdPending: true } t:
                return TdPendingAccess(t.Result); // a TD's access to a PENDING page (X86Emulator.TdxModule.cs)
            case MemoryFaultStop { Result.SnpRmpNpf: true }:
                return StepOutcome.Continue; // RMP #NPF KVM does not resolve: the instruction runs again (SnpRmpVmpl.cs)
            case MemoryFaultStop { Result.SnpUnvalidated: true }:
                return SnpUnvalidatedAccess(); // an SNP guest's access to an unvalidated page: #VC 0x404 (X86Emulator.Pvalidate.cs)
            case MemoryFaultStop f:
                if (!f.Result.NoExit) _run.SetMemoryFault(f.Result.Gpa, (ulong)EmulatorConfig.PageSize, f.Result.Private, f.Result.IsUserfault);
                return new StepOutcome(true, f.Result.Errno);
            case EmulationFailure e:
                _run.SetEmulationFailure(e.HaveInstructionBytes ? _fetched.AsSpan(0, _fetchedLength) : default);
                return StepOutcome.ExitToUser;
            case GuestFault g:
                return DeliverException(QueueGuestFault(g)); // through vcpu->arch.exception, as here (Events.cs)
            default:
                _run.SetEmulationFailure(default);
                return StepOutcome.ExitToUser;
        }
    }

    /// <summary>The whole undo log, kvm_sregs included (event delivery, which loads CS/SS and may fault part-way).</summary>
    private void Save()
    {
        SaveRegisters();
        SaveSregs();
    }

    /// <summary>GPRs, RIP and RFLAGS: the part of the undo log every instruction needs.</summary>
    private void SaveRegisters()
    {
        _cpu.Gpr.AsSpan(0, 16).CopyTo(_savedGpr.AsSpan(0, 16)); // a constant length: copied inline, no Memmove call
        _savedRip = _cpu.Rip;
        _savedRflags = _cpu.Rflags;
        _sregsSaved = false;
    }

    private void SaveSregs()
    {
        _savedSregs = _cpu.Sregs;
        _sregsSaved = true;
    }

    private void Restore()
    {
        _savedGpr.AsSpan().CopyTo(_cpu.Gpr);
        _cpu.Rip = _savedRip;
        _cpu.Rflags = _savedRflags;
        if (_sregsSaved) _cpu.Sregs = _savedSregs;
    }

    /// <summary>
    /// Fetches and decodes the instruction at CS:RIP: <see cref="TryFetchRepeat"/> when it is the common case it covers
    /// (X86Emulator.FetchFast.cs), else <see cref="FetchFull"/>. Sets <see cref="_fetchedWritesOnlyGprs"/>.
    /// </summary>
    private Instruction Fetch()
    {
        if (TryFetchRepeat(out var instr)) return instr;
        return FetchFull();
    }

    /// <summary>The whole fetch: translation, the bytes of one or two pages, Iced unless the decode cache has them.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Instruction FetchFull()
    {
        int bitness = _cpu.Bitness;
        ulong ip = bitness == 64 ? _cpu.Rip : bitness == 32 ? (uint)_cpu.Rip : (ushort)_cpu.Rip;
        ulong linear = bitness == 64 ? ip : (uint)(_cpu.Sregs.cs.@base + ip);
        _fetchedLength = 0;
        // A fetch from a non-canonical RIP is #GP(0) (SDM Vol. 3A 3.3.7.1; AMD APM Vol. 3 SYSRET: the #GP of a
        // non-canonical RCX is taken at CPL 3, X86Emulator.SystemCall.cs).
        if (bitness == 64 && !IsCanonical(ip)) throw new GuestFault(X86Consts.GP_VECTOR);
        GuestStop? secondPageFailure = null;
        int page = s_pageSize;
        int first = (int)Math.Min((ulong)MaxInstructionLength, (ulong)page - (linear & (ulong)(page - 1)));
        FetchChunk(linear, first);
        if (first < MaxInstructionLength)
        {
            try
            {
                FetchChunk(linear + (ulong)first, MaxInstructionLength - first);
            }
            catch (GuestStop stop)
            {
                secondPageFailure = stop;
            }
        }
        // The same bytes at the same IP decode the same: Iced runs only for new ones (X86Emulator.DecodeCache.cs).
        if (!TryDecoded(ip, bitness, out var instr))
        {
            _reader.Reset(_fetched, _fetchedLength);
            var decoder = bitness == 64 ? _decoder64 : bitness == 32 ? _decoder32 : _decoder16;
            decoder.IP = ip;
            decoder.Decode(out instr);
            if (decoder.LastError == DecoderError.NoMoreBytes && secondPageFailure is not null) throw secondPageFailure;
            if (instr.Code == Code.INVALID) throw new GuestFault(X86Consts.UD_VECTOR);
            if (decoder.LastError == DecoderError.None) RememberDecoded(ip, bitness, instr);
        }
        _fetchedLength = instr.Length;
        _fetchedWritesOnlyGprs = WritesOnlyGprs(instr);
        return instr;
    }

    private void FetchChunk(ulong linear, int length)
    {
        ulong gpa = Translate(linear, PageAccess.Fetch);
        var r = ReadCode(gpa, _fetched.AsSpan(_fetchedLength, length)); // _mem.Read (X86Emulator.DecodeCache.cs)
        switch (r.Status)
        {
            case GpaStatus.Done:
                _fetchedLength += length;
                return;
            case GpaStatus.Mmio:
                // Instruction fetch from emulated MMIO: KVM cannot emulate it (x86_decode_insn fails).
                throw new EmulationFailure("instruction fetch from a GPA without a memslot", haveInstructionBytes: false);
            default:
                throw new MemoryFaultStop(r);
        }
    }

    /// <summary>Guest linear → guest physical for the current paging mode; a CPL 3 access is a user access.</summary>
    private ulong Translate(ulong linear, PageAccess access) =>
        TranslateAs(linear, _cpu.Cpl == 3 ? access | PageAccess.User : access);

    /// <summary>
    /// The walk itself, with the user bit as given: implicit supervisor accesses (IDT, GDT, TSS, the stack of an
    /// exception frame) pass it clear whatever the CPL (Intel SDM Vol. 3A 4.6, "implicit supervisor-mode access").
    /// </summary>
    private ulong TranslateAs(ulong linear, PageAccess access)
    {
        _lastLinear = linear; // a TD #VE's GLA and access type (X86Emulator.TdxModule.cs)
        _lastAccess = access;
        // SEV/SEV-ES/SNP: the GPA carries the C-bit when the access is encrypted (GuestPhysicalMemory.EncryptionMask,
        // 0 for other VM types). AMD APM Vol. 2, 15.34.5: with paging off every access is encrypted, and instruction
        // fetches always are, whatever the leaf's C-bit; the walk reads its tables encrypted (PageWalk64.Walk).
        ulong cbit = _mem.EncryptionMask;
        if (!_cpu.Paging) return linear | cbit;
        // A walk of the page is reused when every entry it read is unchanged (X86Emulator.WalkReuse.cs).
        if (_cpu.LongModeActive) return TranslateLong(linear, access, cbit);
        var w = _cpu.LongModeActive
            ? PageWalk64.Walk(_mem, _cpu.Sregs.cr3, linear, access,
                wp: (_cpu.Sregs.cr0 & X86Consts.CR0_WP) != 0, nxe: (_cpu.Sregs.efer & X86Consts.EFER_NX) != 0, CurrentWalkRules())
            : WalkLegacy(linear, access); // 32-bit or PAE paging (X86Emulator.LegacyPaging.cs)
        if (w.TableReadFailed) throw new MemoryFaultStop(w.TableAccess);
        if (w.IsPageFault) throw new GuestFault(X86Consts.PF_VECTOR, w.PageFaultErrorCode, linear);
        return (access & PageAccess.Fetch) != 0 ? w.Gpa | cbit : w.Gpa;
    }

    private WalkRules _walkRules = WalkRules.NoCpuid;
    private int _walkRulesGeneration = -1;

    /// <summary>
    /// The page walk's CPUID-dependent rules, recomputed when KVM_SET_CPUID2 changed the table (kvm_mmu_after_set_cpuid
    /// resets the guest MMU's reserved-bit masks). GBPAGES needs the guest's bit and KVM's (guest_cpu_cap_has).
    /// </summary>
    private WalkRules CurrentWalkRules() =>
        _cpu.Cpuid.Generation == _walkRulesGeneration ? _walkRules : RecomputeWalkRules();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private WalkRules RecomputeWalkRules()
    {
        var cpuid = _cpu.Cpuid;
        _walkRules = new WalkRules(_mem.MaxPhyAddr(cpuid.MaxPhyAddr),
            cpuid.HasGbPages && _kvm.Kernel.Config.X86Cpu.OffersGbPages, cpuid.IsAmdCompatible);
        _walkRulesGeneration = cpuid.Generation;
        return _walkRules;
    }

    private readonly record struct PendingIo(bool IsMmio, int Length);

    /// <summary>
    /// An IN (or an INS batch of <paramref name="count"/> elements) without data yet: exit KVM_EXIT_IO (direction IN)
    /// and re-execute with userspace's data.
    /// </summary>
    private sealed class PioInStop(ushort port, int size, int count = 1) : GuestStop($"IN from port 0x{port:X}")
    {
        public ushort Port { get; } = port;

        public int Size { get; } = size;

        public int Count { get; } = count;
    }

    /// <summary>Iced's byte source: the bytes fetched for the current instruction.</summary>
    private sealed class InstructionBytes : CodeReader
    {
        private byte[] _bytes = [];
        private int _length;
        private int _position;

        public void Reset(byte[] bytes, int length)
        {
            _bytes = bytes;
            _length = length;
            _position = 0;
        }

        public override int ReadByte() => _position < _length ? _bytes[_position++] : -1;
    }
}
