// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The interpreter's side of the host's debug exceptions (<see cref="Arm64HostDebug"/>): BRK routed to EL2, and the
/// watchpoint check on each data access's stage-1 translation.
/// </summary>
internal sealed partial class A64Interpreter
{
    private Arm64HostDebug? _hostDebug;

    /// <summary>Armed watchpoints (null when none): the only cost a data access pays while the VMM does not watch.</summary>
    private Arm64HostDebug? _hostWatch;

    /// <summary>The data range already checked for the current instruction (a page-crossing access translates twice).</summary>
    private ulong _watchStart, _watchEnd;

    /// <summary>
    /// The host's debugging (vcpu->guest_debug != 0, so MDCR_EL2.TDE routes debug exceptions to EL2), or null when
    /// KVM_SET_GUEST_DEBUG left it off.
    /// </summary>
    public Arm64HostDebug? HostDebug
    {
        get => _hostDebug;
        set
        {
            _hostDebug = value;
            _hostWatch = value is { HasWatchpoints: true } ? value : null;
        }
    }

    /// <summary>A new instruction starts: no data range of it has been checked yet.</summary>
    public void BeginHostDebugInstruction() => _watchStart = _watchEnd = 0;

    /// <summary>
    /// BRK with the host debugging: MDCR_EL2.TDE routes the Breakpoint Instruction exception to EL2 (debug.c
    /// kvm_arm_setup_mdcr_el2), handle_exit.c kvm_handle_guest_debug exits with EC 0x3C, ISS = imm16; PC stays at
    /// the BRK. False when the guest takes it itself.
    /// </summary>
    private bool BrkToHost(uint imm16) =>
        _hostDebug is not null ? throw new HostDebugStop(Arm64HostDebug.BrkEsr(imm16), far: null) : false;

    /// <summary>
    /// A data access at <paramref name="va"/> about to be translated: a watched byte in it is a watchpoint exception
    /// to EL2 (EC 0x34, FAR the watched byte), before the access or any register write (Arm ARM D2.10: the instruction
    /// is not executed).
    /// </summary>
    private void CheckHostWatchpoints(ulong va, S1Access access)
    {
        if (access == S1Access.Fetch || _hostWatch is not { } d) return;
        // The second translation of a page-crossing access: its bytes were checked with the first.
        if ((va & 0xfff) == 0 && va > _watchStart && va < _watchEnd) return;
        int length = DataAccessLength(LastInstruction);
        _watchStart = va;
        _watchEnd = va + (ulong)length;
        bool write = access == S1Access.Write;
        if (d.WatchpointHit(va, length, write, cpu.AtEl0) is ulong far)
            throw new HostDebugStop(Arm64HostDebug.WatchpointEsr(write), far);
    }

    /// <summary>
    /// The bytes one data access of <paramref name="insn"/> covers (Arm ARM C4.1.88 "Loads and Stores"): the size
    /// field of the single-register, exclusive/ordered, atomic and literal forms, twice it for pairs (LDP/STP, LDXP,
    /// CASP), the register count times the element or vector size for the SIMD structure forms; 1 (the first byte)
    /// for the rest (SVE).
    /// </summary>
    internal static int DataAccessLength(uint insn)
    {
        bool v = (insn & (1u << 26)) != 0;
        int size = (int)(insn >> 30);
        switch ((insn >> 27) & 7)
        {
            case 0b001 when !v && (insn & 0x0100_0000) == 0:
                // Exclusive / ordered / CAS (bits 29:24 = 001000); o1 (bit 21) with o2 (bit 23) = 0: a pair.
                if ((insn & (1u << 21)) == 0 || (insn & (1u << 23)) != 0) return 1 << size;
                return (insn & (1u << 31)) == 0 ? ((insn & (1u << 30)) != 0 ? 16 : 8) : 2 << size; // CASP : LDXP/STXP
            case 0b001 when v && (insn & (1u << 31)) == 0:
                return SimdStructureLength(insn);
            case 0b011 when (insn & 0x0100_0000) == 0:
                // Load register (literal): opc (bits 31:30).
                return v ? 4 << size : size == 1 ? 8 : 4;
            case 0b011 when !v:
                // LDAPUR/STLUR (RCpc, unscaled immediate): size.
                return 1 << size;
            case 0b101:
                // Load/store pair: opc (bits 31:30).
                return v ? 8 << size : size == 2 ? 16 : 8;
            case 0b111:
                // Single register (immediate, register offset, unscaled, atomics): size; the 128-bit SIMD form is
                // size 00 with opc<1> (bit 23) set.
                return v && size == 0 && (insn & (1u << 23)) != 0 ? 16 : 1 << size;
            default:
                return 1;
        }
    }

    /// <summary>LD1–LD4 / ST1–ST4 (multiple structures, single structure, replicate): the whole transfer.</summary>
    private static int SimdStructureLength(uint insn)
    {
        int opcode = (int)((insn >> 12) & 0xf);
        bool q = (insn & (1u << 30)) != 0;
        if ((insn & (1u << 24)) == 0)
        {
            int regs = opcode switch { 0b0000 or 0b0010 => 4, 0b0100 or 0b0110 => 3, 0b0111 => 1, 0b1000 or 0b1010 => 2, _ => 1 };
            return regs * (q ? 16 : 8);
        }
        int selem = (((opcode >> 1) & 1) << 1 | (int)((insn >> 21) & 1)) + 1;
        int esize = (opcode >> 2) switch
        {
            0 => 1,
            1 => 2,
            2 => (insn & (1u << 10)) != 0 ? 8 : 4,
            _ => 1 << (int)((insn >> 10) & 3),
        };
        return selem * esize;
    }
}
