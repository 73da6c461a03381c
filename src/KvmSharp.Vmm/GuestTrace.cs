// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm;

/// <summary>
/// One instruction the guest executed during a traced call (<see cref="MicroVmOptions.TraceInstructions"/>): where it
/// was, and its bytes as guest memory held them when the host recorded it (read through <see cref="GuestMemory"/>).
/// </summary>
/// <param name="Rip">
/// The instruction's address (guest-virtual = guest-physical: the micro-VM's page tables are an identity map); an arm64
/// micro-VM's PC.
/// </param>
/// <param name="Bytes">
/// The instruction's encoding (1–15 bytes, as Iced decodes it; on arm64 the 4-byte A64 word); empty when its address
/// is outside guest memory or on a private page the host may not read.
/// </param>
/// <param name="RaisedException">
/// True when a CPU exception (or an INT n; on arm64 an exception taken to EL1, SVC included) was delivered at this
/// instruction: it did not complete, and the next entry is the first instruction of the VMM's exception handler
/// (Arch/X86_64/ExceptionHandlers; on arm64 the vector table's entry, Arch/Arm64/Arm64Exceptions).
/// </param>
public sealed record TracedInstruction(ulong Rip, ReadOnlyMemory<byte> Bytes, bool RaisedException = false)
{
    /// <summary>The instruction set of <see cref="Bytes"/>: the traced micro-VM's <see cref="MicroVm.Architecture"/>.</summary>
    public GuestArchitecture Architecture { get; init; } = GuestArchitecture.X86_64;

    /// <summary>
    /// The instruction in Intel syntax as Iced formats it ("mov eax,1"); "(not readable)" without bytes, "(bad)" when
    /// the bytes are no valid instruction. An arm64 instruction is disassembled by capstone 4 (libcapstone.so.4,
    /// package libcapstone4; <see cref="Arch.Arm64.A64Disassembler"/>) as at <see cref="Rip"/>, so a PC-relative
    /// branch shows its target ("bl #0x1040"); a word capstone 4 does not decode (SVE, the ARMv8.1 atomics, FP16,
    /// UDF), and every word on a machine without the library, is shown as its word, the way objdump prints one it does
    /// not decode (".inst 0xd503201f").
    /// </summary>
    public string Disassembly => DisassembleWith(Arch.Arm64.A64Disassembler.Shared);

    /// <summary><see cref="Disassembly"/> with <paramref name="a64"/> as the A64 disassembler (tests name a missing library).</summary>
    internal string DisassembleWith(Arch.Arm64.A64DisassemblerEngine a64)
    {
        if (Bytes.IsEmpty) return "(not readable)";
        if (Architecture == GuestArchitecture.Arm64)
            return Bytes.Length == 4 ? a64.Format(BinaryPrimitives.ReadUInt32LittleEndian(Bytes.Span), Rip) : "(bad)";
        Instruction instruction = Decode(Rip, Bytes.Span);
        if (instruction.IsInvalid) return "(bad)";
        var output = new StringOutput();
        new IntelFormatter().Format(instruction, output);
        return output.ToStringAndReset();
    }

    /// <summary>"0x100000  mov eax,1": the address and <see cref="Disassembly"/>.</summary>
    public override string ToString() => $"0x{Rip:X}  {Disassembly}";

    /// <summary>True when the bytes are a HLT (decoded once, when the trace read them).</summary>
    internal bool IsHalt { get; init; }

    internal static Instruction Decode(ulong rip, ReadOnlySpan<byte> bytes)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(bytes.ToArray()), rip);
        decoder.Decode(out Instruction instruction);
        return instruction;
    }
}

/// <summary>
/// The instruction trace of one call (<see cref="CallResult.Trace"/>, when <see cref="MicroVmOptions.TraceInstructions"/>
/// is above 0): the host single-stepped the vCPU (KVM_SET_GUEST_DEBUG) and recorded each instruction it executed, in
/// order, the exit instructions included — the OUT whose single-step exit the kernel loses (this host, and the
/// emulator like it), the IN, MMIO access or HLT that ended the call, the instruction that raised a CPU exception and
/// the handler's first instruction. On arm64 each step is a software step exit (ESR class 0x32) whose PC the host reads
/// with KVM_GET_ONE_REG; an MMIO access inside the call has its step exit too, and an exception taken to EL1 stops at
/// the vector before the handler's first instruction runs (GUEST-ABI.md, "arm64 micro-VMs").
/// </summary>
public sealed class GuestTrace
{
    internal GuestTrace(IReadOnlyList<TracedInstruction> instructions, int limit, bool truncated, long stepExits)
    {
        Instructions = instructions;
        Limit = limit;
        Truncated = truncated;
        StepExits = stepExits;
    }

    /// <summary>The instructions in the order the guest executed them (a loop's body appears once per iteration).</summary>
    public IReadOnlyList<TracedInstruction> Instructions { get; }

    /// <summary>The <see cref="MicroVmOptions.TraceInstructions"/> of the call: at most this many are recorded.</summary>
    public int Limit { get; }

    /// <summary>
    /// True when the limit was reached and the guest ran on: single-stepping was switched off at that point, and the
    /// rest of the call ran at full speed, unrecorded.
    /// </summary>
    public bool Truncated { get; }

    /// <summary>
    /// The single-step exits (KVM_EXIT_DEBUG) of the call; they are not counted in <see cref="CallResult.Exits"/> nor
    /// toward <see cref="MicroVmOptions.MaxExits"/>.
    /// </summary>
    public long StepExits { get; }
}

/// <summary>
/// Collects a <see cref="GuestTrace"/> for the run loop: the address of the instruction about to run, the recorded
/// instructions, and where the VMM's exception handlers continue after their first instruction.
/// </summary>
internal sealed class GuestTraceBuilder
{
    /// <summary>The longest x86 instruction.</summary>
    private const int MaxInstructionLength = 15;

    private readonly GuestMemory _memory;
    private readonly List<TracedInstruction> _instructions = [];
    private readonly Dictionary<ulong, ulong> _handlerEntries = [];

    /// <summary>The length of an A64 instruction.</summary>
    private const int A64InstructionLength = 4;

    /// <summary>True for an arm64 vCPU's trace (<see cref="ForArm64"/>).</summary>
    private readonly bool _arm64;

    private GuestTraceBuilder(GuestMemory memory, int limit, ulong entry, bool arm64)
    {
        _memory = memory;
        Limit = limit;
        Next = entry;
        _arm64 = arm64;
    }

    /// <summary>
    /// An arm64 trace of at most <paramref name="limit"/> instructions of a call entered at <paramref name="entry"/>:
    /// each step exit's PC comes from KVM_GET_ONE_REG; an exception taken to EL1 stops at the vector entry before its
    /// first instruction runs (the step exception is taken from active-pending, Arm ARM D2.12), so the handler's first
    /// instruction is recorded by the next step, not with the one that raised it.
    /// </summary>
    public static GuestTraceBuilder ForArm64(GuestMemory memory, int limit, ulong entry) => new(memory, limit, entry, arm64: true);

    /// <summary>A trace of at most <paramref name="limit"/> instructions of a call entered at <paramref name="entry"/>.</summary>
    public GuestTraceBuilder(GuestMemory memory, int limit, ulong entry)
        : this(memory, limit, entry, arm64: false)
    {
        // A delivered exception runs the gate's first instruction before the step exit comes (kvm_vcpu_do_singlestep
        // after the delivery): remember, by the address after it, where each gate of the IDT in guest memory leads.
        for (int vector = 0; vector < Idt.Vectors; vector++)
        {
            ulong gate = Layout.Idt + (ulong)(vector * 16);
            if (!TryRead(gate, 16, out byte[] bytes)) continue;
            ulong target = Idt.GateTarget(BinaryPrimitives.ReadUInt64LittleEndian(bytes), BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)));
            byte[] first = ReadInstruction(target, out _);
            if (first.Length > 0) _handlerEntries.TryAdd(target + (ulong)first.Length, target);
        }
    }

    public int Limit { get; }

    /// <summary>The address of the instruction the vCPU executes next (the last step exit's pc).</summary>
    public ulong Next { get; set; }

    /// <summary>True while single-stepping is on.</summary>
    public bool Stepping { get; set; }

    public bool Truncated { get; set; }

    public long StepExits { get; set; }

    /// <summary>True when the instruction at <see cref="Next"/> has been recorded (an exit's that has no step exit).</summary>
    public bool NextRecorded { get; set; }

    public bool Full => _instructions.Count >= Limit;

    /// <summary>
    /// Records the instruction at <see cref="Next"/> as executed (unless it already is, or the trace is full) and
    /// returns it, or null when nothing was recorded.
    /// </summary>
    public TracedInstruction? RecordNext(bool raisedException = false)
    {
        if (NextRecorded || Full) return null;
        NextRecorded = true;
        if (_arm64)
        {
            byte[] word = TryRead(Next, A64InstructionLength, out byte[] read) ? read : [];
            return Add(new TracedInstruction(Next, word, raisedException) { Architecture = GuestArchitecture.Arm64 });
        }
        byte[] bytes = ReadInstruction(Next, out Mnemonic mnemonic);
        return Add(new TracedInstruction(Next, bytes, raisedException) { IsHalt = mnemonic == Mnemonic.Hlt });
    }

    /// <summary>
    /// A single-step exit with <paramref name="pc"/>: the instruction at <see cref="Next"/> ran, and when pc is right
    /// after the first instruction of an exception handler the instruction raised that exception and the handler's
    /// first instruction ran too. Returns the instruction at <see cref="Next"/> when it was recorded now.
    /// </summary>
    public TracedInstruction? Stepped(ulong pc)
    {
        StepExits++;
        if (_arm64)
        {
            // The vCPU stands at a vector entry it did not fall or branch into: the instruction at Next took an
            // exception to EL1 (VBAR_EL1 = Layout.Vectors, 16 entries of 0x80 bytes).
            bool raised = pc != Next + A64InstructionLength && IsArm64VectorEntry(pc) && !IsArm64VectorEntry(Next);
            TracedInstruction? ran = RecordNext(raised);
            Next = pc;
            NextRecorded = false;
            return ran;
        }
        bool delivered = _handlerEntries.TryGetValue(pc, out ulong handler) && handler != Next;
        TracedInstruction? executed = RecordNext(delivered);
        if (delivered && !Full) Add(new TracedInstruction(handler, ReadInstruction(handler, out _)));
        Next = pc;
        NextRecorded = false;
        return executed;
    }

    /// <summary>The instruction at <see cref="Next"/> completed without a step exit and the vCPU now stands at <paramref name="rip"/>.</summary>
    public void Completed(ulong rip)
    {
        RecordNext();
        Next = rip;
        NextRecorded = false;
    }

    public GuestTrace Build() => new([.. _instructions], Limit, Truncated, StepExits);

    private static bool IsArm64VectorEntry(ulong pc) =>
        pc >= Arch.Arm64.Layout.Vectors && pc < Arch.Arm64.Layout.Vectors + 16 * Arch.Arm64.Layout.VectorEntrySize
        && (pc - Arch.Arm64.Layout.Vectors) % Arch.Arm64.Layout.VectorEntrySize == 0;

    private TracedInstruction Add(TracedInstruction instruction)
    {
        _instructions.Add(instruction);
        return instruction;
    }

    /// <summary>The bytes of the instruction at <paramref name="rip"/> (empty when they cannot be read).</summary>
    private byte[] ReadInstruction(ulong rip, out Mnemonic mnemonic)
    {
        mnemonic = Mnemonic.INVALID;
        if (rip >= _memory.Size) return [];
        int length = (int)Math.Min(MaxInstructionLength, _memory.Size - rip);
        if (!TryRead(rip, length, out byte[] bytes)) return [];
        Instruction instruction = TracedInstruction.Decode(rip, bytes);
        mnemonic = instruction.Mnemonic;
        return instruction.Length > 0 && instruction.Length <= bytes.Length ? bytes[..instruction.Length] : bytes;
    }

    private bool TryRead(ulong gpa, int length, out byte[] bytes)
    {
        bytes = new byte[length];
        if (!_memory.IsAttached || gpa >= _memory.Size || (ulong)length > _memory.Size - gpa || !_memory.IsShared(gpa, (ulong)length))
            return false;
        try
        {
            _memory.Read(gpa, bytes);
            return true;
        }
        catch (GuestMemoryFaultException)
        {
            return false;
        }
        catch (ArgumentOutOfRangeException)
        {
            return false;
        }
    }
}
