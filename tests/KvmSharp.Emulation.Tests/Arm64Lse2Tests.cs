// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// FEAT_LSE2's alignment rules in the A64 interpreter (A64Interpreter.Alignment.cs <c>UnalignedAccessFaults</c>; Arm ARM
/// DDI 0487 pseudocode AArch64.UnalignedAccessFaults, AllInAlignedQuantity, AArch64.S1HasAlignmentFault,
/// AArch64.ExclusiveMonitorsPass, NoFault): the exclusive, atomic and ordered accesses on the presets without
/// FEAT_LSE2 (Neoverse N1, N1+PAuth: every unaligned one faults) and with it (V1, V2: ID_AA64MMFR2_EL1.AT = 1), under
/// SCTLR_EL1.nAA 0 and 1, SCTLR_EL1.A = 1 and Device memory; and a compiled-C release store gcc turns into STLURH
/// (FEAT_LRCPC2).
/// <para>Oracle: qemu-aarch64 7.2 -cpu max does not implement FEAT_LSE2 (its ID_AA64MMFR2_EL1.AT and HWCAP_USCAT read
/// 0, and LDAR, LDXR, LDADD and LDAPUR of 8 bytes at a 16-byte block's offset 4 — all within the block — raise SIGBUS
/// in user mode), so every FEAT_LSE2 expectation here is derived by hand from the pseudocode quoted in each test;
/// only the compiled-C STLURH case (aligned) is compared with qemu.</para>
/// </summary>
public class Arm64Lse2Tests
{
    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, L3 = 0x7000;

    /// <summary>The matrix's data slots (64 bytes per execution) and where the guest stores each execution's registers.</summary>
    private const ulong Slots = 0x8000, Results = 0xC000;

    /// <summary>VA base of the Device alias: L2[1], a 2 MiB block over IPA 0 with AttrIndx 1 (MAIR Attr1 = 0x00).</summary>
    private const ulong DeviceAlias = 0x20_0000;

    /// <summary>VA of L2[3]'s 4 KiB pages: page 0 → IPA <see cref="PageA"/>, page 1 → IPA <see cref="PageB"/> (not adjacent).</summary>
    private const ulong SplitVa = 0x60_0000, PageA = 0xD000, PageB = 0xF000;

    private const ulong NoFault = 0xDEAD, Il = 1UL << 25;

    /// <summary>SCTLR_EL1.nAA: bit 6 (D24.2 SCTLR_EL1, "nAA, bit [6]"; written here, not taken from the interpreter).</summary>
    private const ulong SctlrNaa = 1UL << 6;

    // T0SZ 16, TG0 4K, EPD1 (no TTBR1 walks), IPS 0b010 (40 bits).
    private const ulong TcrValue = 16 | (1UL << 23) | (2UL << 30) | (2UL << 32);

    /// <summary>The initial X2 (the store data; a load replaces it), X3 and X4 of an execution.</summary>
    private const ulong X2Init = 0xF1E2_D3C4_B5A6_9788, X4Init = 0x4444_4444_4444_4444, X3Default = 0x3333;

    private static ulong DataAbortCur(bool wnr) => (0x25UL << 26) | Il | 0x21 | (wnr ? 1UL << 6 : 0);

    /// <summary>The byte the test writes at IPA <paramref name="ipa"/> (37 is odd: 256 consecutive bytes all differ).</summary>
    private static byte Pattern(ulong ipa) => (byte)(ipa * 37 + 11);

    /// <summary>What an instruction does with X2 (Rt), X3 (Rs) and X4 (Rt2) at [X1].</summary>
    public enum Op
    {
        /// <summary>X2 = the bytes, zero-extended.</summary>
        Load,

        /// <summary>X2 = the halfword, sign-extended to 64 bits (LDAPURSH Xt).</summary>
        LoadSignedHalf,

        /// <summary>X2 = the low half of the bytes, X4 = the high half (LDXP/LDAXP).</summary>
        LoadPair,

        /// <summary>The bytes = X2's low bytes.</summary>
        Store,

        /// <summary>STXR/STLXR/STXP with no load-exclusive before it: W3 = 1 (failed), nothing stored.</summary>
        StoreExclusive,

        /// <summary>LDADD: X2 = the old value, the bytes = old + X3.</summary>
        Add,

        /// <summary>STADD (LDADD with Rt = XZR): the bytes = old + X3, X2 kept.</summary>
        StoreAdd,

        /// <summary>SWP: X2 = the old value, the bytes = X3.</summary>
        Swap,

        /// <summary>CAS with X3 = the old value: the bytes = X2, X3 = the old value.</summary>
        CompareAndSwap,
    }

    /// <summary>
    /// One instruction on [X1] (Rt = X2, Rs = X3, Rt2 = X4): <paramref name="Atomic"/> for accdesc.exclusive or
    /// accdesc.atomicop (the first class of AArch64.UnalignedAccessFaults), false for an acqsc/acqpc/relsc access;
    /// <paramref name="Rcpc2"/> for FEAT_LRCPC2 (UNDEFINED on N1).
    /// </summary>
    public sealed record Row(string Name, uint Insn, int Size, bool Atomic, Op Op, bool Rcpc2 = false)
    {
        /// <summary>ESR_ELx.WnR of its alignment fault: fault.write = !accdesc.read &amp;&amp; accdesc.write (NoFault).</summary>
        public bool WnR => Op is Op.Store or Op.StoreExclusive;

        public override string ToString() => Name;
    }

    /// <summary>Every access class: exclusive (load, store, pair), atomic (LD&lt;op&gt;, ST&lt;op&gt;, SWP, CAS), ordered (LDAR/STLR, LDLAR/STLLR, LDAPR, LDAPUR/STLUR).</summary>
    private static readonly Row[] Rows =
    [
        new("ldxr x2, [x1]", 0xC85F_7C22, 8, true, Op.Load),
        new("ldaxr w2, [x1]", 0x885F_FC22, 4, true, Op.Load),
        new("ldxrh w2, [x1]", 0x485F_7C22, 2, true, Op.Load),
        new("stxr w3, x2, [x1]", 0xC803_7C22, 8, true, Op.StoreExclusive),
        new("stlxr w3, w2, [x1]", 0x8803_FC22, 4, true, Op.StoreExclusive),
        new("ldxp w2, w4, [x1]", 0x887F_1022, 8, true, Op.LoadPair),
        new("ldaxp x2, x4, [x1]", 0xC87F_9022, 16, true, Op.LoadPair),
        new("stxp w3, w2, w4, [x1]", 0x8823_1022, 8, true, Op.StoreExclusive),
        new("ldadd x3, x2, [x1]", 0xF823_0022, 8, true, Op.Add),
        new("ldaddal w3, w2, [x1]", 0xB8E3_0022, 4, true, Op.Add),
        new("swph w3, w2, [x1]", 0x7823_8022, 2, true, Op.Swap),
        new("cas x3, x2, [x1]", 0xC8A3_7C22, 8, true, Op.CompareAndSwap),
        new("casal w3, w2, [x1]", 0x88E3_FC22, 4, true, Op.CompareAndSwap),
        new("stadd x3, [x1]", 0xF823_003F, 8, true, Op.StoreAdd),
        new("ldar x2, [x1]", 0xC8DF_FC22, 8, false, Op.Load),
        new("ldarh w2, [x1]", 0x48DF_FC22, 2, false, Op.Load),
        new("stlr w2, [x1]", 0x889F_FC22, 4, false, Op.Store),
        new("stlr x2, [x1]", 0xC89F_FC22, 8, false, Op.Store),
        new("ldlar x2, [x1]", 0xC8DF_7C22, 8, false, Op.Load),
        new("stllr w2, [x1]", 0x889F_7C22, 4, false, Op.Store),
        new("ldapr x2, [x1]", 0xF8BF_C022, 8, false, Op.Load),
        new("ldaprh w2, [x1]", 0x78BF_C022, 2, false, Op.Load),
        new("ldapur x2, [x1]", 0xD940_0022, 8, false, Op.Load, Rcpc2: true),
        new("stlur w2, [x1]", 0x9900_0022, 4, false, Op.Store, Rcpc2: true),
        new("stlurh w2, [x1]", 0x5900_0022, 2, false, Op.Store, Rcpc2: true),
        new("ldapursh x2, [x1]", 0x5980_0022, 2, false, Op.LoadSignedHalf, Rcpc2: true),
    ];

    /// <summary>Where in a 16-byte block an execution's access starts.</summary>
    public enum Placement
    {
        /// <summary>Aligned to its size (offset = size within the block; 0 for 16 bytes).</summary>
        Aligned,

        /// <summary>Not aligned, all bytes in the block (none for a 16-byte access).</summary>
        Within16,

        /// <summary>Not aligned, crossing into the next block.</summary>
        Crossing16,
    }

    private static int? Offset(int size, Placement p) => (size, p) switch
    {
        (16, Placement.Aligned) => 0,
        (_, Placement.Aligned) => size,
        (16, Placement.Within16) => null,
        (8, Placement.Within16) => 3,   // bytes 3..10
        (4, Placement.Within16) => 9,   // bytes 9..12
        (2, Placement.Within16) => 5,   // bytes 5..6
        (16, Placement.Crossing16) => 8, // 8-aligned, bytes 8..23
        (8, Placement.Crossing16) => 11, // bytes 11..18
        (4, Placement.Crossing16) => 14, // bytes 14..17
        (2, Placement.Crossing16) => 15, // bytes 15..16
        _ => throw new ArgumentOutOfRangeException(nameof(size)),
    };

    /// <summary>Where the accesses go: Normal memory (MMU on), a Device page (MMU on), or anywhere with the MMU off (Device-nGnRnE).</summary>
    public enum Memory
    {
        /// <summary>MMU on, the Normal identity block.</summary>
        Normal,

        /// <summary>MMU on, the Device alias (MAIR Attr1 = 0x00).</summary>
        DevicePage,

        /// <summary>SCTLR_EL1.M = 0: AArch64.S1DisabledOutput makes every data access Device-nGnRnE.</summary>
        MmuOff,
    }

    public enum Outcome
    {
        /// <summary>The instruction completed.</summary>
        Done,

        /// <summary>The alignment fault (EC 0x25, DFSC 0x21, FAR = the address).</summary>
        AlignmentFault,

        /// <summary>UNDEFINED (EC 0x00).</summary>
        Undefined,
    }

    private sealed record Execution(Row Row, Placement Placement, ulong Va, ulong Ipa, ulong X3, Outcome Expected);

    /// <summary>
    /// The expected outcome, hand-derived from the pseudocode: UNDEFINED for FEAT_LRCPC2 without it; an aligned access
    /// never takes an alignment fault; an unaligned one takes it when AArch64.UnalignedAccessFaults says so —
    /// "if AlignmentEnforced() then return TRUE; elsif accdesc.exclusive || accdesc.atomicop then return
    /// !IsFeatureImplemented(FEAT_LSE2) || !AllInAlignedQuantity(address, size, 16); elsif accdesc.acqsc || accdesc.acqpc
    /// || accdesc.relsc then return !IsFeatureImplemented(FEAT_LSE2) || (SCTLR_ELx[].nAA == '0' &amp;&amp;
    /// !AllInAlignedQuantity(address, size, 16))" — else, on Device memory, when AArch64.S1HasAlignmentFault does
    /// ("memattrs.memtype == MemType_Device &amp;&amp; !aligned"), except for a store-exclusive with no monitor set:
    /// AArch64.ExclusiveMonitorsPass returns FALSE before it translates ("if !AArch64.IsExclusiveVA(…) then return FALSE;
    /// memaddrdesc = AArch64.TranslateAddress(…)").
    /// </summary>
    private static Outcome Oracle(Arm64CpuModel model, bool nAA, bool sctlrA, Memory memory, Row row, ulong va)
    {
        if (row.Rcpc2 && model.Lrcpc < 2) return Outcome.Undefined;
        if (va % (ulong)row.Size == 0) return Outcome.Done;
        if (sctlrA) return Outcome.AlignmentFault;
        bool lse2 = model.At >= 1, crosses = va / 16 != (va + (ulong)row.Size - 1) / 16;
        if (!lse2 || (row.Atomic ? crosses : crosses && !nAA)) return Outcome.AlignmentFault;
        if (memory != Memory.Normal && row.Op != Op.StoreExclusive) return Outcome.AlignmentFault;
        return Outcome.Done;
    }

    /// <summary>L0[0] → L1[0] → L2: L2[0] Normal, L2[1] the Device alias, L2[3] → L3 (two 4 KiB pages), L2[8] the ucall block.</summary>
    private static void BuildTables(Arm64TestVm s)
    {
        static ulong Block(ulong oa, ulong attrIndx) => oa | 1 | (attrIndx << 2) | (1UL << 10);
        static ulong Page(ulong oa) => oa | 3 | (1UL << 10);
        s.Host.Write(L0, BitConverter.GetBytes(L1 | 3));
        s.Host.Write(L1, BitConverter.GetBytes(L2 | 3));
        s.Host.Write(L2, BitConverter.GetBytes(Block(0, 0)));
        s.Host.Write(L2 + 8, BitConverter.GetBytes(Block(0, 1)));
        s.Host.Write(L2 + 24, BitConverter.GetBytes(L3 | 3));
        s.Host.Write(L2 + 64, BitConverter.GetBytes(Block(Arm64Guest.UcallMmioGpa, 0)));
        s.Host.Write(L3, BitConverter.GetBytes(Page(PageA)));
        s.Host.Write(L3 + 8, BitConverter.GetBytes(Page(PageB)));
    }

    /// <summary>
    /// MAIR/TCR/TTBR0, then SCTLR_EL1 with M (unless <paramref name="memory"/> is <see cref="Memory.MmuOff"/>), A and
    /// nAA (bit 6) as asked, the others as KVM reset them.
    /// </summary>
    private static void Setup(A64Assembler a, Memory memory, bool nAA, bool sctlrA)
    {
        ulong wanted = (memory == Memory.MmuOff ? 0 : Arm64MmuSetup.SctlrM) | (sctlrA ? Arm64MmuSetup.SctlrA : 0) | (nAA ? SctlrNaa : 0);
        ulong all = Arm64MmuSetup.SctlrM | Arm64MmuSetup.SctlrA | SctlrNaa;
        Arm64MmuSetup.Emit(a, TcrValue, L0, set: wanted, clear: all & ~wanted);
    }

    /// <summary>
    /// x20 = <see cref="NoFault"/>, x24 = the address after <paramref name="insn"/> (where the EL1h vector resumes),
    /// then <paramref name="insn"/>.
    /// </summary>
    private static void Faulting(A64Assembler a, uint insn)
    {
        a.MovImm(X(20), NoFault);
        a.MovImm(X(21), 0);
        ulong resume = Arm64Guest.CodeGpa + (ulong)a.Position + 12;
        a.Movz(X(24), (ushort)resume);
        a.Movk(X(24), (ushort)(resume >> 16), 16);
        a.Emit(insn);
    }

    /// <summary>
    /// A VM on <paramref name="model"/> with the tables, the pattern in its data, and the EL1h synchronous vector
    /// (x20 = ESR_EL1, x21 = FAR_EL1, resume at x24), run to the ucall.
    /// </summary>
    private static (Arm64TestVm Vm, KvmSharp.Vcpu Vcpu) Run(Arm64CpuModel model, Action<A64Assembler> program)
    {
        var s = new Arm64TestVm(program, EmulatorConfig.Arm64() with { Arm64Cpu = model });
        BuildTables(s);
        byte[] data = new byte[Arm64Guest.Size - Slots];
        for (int i = 0; i < data.Length; i++) data[i] = Pattern(Slots + (ulong)i);
        s.Host.Write(Slots, data);
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0)); // ESR_EL1
            a.Mrs(X(21), KvmArm64SysRegs.Encoding(3, 0, 6, 0, 0)); // FAR_EL1
            a.Msr(KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1), X(24));  // ELR_EL1
            a.Eret();
        }));
        var vcpu = s.AddVcpu();
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(Arm64Guest.UcallDone, vcpu.GetOneReg(KvmArm64Regs.X(9)));
        return (s, vcpu);
    }

    private static ulong Read(Arm64TestVm s, ulong ipa, int size)
    {
        byte[] b = new byte[8];
        s.Host.Read(ipa, b.AsSpan(0, size));
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private static ulong OldValue(ulong ipa, int size)
    {
        ulong v = 0;
        for (int i = size - 1; i >= 0; i--) v = (v << 8) | Pattern(ipa + (ulong)i);
        return v;
    }

    private static ulong Mask(int size) => size >= 8 ? ulong.MaxValue : (1UL << (8 * size)) - 1;

    /// <summary>
    /// Runs every row at every placement on one configuration; each execution gets its own 64-byte slot (the access
    /// starts at slot + 16 + the placement's offset) and records X2, X3, X4, ESR (x20) and FAR (x21). Then checks each
    /// against <paramref name="expected"/>: registers and memory as the operation leaves them, or untouched with the
    /// alignment fault's ESR (WnR per <see cref="Row.WnR"/>) and FAR = the address, or untouched with EC 0x00.
    /// </summary>
    private static void RunMatrix(Arm64CpuModel model, bool nAA, bool sctlrA, Memory memory, IReadOnlyList<Row> rows,
        Func<Row, ulong, Outcome> expected, Placement[]? placements = null)
    {
        ulong alias = memory == Memory.DevicePage ? DeviceAlias : 0;
        var executions = new List<Execution>();
        foreach (var row in rows)
        {
            foreach (var p in placements ?? Enum.GetValues<Placement>())
            {
                if (Offset(row.Size, p) is not int offset) continue;
                ulong ipa = Slots + 64 * (ulong)executions.Count + 16 + (ulong)offset;
                ulong x3 = row.Op switch
                {
                    Op.Add or Op.StoreAdd => 0x0102_0304_0506_0708,
                    Op.Swap => 0x1122_3344_5566_BEEF,
                    Op.CompareAndSwap => OldValue(ipa, row.Size),
                    Op.StoreExclusive => 0x77,
                    _ => X3Default,
                };
                executions.Add(new(row, p, alias + ipa, ipa, x3, expected(row, alias + ipa)));
            }
        }
        var (s, v) = Run(model, a =>
        {
            Setup(a, memory, nAA, sctlrA);
            a.MovImm(X(28), Results);
            foreach (var e in executions)
            {
                a.MovImm(X(1), e.Va);
                a.MovImm(X(2), X2Init);
                a.MovImm(X(3), e.X3);
                a.MovImm(X(4), X4Init);
                Faulting(a, e.Row.Insn);
                foreach (int r in new[] { 2, 3, 4, 20, 21 }) a.StrPost(X(r), X(28), 8);
            }
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        using (s)
        {
            var failures = new List<string>();
            for (int i = 0; i < executions.Count; i++)
            {
                var e = executions[i];
                ulong[] got = [.. Enumerable.Range(0, 5).Select(k => s.Host.Read<ulong>(Results + (ulong)(40 * i + 8 * k)))];
                string? why = Check(s, e, got[0], got[1], got[2], got[3], got[4]);
                if (why is not null) failures.Add($"{e.Row.Name} at 0x{e.Va:X} ({e.Placement}, expected {e.Expected}): {why}");
            }
            Assert.True(failures.Count == 0,
                $"{model.Name}, nAA {(nAA ? 1 : 0)}, SCTLR_EL1.A {(sctlrA ? 1 : 0)}, {memory}: {failures.Count} of {executions.Count} differ:\n" +
                string.Join("\n", failures));
        }
    }

    /// <summary>Null when one execution's registers, syndrome and slot are what <see cref="Execution.Expected"/> says.</summary>
    private static string? Check(Arm64TestVm s, Execution e, ulong x2, ulong x3, ulong x4, ulong esr, ulong far)
    {
        int size = e.Row.Size;
        // The slot's bytes as they should be: the pattern, with the store's bytes where it stored.
        byte[] want = new byte[size];
        for (int i = 0; i < size; i++) want[i] = Pattern(e.Ipa + (ulong)i);
        ulong ex2 = X2Init, ex3 = e.X3, ex4 = X4Init;
        if (e.Expected == Outcome.AlignmentFault)
        {
            if (esr != DataAbortCur(e.Row.WnR)) return $"ESR 0x{esr:X}, expected 0x{DataAbortCur(e.Row.WnR):X}";
            if (far != e.Va) return $"FAR 0x{far:X}";
        }
        else if (e.Expected == Outcome.Undefined)
        {
            if (esr != Il) return $"ESR 0x{esr:X}, expected EC 0x00";
        }
        else
        {
            if (esr != NoFault) return $"ESR 0x{esr:X}, FAR 0x{far:X}: it faulted";
            ulong old = size == 16 ? 0 : OldValue(e.Ipa, size);
            ulong mask = Mask(size);
            ulong? stored = null;
            switch (e.Row.Op)
            {
                case Op.Load: ex2 = old; break;
                case Op.LoadSignedHalf: ex2 = (ulong)(long)(short)old; break;
                case Op.LoadPair:
                    int half = size / 2;
                    ex2 = OldValue(e.Ipa, half);
                    ex4 = OldValue(e.Ipa + (ulong)half, half);
                    break;
                case Op.Store: stored = X2Init & mask; break;
                case Op.StoreExclusive: ex3 = 1; break;
                case Op.Add: ex2 = old; stored = (old + e.X3) & mask; break;
                case Op.StoreAdd: stored = (old + e.X3) & mask; break;
                case Op.Swap: ex2 = old; stored = e.X3 & mask; break;
                case Op.CompareAndSwap: ex3 = old; stored = X2Init & mask; break;
            }
            if (stored is ulong st)
            {
                for (int i = 0; i < size; i++) want[i] = (byte)(st >> (8 * i));
            }
        }
        if ((x2, x3, x4) != (ex2, ex3, ex4)) return $"X2/X3/X4 0x{x2:X}/0x{x3:X}/0x{x4:X}, expected 0x{ex2:X}/0x{ex3:X}/0x{ex4:X}";
        byte[] slot = new byte[64], wantSlot = new byte[64];
        ulong slotBase = e.Ipa & ~63UL;
        s.Host.Read(slotBase, slot);
        for (int i = 0; i < 64; i++) wantSlot[i] = Pattern(slotBase + (ulong)i);
        want.CopyTo(wantSlot, (int)(e.Ipa - slotBase));
        return slot.AsSpan().SequenceEqual(wantSlot) ? null : $"memory {Convert.ToHexString(slot)}, expected {Convert.ToHexString(wantSlot)}";
    }

    private static Arm64CpuModel Preset(string name) => Arm64CpuModel.FindPreset(name) ?? throw new ArgumentException(name);

    public static TheoryData<string, bool, bool, Memory> Configurations()
    {
        var data = new TheoryData<string, bool, bool, Memory>();
        foreach (var model in Arm64CpuModel.Presets)
        {
            foreach (bool nAA in new[] { false, true }) data.Add(model.Name, nAA, false, Memory.Normal);
        }
        foreach (string name in new[] { "neoverse-n1", "neoverse-v1", "neoverse-v2" })
        {
            foreach (bool nAA in new[] { false, true })
            {
                data.Add(name, nAA, true, Memory.Normal);
                data.Add(name, nAA, false, Memory.DevicePage);
            }
        }
        data.Add("neoverse-n1", true, false, Memory.MmuOff);
        data.Add("neoverse-v1", false, false, Memory.MmuOff);
        data.Add("neoverse-v1", true, false, Memory.MmuOff);
        return data;
    }

    /// <summary>
    /// Every access class (exclusive load/store/pair, atomic LD&lt;op&gt;/ST&lt;op&gt;/SWP/CAS, ordered LDAR/STLR/LDLAR/STLLR/
    /// LDAPR/LDAPUR/STLUR) × aligned / unaligned within 16 bytes / crossing 16 bytes, on every preset × SCTLR_EL1.nAA 0
    /// and 1 (Normal memory), with SCTLR_EL1.A = 1, on a Device page and with the MMU off: the outcome
    /// <see cref="Oracle"/> derives from the pseudocode (hand-derived: qemu 7.2 lacks FEAT_LSE2), the loaded values and
    /// stored bytes of an access that completes, the ESR (WnR 1 only for a store or store-exclusive) and FAR of one that
    /// faults. On N1 every unaligned one faults whatever nAA says, as before FEAT_LSE2 was modelled.
    /// </summary>
    [Theory]
    [MemberData(nameof(Configurations))]
    public void Every_access_class_follows_aarch64_unalignedaccessfaults(string preset, bool nAA, bool sctlrA, Memory memory)
    {
        var model = Preset(preset);
        RunMatrix(model, nAA, sctlrA, memory, Rows, (row, va) => Oracle(model, nAA, sctlrA, memory, row, va));
    }

    public static TheoryData<string, string, bool, Placement, Outcome> HandRows => new()
    {
        // FEAT_LSE2, ordered: within a 16-byte block always allowed; across one only with nAA = 1.
        { "neoverse-v1", "ldar x2, [x1]", false, Placement.Within16, Outcome.Done },
        { "neoverse-v1", "ldar x2, [x1]", false, Placement.Crossing16, Outcome.AlignmentFault },
        { "neoverse-v1", "ldar x2, [x1]", true, Placement.Crossing16, Outcome.Done },
        { "neoverse-v2", "stlur w2, [x1]", false, Placement.Crossing16, Outcome.AlignmentFault },
        { "neoverse-v2", "stlur w2, [x1]", true, Placement.Crossing16, Outcome.Done },
        { "neoverse-v1", "ldapr x2, [x1]", true, Placement.Crossing16, Outcome.Done },
        // FEAT_LSE2, exclusive and atomic: within a block allowed, across one a fault whatever nAA says.
        { "neoverse-v1", "ldadd x3, x2, [x1]", false, Placement.Within16, Outcome.Done },
        { "neoverse-v1", "ldadd x3, x2, [x1]", true, Placement.Crossing16, Outcome.AlignmentFault },
        { "neoverse-v1", "cas x3, x2, [x1]", true, Placement.Crossing16, Outcome.AlignmentFault },
        { "neoverse-v1", "ldxp w2, w4, [x1]", true, Placement.Within16, Outcome.Done },
        { "neoverse-v1", "ldaxp x2, x4, [x1]", true, Placement.Crossing16, Outcome.AlignmentFault },
        { "neoverse-v2", "stxr w3, x2, [x1]", true, Placement.Crossing16, Outcome.AlignmentFault },
        { "neoverse-v2", "stxr w3, x2, [x1]", false, Placement.Within16, Outcome.Done },
        // Without FEAT_LSE2: every unaligned one faults, nAA or not.
        { "neoverse-n1", "ldar x2, [x1]", true, Placement.Within16, Outcome.AlignmentFault },
        { "neoverse-n1", "ldadd x3, x2, [x1]", true, Placement.Within16, Outcome.AlignmentFault },
        { "neoverse-n1+pauth", "stxr w3, x2, [x1]", true, Placement.Within16, Outcome.AlignmentFault },
        { "neoverse-n1", "ldar x2, [x1]", false, Placement.Aligned, Outcome.Done },
    };

    /// <summary>
    /// The same harness with outcomes written out by hand (Normal memory, SCTLR_EL1.A = 0), so a slip shared by the
    /// interpreter and <see cref="Oracle"/> still shows.
    /// </summary>
    [Theory]
    [MemberData(nameof(HandRows))]
    public void Hand_derived_outcomes_on_normal_memory(string preset, string insn, bool nAA, Placement placement, Outcome outcome)
    {
        var row = Rows.Single(r => r.Name == insn);
        RunMatrix(Preset(preset), nAA, false, Memory.Normal, [row], (_, _) => outcome, [placement]);
    }

    /// <summary>
    /// With nAA = 1 on FEAT_LSE2, an ordered access may cross a page: LDAR X2 at VA 0x60_0FFC reads IPA 0xDFFC..0xDFFF
    /// then 0xF000..0xF003 (the two pages are not adjacent in IPA), STLR X3 at VA 0x60_0FFA writes 0xDFFA..0xDFFF and
    /// 0xF000..0xF001, then STLURH W3 at VA 0x60_0FFF (FEAT_LRCPC2: not on N1) writes 0xDFFF and 0xF000. With nAA = 0
    /// (and on N1 whatever nAA says) each takes the alignment fault (WnR 0, 1, 1) at its VA and touches nothing.
    /// Hand-derived (Mem[]: an unaligned access not in one 16-byte block is done byte by byte, each byte translated).
    /// </summary>
    [Theory]
    [InlineData("neoverse-v1", true, false)]
    [InlineData("neoverse-v2", true, false)]
    [InlineData("neoverse-v1", false, true)]
    [InlineData("neoverse-n1", true, true)]
    public void An_ordered_access_across_a_page_moves_the_bytes_of_both_pages_when_allowed(string preset, bool nAA, bool faults)
    {
        const ulong Store = 0x8877_6655_4433_2211;
        var (s, v) = Run(Preset(preset), a =>
        {
            Setup(a, Memory.Normal, nAA, sctlrA: false);
            a.MovImm(X(2), X2Init);
            a.MovImm(X(3), Store);
            a.MovImm(X(1), SplitVa + 0xFFC);
            Faulting(a, 0xC8DF_FC22); // ldar x2, [x1]
            a.Mov(X(11), X(20));
            a.Mov(X(12), X(21));
            a.MovImm(X(1), SplitVa + 0xFFA);
            Faulting(a, 0xC89F_FC23); // stlr x3, [x1]
            a.Mov(X(13), X(20));
            a.Mov(X(14), X(21));
            a.MovImm(X(1), SplitVa + 0xFFF);
            if (preset != "neoverse-n1") Faulting(a, 0x5900_0023); // stlurh w3, [x1]
            a.Mov(X(15), X(20));
            a.Mov(X(16), X(21));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        using (s)
        {
            ulong Reg(int n) => v.GetOneReg(KvmArm64Regs.X(n));
            byte[] lowPage = new byte[8], highPage = new byte[8];
            s.Host.Read(PageA + 0xFF8, lowPage);
            s.Host.Read(PageB, highPage);
            byte[] lowBefore = [.. Enumerable.Range(0, 8).Select(i => Pattern(PageA + 0xFF8 + (ulong)i))];
            byte[] highBefore = [.. Enumerable.Range(0, 8).Select(i => Pattern(PageB + (ulong)i))];
            if (faults)
            {
                Assert.Equal((DataAbortCur(false), SplitVa + 0xFFC), (Reg(11), Reg(12)));
                Assert.Equal((DataAbortCur(true), SplitVa + 0xFFA), (Reg(13), Reg(14)));
                if (preset != "neoverse-n1") Assert.Equal((DataAbortCur(true), SplitVa + 0xFFF), (Reg(15), Reg(16)));
                Assert.Equal(X2Init, Reg(2));
                Assert.Equal(lowBefore, lowPage);
                Assert.Equal(highBefore, highPage);
                return;
            }
            Assert.Equal((NoFault, NoFault, NoFault), (Reg(11), Reg(13), Reg(15)));
            // LDAR ran first: the last four bytes of page A, then the first four of page B.
            Assert.Equal(OldValue(PageA + 0xFFC, 4) | (OldValue(PageB, 4) << 32), Reg(2));
            // STLR X3: 0xDFFA..0xDFFF = 11 22 33 44 55 66, 0xF000..0xF001 = 77 88; then STLURH W3 (0x2211): 0xDFFF = 11, 0xF000 = 22.
            Assert.Equal([lowBefore[0], lowBefore[1], 0x11, 0x22, 0x33, 0x44, 0x55, 0x11], lowPage);
            Assert.Equal([0x22, 0x88, .. highBefore[2..]], highPage);
        }
    }

    /// <summary>
    /// A load-exclusive / store-exclusive pair at an address aligned to neither size but inside one 16-byte block
    /// (LDAXR X5 / STLXR W3, X2 at +3; LDXP W5, W6 / STXP W3, W7, W8 at +4, not 8-aligned): with FEAT_LSE2 the monitor
    /// is set, the store succeeds (W3 = 0) and writes its bytes there; without it each instruction takes the alignment
    /// fault (ESR WnR 0 for the load, 1 for the store). Hand-derived (AArch64.ExclusiveMonitorsPass calls
    /// AArch64.UnalignedAccessFaults before the monitor check).
    /// </summary>
    [Theory]
    [InlineData("neoverse-v1")]
    [InlineData("neoverse-n1")]
    public void An_unaligned_exclusive_pair_within_16_bytes_succeeds_with_lse2(string preset)
    {
        var model = Preset(preset);
        const ulong A = Slots + 0x400;
        var (s, v) = Run(model, a =>
        {
            Setup(a, Memory.Normal, nAA: false, sctlrA: false);
            a.MovImm(X(2), X2Init);
            a.MovImm(X(3), 0x77);
            a.MovImm(X(1), A + 3);
            Faulting(a, 0xC85F_FC25); // ldaxr x5, [x1]
            a.Mov(X(11), X(20));
            a.Mov(X(16), X(5));
            Faulting(a, 0xC803_FC22); // stlxr w3, x2, [x1]
            a.Mov(X(12), X(20));
            a.Mov(X(13), X(3));
            a.MovImm(X(3), 0x77);
            a.MovImm(X(7), 0xAABB_CCDD);
            a.MovImm(X(8), 0x1122_3344);
            a.MovImm(X(1), A + 0x24);
            Faulting(a, 0x887F_1825); // ldxp w5, w6, [x1]
            a.Mov(X(14), X(20));
            Faulting(a, 0x8823_2027); // stxp w3, w7, w8, [x1]
            a.Mov(X(15), X(20));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        using (s)
        {
            ulong Reg(int n) => v.GetOneReg(KvmArm64Regs.X(n));
            if (model.At == 0)
            {
                Assert.Equal((DataAbortCur(false), DataAbortCur(true), DataAbortCur(false), DataAbortCur(true)), (Reg(11), Reg(12), Reg(14), Reg(15)));
                Assert.Equal(0x77UL, Reg(3));
                Assert.Equal(OldValue(A + 3, 8), Read(s, A + 3, 8));
                return;
            }
            Assert.Equal((NoFault, NoFault, NoFault, NoFault), (Reg(11), Reg(12), Reg(14), Reg(15)));
            Assert.Equal(OldValue(A + 3, 8), Reg(16));
            Assert.Equal((0UL, 0UL), (Reg(13), Reg(3)));
            Assert.Equal(X2Init, Read(s, A + 3, 8));
            Assert.Equal((Pattern(A + 2), Pattern(A + 11)), (s.Host.Read<byte>(A + 2), s.Host.Read<byte>(A + 11)));
            Assert.Equal((OldValue(A + 0x24, 4), OldValue(A + 0x28, 4)), (Reg(5), Reg(6)));
            Assert.Equal(0x1122_3344_AABB_CCDDUL, Read(s, A + 0x24, 8));
        }
    }

    /// <summary>
    /// KVM resets SCTLR_EL1 to 0x00C50078 (sys_regs.c), whose bit 6 is nAA: a FEAT_LSE2 guest that never writes it
    /// runs with nAA = 1, so an LDAR across a 16-byte boundary loads (V1) where N1 faults. Hand-derived.
    /// </summary>
    [Theory]
    [InlineData("neoverse-v1")]
    [InlineData("neoverse-n1")]
    public void Kvms_reset_sctlr_el1_has_naa_set(string preset)
    {
        var model = Preset(preset);
        var (s, v) = Run(model, a =>
        {
            Arm64MmuSetup.Emit(a, TcrValue, L0, set: Arm64MmuSetup.SctlrM, clear: Arm64MmuSetup.SctlrA);
            a.MovImm(X(1), Slots + 11);
            Faulting(a, 0xC8DF_FC22); // ldar x2, [x1]
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        using (s)
        {
            Assert.NotEqual(0UL, v.GetOneReg(KvmArm64SysRegs.SCTLR_EL1) & SctlrNaa);
            if (model.At == 0)
            {
                Assert.Equal(DataAbortCur(false), v.GetOneReg(KvmArm64Regs.X(20)));
                return;
            }
            Assert.Equal(NoFault, v.GetOneReg(KvmArm64Regs.X(20)));
            Assert.Equal(OldValue(Slots + 11, 8), v.GetOneReg(KvmArm64Regs.X(2)));
        }
    }

    // ---- Task: a compiled-C release store gcc emits as STLURH (FEAT_LRCPC2) ----

    /// <summary>
    /// C release stores of a uint16_t at a negative offset from the pointer the function gets (a struct member just
    /// before the one it points at; the halfword just before an end pointer), built for Armv8.4 (FEAT_LRCPC2's
    /// STLURH) at -O2 inside the harness's -O3 program; the digests cover the whole records.
    /// </summary>
    private const string StlurhC = """
        struct rec { uint64_t key; uint16_t tag; uint16_t seq; uint32_t len; };
        #define RCPC2 __attribute__((noinline, target("arch=armv8.4-a"), optimize("O2")))
        RCPC2 static void publish_seq(uint32_t *len, uint16_t v)
        {
            struct rec *r = (struct rec *)((char *)len - __builtin_offsetof(struct rec, len));
            __atomic_store_n(&r->seq, v, __ATOMIC_RELEASE);
        }
        RCPC2 static void publish_before(uint16_t *end, uint16_t v) { __atomic_store_n(end - 1, v, __ATOMIC_RELEASE); }
        static struct rec recs[16];
        static uint16_t halves[40];
        __attribute__((noinline)) static uint64_t stlurh0(void)
        {
            uint64_t h = 0;
            for (int i = 0; i < 16; i++)
            {
                recs[i].key = (uint64_t)A[i] << 40 | B[i]; recs[i].tag = (uint16_t)(C[i] * 3); recs[i].seq = 0x5555; recs[i].len = (uint32_t)i * 77;
                publish_seq(&recs[i].len, (uint16_t)(A[i + 16] | B[i + 16] << 8));
                h = bytes(h, (const uint8_t *)&recs[i], sizeof recs[i]);
            }
            return h;
        }
        __attribute__((noinline)) static uint64_t stlurh1(void)
        {
            for (int i = 0; i < 40; i++) halves[i] = (uint16_t)(0xA000 + i);
            for (int i = 1; i < 40; i += 3) publish_before(&halves[i], (uint16_t)(C[i] << 8 | A[i]));
            return bytes(0, (const uint8_t *)halves, sizeof halves);
        }

        """;

    private static readonly string[] StlurhNames = ["stlurh: struct member before the pointer", "stlurh: halfword before an end pointer"];

    private static (byte[]?, string?, string?) BuildStlurh() =>
        Arm64Sve2Tests.BuildCompiledCases(StlurhC, ["stlurh0", "stlurh1"], "lse2-stlurh");

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> StlurhBuilt = new(BuildStlurh);

    /// <summary>
    /// gcc 12 emits STLURH Wt, [Xn, #-2] for both release stores (objdump of the guest), and the emulator on the
    /// Neoverse V1 preset (FEAT_LRCPC2) gives the digests qemu-aarch64 -cpu max gives (both stores are 2-byte aligned:
    /// the guest runs with the MMU off, where any unaligned access faults).
    /// </summary>
    [SkippableFact]
    public void A_compiled_release_store_of_a_uint16_at_a_negative_offset_is_stlurh_and_gives_what_qemu_gives()
    {
        var built = StlurhBuilt.Value;
        Skip.If(built.Guest is null, built.Why);
        string disassembly = Arm64Sve2Tests.DisassembleGuest("lse2-stlurh");
        Assert.Matches(@"<publish_seq[^>]*>:\n(?:.*\n){0,3}.*\tstlurh\tw\d+, \[x\d+, #-2\]", disassembly);
        Assert.Matches(@"<publish_before[^>]*>:\n(?:.*\n){0,3}.*\tstlurh\tw\d+, \[x\d+, #-2\]", disassembly);
        Arm64Sve2Tests.CompareWithQemu(built, StlurhNames, 128, Arm64CpuModel.NeoverseV1);
    }
}
