// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The "load/store exclusive register", "load/store exclusive pair" and "load/store ordered" groups (Arm ARM DDI 0487
/// C4.1.94: size 001000 o2 L o1 Rs o0 Rt2 Rn Rt; C6.2 LDXR/LDAXR/STXR/STLXR (B, H, W, X), LDXP/LDAXP/STXP/STLXP,
/// LDAR/LDLAR/STLR/STLLR), CLREX and the FEAT_LSE atomics (<see cref="AtomicMemoryOperation"/>, and CASP:
/// <see cref="CompareAndSwapPair"/>): what gcc emits for C11 atomics without FEAT_LSE (-mno-outline-atomics; the
/// __atomic builtins become LDAXR/STLXR loops). CompiledCorpusTests found the interpreter stopping at them.
/// <para>The exclusive monitor (B2.17 "Synchronization and semaphores"): a load-exclusive marks the address, its size
/// and the value read; a store-exclusive to the marked address and size succeeds (Ws = 0) when memory still holds that
/// value, checked and stored under one lock shared by every vCPU, else fails (Ws = 1) without storing; both clear the
/// mark, as CLREX does. Comparing values is the approximation QEMU's target/arm gen_store_exclusive makes (a
/// cmpxchg against the value loaded): the architecture lets a store-exclusive fail spuriously, and an ABA sequence by
/// another vCPU between the two is the one case it admits that a real global monitor would refuse.</para>
/// <para>An access of these groups not aligned to its size (the pair: to both registers' size) is checked whatever
/// SCTLR_EL1.A says (AArch64.UnalignedAccessFaults, <see cref="CheckOrderedAlignment"/>): without FEAT_LSE2 it is the
/// alignment fault; with FEAT_LSE2 (the V1 and V2 presets) an exclusive or atomic one faults only when it crosses a
/// 16-byte boundary, and LDAR/LDLAR/STLR/STLLR and LDAPR only when they cross one with SCTLR_EL1.nAA = 0. The
/// acquire/release orderings need nothing more here: the interpreter completes each access before the next
/// instruction.</para>
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>Serialises the check-and-store of every store-exclusive of the process (all vCPUs, all VMs).</summary>
    private static readonly object s_exclusiveLock = new();

    private bool _exclusiveArmed;
    private ulong _exclusiveAddress;
    private int _exclusiveLength;
    private UInt128 _exclusiveValue;

    private bool TryExclusive(uint insn)
    {
        // CLREX #imm (1101 0101 0000 0011 0011 CRm 010 11111): clears the local monitor.
        if ((insn & 0xFFFF_F0FF) == 0xD503_305F)
        {
            _exclusiveArmed = false;
            Next();
            return true;
        }
        if ((insn & 0x3F20_0C00) == 0x3820_0000) return AtomicMemoryOperation(insn);
        if ((insn & 0x3F00_0000) != 0x0800_0000) return false;
        int size = (int)(insn >> 30);
        bool o2 = ((insn >> 23) & 1) != 0, load = ((insn >> 22) & 1) != 0, o1 = ((insn >> 21) & 1) != 0;
        int rs = (int)((insn >> 16) & 31), rt2 = (int)((insn >> 10) & 31), rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31);
        if (o2 && o1) return (insn & 0x7C00) == 0x7C00 && AtomicMemoryOperation(insn); // CAS (FEAT_LSE)
        bool pair = o1;
        if (pair && size < 2) return CompareAndSwapPair(insn); // CASP (o2 = 0, o1 = 1, size 0x, FEAT_LSE)
        int regBytes = 1 << size, length = pair ? 2 * regBytes : regBytes;
        ulong address = cpu.RegOrSp(rn);
        if (rn == 31 && (address & 15) != 0)
        {
            SpAlignmentFault();
            return true;
        }
        // o2 = 1 (o1 = 0 here): LDAR/LDLAR/STLR/STLLR, acqsc/relsc accesses; o2 = 0: the exclusives (accdesc.exclusive,
        // AArch64.ExclusiveMonitorsPass for a store: its alignment check precedes the monitor check).
        if (!CheckOrderedAlignment(address, length, o2 ? OrderedAccess.Ordered : OrderedAccess.ExclusiveOrAtomic, wnr: !load))
            return true;
        var data = new byte[length].AsSpan();
        if (o2)
        {
            // LDAR/LDLAR, STLR/STLLR: one ordered access of the register. A stage-2 abort on it has a valid syndrome
            // (ESR_ELx ISV: "loads and stores of a single general-purpose register ..., including those with
            // Acquire/Release semantics, but excluding Load Exclusive or Store Exclusive"), so MMIO exits as LDR/STR do.
            bool sf = size == 3;
            if (load)
            {
                if (!MemoryAccess(address, data, write: false, new MmioSyndrome(address, false, length, rt, false, sf, 0), isvValid: true))
                    return true;
                cpu.SetReg(rt, ReadLittleEndian(data));
            }
            else
            {
                WriteLittleEndian(data, cpu.Reg(rt));
                if (!MemoryAccess(address, data, write: true, new MmioSyndrome(address, true, length, rt, false, sf, cpu.Reg(rt)), isvValid: true))
                    return true;
            }
            Next();
            return true;
        }
        if (load)
        {
            // LDXP/LDAXP with Rt == Rt2 is CONSTRAINED UNPREDICTABLE: treated as unallocated (a permitted choice).
            if (pair && rt == rt2) return UndefinedTrue();
            if (!MemoryAccess(address, data, write: false, default, isvValid: false)) return true;
            UInt128 value = Read128(data);
            _exclusiveArmed = true;
            _exclusiveAddress = address;
            _exclusiveLength = length;
            _exclusiveValue = value;
            cpu.SetReg(rt, (ulong)value & LaneMask(8 * regBytes));
            if (pair) cpu.SetReg(rt2, (ulong)(value >> (8 * regBytes)) & LaneMask(8 * regBytes));
            Next();
            return true;
        }
        // STXR/STLXR/STXP/STLXP: Ws == Rt (or Rt2) or Ws == Rn (not SP) is CONSTRAINED UNPREDICTABLE: unallocated here.
        if (rs == rt || (pair && rs == rt2) || (rs == rn && rn != 31)) return UndefinedTrue();
        UInt128 store = pair
            ? ((UInt128)(cpu.Reg(rt2) & LaneMask(8 * regBytes)) << (8 * regBytes)) | (cpu.Reg(rt) & LaneMask(8 * regBytes))
            : cpu.Reg(rt) & LaneMask(8 * regBytes);
        bool marked = _exclusiveArmed && _exclusiveAddress == address && _exclusiveLength == length;
        _exclusiveArmed = false;
        ulong status = 1;
        if (marked)
        {
            lock (s_exclusiveLock)
            {
                if (!MemoryAccess(address, data, write: false, default, isvValid: false)) return true;
                if (Read128(data) == _exclusiveValue)
                {
                    for (int i = 0; i < length; i++) data[i] = (byte)(store >> (8 * i));
                    if (!MemoryAccess(address, data, write: true, default, isvValid: false)) return true;
                    status = 0;
                }
            }
        }
        cpu.SetReg(rs, status);
        Next();
        return true;
    }

    /// <summary>
    /// FEAT_LSE (ID_AA64ISAR0_EL1.Atomic = 2 in the emulated CPU, so a Linux guest's outline atomics pick them): the
    /// atomic memory operations LDADD/LDCLR/LDEOR/LDSET/LDSMAX/LDSMIN/LDUMAX/LDUMIN and SWP (C4.1.94 "Atomic memory
    /// operations": size 111 0 00 A R 1 Rs o3 opc 00 Rn Rt; Rt = 31 is the ST&lt;op&gt; alias), LDAPR (FEAT_LRCPC, o3 1
    /// opc 100, Rs 11111) and CAS/CASA/CASL/CASAL (size 001000 1 L 1 Rs o0 11111 Rn Rt: Rs = the compare value, and
    /// the old value after). Each read-modify-write runs under the store-exclusive lock. An access not aligned to its
    /// size is checked by <see cref="CheckOrderedAlignment"/>: LDAPR as an ordered (acquire-PC) access, the others as
    /// atomic ones (accdesc.atomicop, read and write: WnR = 0 on the alignment fault). False for what is not one of
    /// these (CASP, the other o3 = 1 encodings).
    /// </summary>
    private bool AtomicMemoryOperation(uint insn)
    {
        int size = (int)(insn >> 30), bits = 8 << size;
        int rs = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31);
        bool cas = ((insn >> 24) & 0x3F) == 0x08;
        int op = cas ? -1 : (int)((insn >> 12) & 15); // o3:opc
        if (op is 9 or 10 or 11 or 13 or 14 or 15) return false;
        if (op == 12 && (rs != 31 || ((insn >> 22) & 3) != 2)) return false; // LDAPR: A = 1, R = 0, Rs = 11111
        ulong address = cpu.RegOrSp(rn);
        if (rn == 31 && (address & 15) != 0)
        {
            SpAlignmentFault();
            return true;
        }
        if (!CheckOrderedAlignment(address, 1 << size, op == 12 ? OrderedAccess.Ordered : OrderedAccess.ExclusiveOrAtomic, wnr: false))
            return true;
        var data = new byte[1 << size].AsSpan();
        ulong mask = LaneMask(bits);
        lock (s_exclusiveLock)
        {
            if (!MemoryAccess(address, data, write: false, default, isvValid: false)) return true;
            ulong old = ReadLittleEndian(data) & mask, operand = cpu.Reg(rs) & mask;
            long sOld = (long)(old << (64 - bits)) >> (64 - bits), sOperand = (long)(operand << (64 - bits)) >> (64 - bits);
            ulong? result = op switch
            {
                -1 => old == operand ? cpu.Reg(rt) & mask : null, // CAS: no store when the compare fails
                0 => old + operand,                                  // LDADD
                1 => old & ~operand,                                 // LDCLR
                2 => old ^ operand,                                  // LDEOR
                3 => old | operand,                                  // LDSET
                4 => sOld >= sOperand ? old : operand,               // LDSMAX
                5 => sOld <= sOperand ? old : operand,               // LDSMIN
                6 => Math.Max(old, operand),                         // LDUMAX
                7 => Math.Min(old, operand),                         // LDUMIN
                8 => operand,                                        // SWP
                _ => null,                                           // LDAPR: a load
            };
            if (result is ulong r)
            {
                WriteLittleEndian(data, r & mask);
                if (!MemoryAccess(address, data, write: true, default, isvValid: false)) return true;
            }
            if (cas) cpu.SetReg(rs, old);
            else cpu.SetReg(rt, old);
        }
        Next();
        return true;
    }

    /// <summary>
    /// CASP/CASPA/CASPL/CASPAL (FEAT_LSE; Arm ARM C6.2 CASP: 0 sz 001000 0 L 1 Rs o0 11111 Rn Rt; L = acquire, o0 =
    /// release, which need nothing more here, as for CAS). Decode: "if Rs&lt;0&gt; == '1' then UNDEFINED; if Rt&lt;0&gt; ==
    /// '1' then UNDEFINED"; Rt2 (bits 14:10) other than 11111 is unallocated. Operation (little-endian):
    /// comparevalue = X[s+1]:X[s], newvalue = X[t+1]:X[t] (each datasize = 32 &lt;&lt; sz bits; s+1 or t+1 = 31 is XZR);
    /// CheckSPAlignment for Rn = 31; data = MemAtomic(address, MemAtomicOp_CAS, comparevalue, newvalue): one atomic
    /// access of 2 × datasize bits that stores newvalue only when memory equals comparevalue; then X[s] =
    /// data&lt;datasize-1:0&gt;, X[s+1] = data&lt;2*datasize-1:datasize&gt; whether the compare succeeded or not (a W
    /// destination zero-extends). MemAtomic checks the alignment on the whole access (size = 2 × datasize / 8) with
    /// accdesc.atomicop (<see cref="CheckOrderedAlignment"/>: WnR = 0). Like CAS it runs under the store-exclusive
    /// lock, and a stage-2 MMIO abort has no valid syndrome (ESR_ELx.ISV excludes the pair and atomic forms): a
    /// <see cref="NisvStop"/>.
    /// </summary>
    private bool CompareAndSwapPair(uint insn)
    {
        if ((insn & 0x7C00) != 0x7C00) return UndefinedTrue();
        int rs = (int)((insn >> 16) & 31), rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31);
        if ((rs & 1) != 0 || (rt & 1) != 0) return UndefinedTrue();
        int regBytes = 4 << (int)((insn >> 30) & 1), bits = 8 * regBytes, length = 2 * regBytes;
        ulong mask = LaneMask(bits);
        ulong address = cpu.RegOrSp(rn);
        if (rn == 31 && (address & 15) != 0)
        {
            SpAlignmentFault();
            return true;
        }
        if (!CheckOrderedAlignment(address, length, OrderedAccess.ExclusiveOrAtomic, wnr: false)) return true;
        UInt128 compare = ((UInt128)(cpu.Reg(rs + 1) & mask) << bits) | (cpu.Reg(rs) & mask);
        UInt128 replacement = ((UInt128)(cpu.Reg(rt + 1) & mask) << bits) | (cpu.Reg(rt) & mask);
        var data = new byte[length].AsSpan();
        lock (s_exclusiveLock)
        {
            if (!MemoryAccess(address, data, write: false, default, isvValid: false)) return true;
            UInt128 old = Read128(data);
            if (old == compare)
            {
                for (int i = 0; i < length; i++) data[i] = (byte)(replacement >> (8 * i));
                if (!MemoryAccess(address, data, write: true, default, isvValid: false)) return true;
            }
            cpu.SetReg(rs, (ulong)old & mask);
            cpu.SetReg(rs + 1, (ulong)(old >> bits) & mask);
        }
        Next();
        return true;
    }

    private static UInt128 Read128(ReadOnlySpan<byte> data)
    {
        UInt128 v = 0;
        for (int i = data.Length - 1; i >= 0; i--) v = (v << 8) | data[i];
        return v;
    }
}
