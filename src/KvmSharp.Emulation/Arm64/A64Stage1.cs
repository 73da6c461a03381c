// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>What a stage-1 translation is for (Arm ARM DDI 0487 D8.4, AccessDescriptor: read, write or fetch).</summary>
internal enum S1Access
{
    Read,
    Write,
    Fetch,
}

/// <summary>How one stage-1 translation ended.</summary>
internal enum S1Status
{
    /// <summary><see cref="S1Result.Ipa"/> is the output address.</summary>
    Ok,

    /// <summary>A stage-1 fault: <see cref="S1Result.Fsc"/> holds the DFSC/IFSC (type | level).</summary>
    Fault,

    /// <summary>
    /// A descriptor read did not complete at stage 2 (<see cref="S1Result.Walk"/>, at <see cref="S1Result.WalkIpa"/>,
    /// level <see cref="S1Result.Level"/>): the hardware takes a stage-2 abort with S1PTW set to KVM.
    /// </summary>
    WalkStage2,

    /// <summary>A 16K or 64K granule (or a reserved TGx): not modelled, an emulation failure rather than a guess.</summary>
    Unsupported,
}

/// <summary>
/// The outcome of <see cref="A64Stage1.Translate(Arm64Cpu, Stage2Access, ulong, S1Access, bool, bool)"/>; <see cref="Attr"/> and <see cref="Sh"/> feed PAR_EL1;
/// <see cref="Guarded"/> is the leaf's GP bit (FEAT_BTI guarded page, A64Interpreter.Bti.cs).
/// </summary>
internal readonly record struct S1Result(S1Status Status, ulong Ipa = 0, uint Fsc = 0, Stage2Result Walk = default,
    ulong WalkIpa = 0, int Level = 0, byte Attr = 0, uint Sh = 0, bool Guarded = false);

/// <summary>
/// The descriptors one walk read, in order (<see cref="A64Stage1.Translate(Arm64Cpu, Stage2Access, ulong, S1Access, bool, bool, ref S1Path)"/>):
/// entry i is the level <see cref="StartLevel"/> + i descriptor, read at IPA <see cref="Ipa"/>[i] with value
/// <see cref="Desc"/>[i]. A64Interpreter.WalkCache.cs re-reads them to reuse a walk.
/// </summary>
internal struct S1Path
{
    public S1Quads Ipa, Desc;
    public int Count, StartLevel;
}

/// <summary>Four quadwords (one per level 0..3), inline.</summary>
[System.Runtime.CompilerServices.InlineArray(4)]
internal struct S1Quads
{
    private ulong _first;
}

/// <summary>
/// The EL1&amp;0 stage-1 translation table walk of the Arm ARM (DDI 0487, D8 "The AArch64 Virtual Memory System
/// Architecture"; pseudocode AArch64.S1Translate / AArch64.S1Walk / AArch64.S1DirectBasePermissions) for the 4 KiB
/// granule without FEAT_LPA2/FEAT_LVA (TxSZ 16..39, 48-bit output at most). Descriptors are read through stage 2
/// (<see cref="Stage2Access"/>), as the hardware's walk is. No TLB: every access walks, so TLBI has nothing to
/// invalidate and a page-table write is seen by the next access. MAIR_EL1 and the descriptors' memory types and
/// shareability do not change how the emulator accesses memory (they feed PAR_EL1 of an AT and the Device
/// alignment check of A64Interpreter.Alignment.cs). Hardware
/// Access-flag / dirty-state updates (TCR_EL1.HA/HD, FEAT_HAFDBS) are not modelled: an MSR that sets them is an
/// emulation failure (A64Interpreter.Mmu.cs), and a descriptor with AF = 0 always takes an Access flag fault.
/// </summary>
internal static class A64Stage1
{
    // ESR_ELx DFSC/IFSC (Arm ARM D24.2.40/D24.2.41 ESR_EL1 ISS; asm/esr.h ESR_ELx_FSC_*): type | level.
    public const uint FscAddressSize = 0x00, FscTranslation = 0x04, FscAccessFlag = 0x08, FscPermission = 0x0C;

    /// <summary>ESR_ELx_FSC_SEA_TTW(level): synchronous external abort on a translation table walk, level 0..3.</summary>
    public const uint FscSeaTtw = 0x14;

    private static readonly int TcrIndex = Arm64SysRegs.Index("TCR_EL1"), Ttbr0Index = Arm64SysRegs.Index("TTBR0_EL1"),
        Ttbr1Index = Arm64SysRegs.Index("TTBR1_EL1"), MairIndex = Arm64SysRegs.Index("MAIR_EL1"),
        Mmfr0Index = Arm64IdRegs.IndexOf("ID_AA64MMFR0_EL1");

    // TCR_EL1.{T0SZ,T1SZ} 5:0 / 21:16, EPD0 7 / EPD1 23, TG0 15:14 / TG1 31:30, IPS 34:32, TBI0 37 / TBI1 38,
    // HPD0 41 / HPD1 42, TBID0 51 / TBID1 52 (Arm ARM D24.2.171 TCR_EL1).
    private const int IpsShift = 32;

    /// <summary>Descriptor output/next-level address bits [47:12] (and [51:48], RES0 without FEAT_LPA: out of range).</summary>
    private const ulong AddressMask = 0x000F_FFFF_FFFF_F000;

    /// <summary>
    /// A block or page descriptor's output address bits [49:12] (D8.3.2, 4 KiB granule without FEAT_LPA2: [47:12], with
    /// [49:48] RES0, out of range here): bits 51 (DBM) and 50 (GP, FEAT_BTI; RES0 without it) are attributes, never
    /// part of the address.
    /// </summary>
    private const ulong LeafAddressMask = 0x0003_FFFF_FFFF_F000;

    /// <summary>The TCR_EL1.IPS / ID_AA64MMFR0_EL1.PARange encodings (0b000 32 bits … 0b110 52 bits).</summary>
    private static readonly int[] PaBits = [32, 36, 40, 42, 44, 48, 52];

    /// <summary>True when the TGx of the VA half (upper: TTBR1) selects the 4 KiB granule (TG0 0b00, TG1 0b10).</summary>
    public static bool Is4K(ulong tcr, bool upper) => upper ? ((tcr >> 30) & 3) == 2 : ((tcr >> 14) & 3) == 0;

    /// <summary>EPDx: walks of that half are disabled.</summary>
    public static bool WalkDisabled(ulong tcr, bool upper) => ((tcr >> (upper ? 23 : 7)) & 1) != 0;

    /// <summary>
    /// Translates <paramref name="va"/> for an <paramref name="access"/> at EL0 (<paramref name="el0"/>) or EL1.
    /// <paramref name="pan"/>: PSTATE.PAN applies (an EL1 load/store, not a fetch, not AT S1E1R/W).
    /// </summary>
    public static S1Result Translate(Arm64Cpu cpu, Stage2Access memory, ulong va, S1Access access, bool el0, bool pan)
    {
        S1Path path = default;
        return Translate(cpu, memory, va, access, el0, pan, ref path);
    }

    /// <summary>
    /// <see cref="Translate(Arm64Cpu, Stage2Access, ulong, S1Access, bool, bool)"/>, recording in
    /// <paramref name="path"/> every descriptor read that completed at stage 2. The result is a function of the inputs
    /// (TCR_EL1, the selected TTBRn_EL1, SCTLR_EL1, MAIR_EL1, ID_AA64MMFR0_EL1, the arguments) and those descriptors.
    /// </summary>
    public static S1Result Translate(Arm64Cpu cpu, Stage2Access memory, ulong va, S1Access access, bool el0, bool pan, ref S1Path path)
    {
        ulong tcr = cpu.SysRegs[TcrIndex];
        // AArch64.S1Translate: VA[55] selects TTBR0 or TTBR1 (AArch64.GetVARange).
        bool upper = ((va >> 55) & 1) != 0;
        if (!Is4K(tcr, upper)) return new(S1Status.Unsupported);
        // TBI (D8.8 "Address tagging"): bits [63:56] are ignored for the range check when TBIx is set; for a fetch only
        // without TBIDx (FEAT_PAuth, D8.8.1).
        bool tbi = ((tcr >> (upper ? 38 : 37)) & 1) != 0 && !(access == S1Access.Fetch && ((tcr >> (upper ? 52 : 51)) & 1) != 0);
        // TxSZ outside 16..39 (4 KiB, no FEAT_LVA/FEAT_TTST) is CONSTRAINED UNPREDICTABLE; the emulator takes the
        // permitted "as if the nearest valid value" (D8.2.3 "Input address size configuration").
        int txsz = Math.Clamp((int)((tcr >> (upper ? 16 : 0)) & 0x3f), 16, 39);
        int inputSize = 64 - txsz;
        int top = tbi ? 55 : 63;
        ulong rangeBits = (va >> inputSize) & ((1UL << (top - inputSize + 1)) - 1);
        ulong expected = upper ? (1UL << (top - inputSize + 1)) - 1 : 0;
        // AArch64.VAIsOutOfRange → Translation fault, level 0; so is a walk disabled by EPDx (AArch64.S1Walk/S1EPD).
        if (rangeBits != expected || WalkDisabled(tcr, upper)) return Fault(FscTranslation, 0);
        // Output size: min(TCR_EL1.IPS, ID_AA64MMFR0_EL1.PARange) (D8.3 "Output address size"; an IPS above the
        // implemented size behaves as the implemented size); 52 bits needs FEAT_LPA's descriptor format: 48 here.
        int parange = (int)(Arm64IdRegs.Read(cpu.IdRegs, Mmfr0Index) & 0xf);
        int ips = (int)((tcr >> IpsShift) & 7);
        int oaBits = Math.Min(Math.Min(PaBits[Math.Min(ips, 6)], PaBits[Math.Min(parange, 6)]), 48);
        bool hpd = ((tcr >> (upper ? 42 : 41)) & 1) != 0;

        // Start level (D8.2.7 "Translation table walk starting level", 4 KiB: 9 bits a level above the 12-bit offset).
        int startLevel = 4 - (inputSize - 12 + 8) / 9, level = startLevel;
        path.StartLevel = startLevel;
        path.Count = 0;
        int startBits = inputSize - (12 + 9 * (3 - level));
        ulong ttbr = cpu.SysRegs[upper ? Ttbr1Index : Ttbr0Index];
        // TTBRx_EL1.BADDR [47:1] (ASID in 63:48, CnP bit 0); the bits below the table's alignment are RES0, taken as
        // zero (a permitted CONSTRAINED UNPREDICTABLE choice). A base beyond the output size: Address size fault,
        // level 0 (AArch64.S1Walk baseaddress check).
        ulong table = ttbr & 0x0000_FFFF_FFFF_FFFE & ~((8UL << Math.Max(startBits, 3)) - 1);
        if (table >> oaBits != 0) return Fault(FscAddressSize, 0);

        bool apTableNoEl0 = false, apTableReadOnly = false, uxnTable = false, pxnTable = false;
        Span<byte> raw = stackalloc byte[8];
        ulong desc;
        while (true)
        {
            int shift = 12 + 9 * (3 - level);
            ulong index = (va >> shift) & ((1UL << (level == startLevel ? startBits : 9)) - 1);
            ulong descIpa = table + index * 8;
            // The walk's read goes through stage 2 like any data access (a stage-2 fault on it has S1PTW set).
            var r = memory.Access(descIpa, raw, write: false, fetch: false);
            if (r.Status != Stage2Status.Done) return new(S1Status.WalkStage2, Walk: r, WalkIpa: descIpa, Level: level);
            desc = BitConverter.ToUInt64(raw);
            path.Ipa[path.Count] = descIpa;
            path.Desc[path.Count] = desc;
            path.Count++;
            // Descriptor bit 0 clear: invalid → Translation fault at this level (D8.3.1 "Table descriptor format").
            if ((desc & 1) == 0) return Fault(FscTranslation, level);
            bool isTable = (desc & 2) != 0;
            // Level 3: 0b11 page, 0b01 reserved (invalid); level 0: no block with 4 KiB without FEAT_LPA2.
            if (level == 3)
            {
                if (!isTable) return Fault(FscTranslation, level);
                break;
            }
            if (!isTable)
            {
                if (level == 0) return Fault(FscTranslation, level);
                break;
            }
            // Table descriptor: next-level table address; beyond the output size → Address size fault at this level.
            ulong next = desc & AddressMask;
            if (next >> oaBits != 0) return Fault(FscAddressSize, level);
            // Hierarchical permissions (D8.4.2), unless TCR_EL1.HPDx (FEAT_HPDS) disables them: APTable[0] (bit 61)
            // removes EL0 access, APTable[1] (bit 62) write access, UXNTable (60), PXNTable (59).
            if (!hpd)
            {
                apTableNoEl0 |= ((desc >> 61) & 1) != 0;
                apTableReadOnly |= ((desc >> 62) & 1) != 0;
                uxnTable |= ((desc >> 60) & 1) != 0;
                pxnTable |= ((desc >> 59) & 1) != 0;
            }
            table = next;
            level++;
        }

        // Block (level 1: 1 GiB, level 2: 2 MiB) or page: OA bits [47:leafShift] (D8.3.2 "Block descriptor format").
        int leafShift = 12 + 9 * (3 - level);
        ulong leafMask = (1UL << leafShift) - 1;
        ulong oa = desc & LeafAddressMask & ~leafMask;
        if (oa >> oaBits != 0) return Fault(FscAddressSize, level);
        // AF = 0 → Access flag fault (D8.5.1; no hardware update: TCR_EL1.HA is refused, see the class comment).
        if (((desc >> 10) & 1) == 0) return Fault(FscAccessFlag, level);

        // AArch64.S1DirectBasePermissions (D8.4.1): AP[2:1] = desc[7:6]: AP[1] grants EL0 access, AP[2] makes it
        // read-only; a region writable at EL0 is privileged execute-never; SCTLR_EL1.WXN makes writable regions
        // execute-never at that EL; PSTATE.PAN removes EL1 data access to EL0-accessible regions.
        uint ap = (uint)(desc >> 6) & 3;
        bool readOnly = (ap & 2) != 0 || apTableReadOnly;
        bool ur = (ap & 1) != 0 && !apTableNoEl0, uw = ur && !readOnly;
        bool pr = true, pw = !readOnly;
        bool wxn = ((cpu.SctlrEl1 >> 19) & 1) != 0;
        bool ux = ((desc >> 54) & 1) == 0 && !uxnTable && !(wxn && uw);
        bool px = ((desc >> 53) & 1) == 0 && !pxnTable && !uw && !(wxn && pw);
        if (pan && (ur || uw)) pr = pw = false;
        bool allowed = access switch
        {
            S1Access.Fetch => el0 ? ux : px,
            S1Access.Write => el0 ? uw : pw,
            _ => el0 ? ur : pr,
        };
        // The memory type also rides on a permission fault: a Device alignment fault takes priority over it.
        byte attr = (byte)(cpu.SysRegs[MairIndex] >> (8 * (int)((desc >> 2) & 7)));
        if (!allowed) return Fault(FscPermission, level) with { Attr = attr };
        // GP, bit 50 of a stage-1 block or page descriptor (D8.3.2 "Block descriptor and Page descriptor formats": the
        // Guarded Page field with FEAT_BTI, RES0 and ignored without it): the page is guarded, the InGuardedPage of
        // BranchTargetCheck for a fetch from it. FEAT_BTI is the host CPU's (ID_AA64PFR1_EL1.BT of the model): the
        // hardware enforces it whatever the VM's ID registers say.
        bool guarded = ((desc >> 50) & 1) != 0 && cpu.IdRegs.Model.Bt != 0;
        return new(S1Status.Ok, oa | (va & leafMask), Level: level, Attr: attr, Sh: (uint)(desc >> 8) & 3, Guarded: guarded);
    }

    private static S1Result Fault(uint type, int level) => new(S1Status.Fault, Fsc: type | (uint)level, Level: level);
}
