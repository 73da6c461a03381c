// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The integer instructions compiled C uses beyond the base set (Intel SDM Vol. 2 / AMD APM Vol. 3 per instruction):
/// bit scans and counts, BSWAP/MOVBE, SHLD/SHRD, RCL/RCR, XADD, CMPXCHG, CMPXCHG8B/16B, LAHF/SAHF, XLAT, in a 64-bit
/// guest with no KVM_SET_CPUID2 table (upstream KVM intercepts none of them: the CPU alone decides whether they
/// exist). Each step sets RFLAGS, runs the instruction, and stores the results and RFLAGS masked to the flags the
/// manuals define for it (where AMD documents an outcome the SDM leaves undefined, e.g. BSF's destination for a zero
/// source, the AMD rule is asserted: every host this project runs on is an AMD EPYC). kvm_pvm runs the guest through
/// KVM's emulator, which differs for POPCNT, CMPXCHG16B, MOVBE, TZCNT and LZCNT (named host deviations: the real
/// kernel's behaviour is asserted there, upstream's on the emulator).
/// </summary>
public static class IntegerInstructions
{
    private const ulong Scratch = 0x8_9000;
    private const ulong Out = Scratch + 0x200;
    private const int Arith = 0x8D5; // OF SF ZF AF PF CF

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>Stores registers and masked RFLAGS one qword after another at <see cref="Out"/>.</summary>
    private sealed class Recorder(Assembler a)
    {
        private int _slot;

        public int Count => _slot;

        public void SetFlags(int flags)
        {
            a.push(flags | 2);
            a.popfq();
        }

        public void Save(AssemblerRegister64 reg) => a.mov(__qword_ptr[Out + (ulong)_slot++ * 8], reg);

        public void SaveMemory(ulong gpa)
        {
            a.mov(r12, __qword_ptr[gpa]);
            Save(r12);
        }

        public void SaveFlags(int mask)
        {
            // The flags are restored after the AND, so a later step may rely on them.
            a.pushfq();
            a.pushfq();
            a.pop(r11);
            a.and(r11, mask);
            Save(r11);
            a.popfq();
        }
    }

    private static void RunAndCompare(CaseContext ctx, Action<Assembler, Recorder> program, Action<IdtGuest> setup, (ulong Value, string What)[] expected)
    {
        using var kvm = ctx.OpenKvm();
        int count = 0;
        using var g = IdtGuest.Create(kvm, a =>
        {
            var rec = new Recorder(a);
            program(a, rec);
            a.hlt();
            count = rec.Count;
        }, Halting);
        setup(g);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == Abi.KvmExitReason.KVM_EXIT_HLT, exit.ToString() + $" at RIP 0x{g.Vcpu.GetRegs().rip:X}, code 0x{g.Guest.Memory.Read<ulong>(g.Vcpu.GetRegs().rip):X16}");
        Assert.Empty(g.Deliveries);
        Assert.Equal(expected.Length, count);
        var errors = new List<string>();
        for (int i = 0; i < expected.Length; i++)
        {
            ulong v = g.Guest.Memory.Read<ulong>(Out + (ulong)i * 8);
            if (v != expected[i].Value) errors.Add($"slot {i} ({expected[i].What}): 0x{v:X}, expected 0x{expected[i].Value:X}");
        }
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [ConformanceCase("Intel SDM Vol. 2A BSF/BSR, BSWAP; AMD APM Vol. 3 BSF: a zero source sets ZF and leaves the destination unchanged; BSWAP reverses bytes")]
    public static void bit_scans_and_byte_swaps(CaseContext ctx)
    {
        const int Zf = 0x40;
        RunAndCompare(ctx, (a, r) =>
        {
            r.SetFlags(Arith);
            a.mov(rbx, -1L); a.mov(rcx, 0x80L); a.bsf(rbx, rcx); r.Save(rbx); r.SaveFlags(Zf);
            a.mov(rbx, 0x1234L); a.xor(ecx, ecx); r.SetFlags(0); a.bsf(rbx, rcx); r.Save(rbx); r.SaveFlags(Zf);
            a.mov(rbx, -1L); a.mov(ecx, 0x8001_0000u); a.bsr(ebx, ecx); r.Save(rbx); r.SaveFlags(Zf);
            a.mov(rbx, unchecked((long)0xFFFF_FFFF_0000_1234UL)); a.xor(ecx, ecx); a.bsr(ebx, ecx); r.Save(rbx); r.SaveFlags(Zf);
            a.mov(rbx, unchecked((long)0xFFFF_FFFF_0000_1234UL)); a.bsf(ebx, __dword_ptr[Scratch]); r.Save(rbx); r.SaveFlags(Zf);
            a.mov(rbx, unchecked((long)0xFFFF_FFFF_0000_1234UL)); a.bsr(bx, __word_ptr[Scratch]); r.Save(rbx); r.SaveFlags(Zf);
            a.mov(rbx, unchecked((long)0xFFFF_FFFF_0000_1234UL)); a.bsr(ebx, __dword_ptr[Scratch + 0x40]); r.Save(rbx); r.SaveFlags(Zf);
            r.SetFlags(Arith);
            a.mov(rbx, 0x0102_0304_0506_0708L); a.bswap(rbx); r.Save(rbx);
            a.mov(rbx, unchecked((long)0xFFFF_FFFF_1122_3344UL)); a.bswap(ebx); r.Save(rbx);
            r.SaveFlags(Arith);
        }, _ => { },
        [
            (7, "bsf rbx, 0x80"), (0, "ZF"),
            (0x1234, "bsf rbx, 0: unchanged"), (Zf, "ZF"),
            (31, "bsr ebx, 0x80010000"), (0, "ZF"),
            (0xFFFF_FFFF_0000_1234, "bsr ebx, 0: unchanged, not zero-extended"), (Zf, "ZF"),
            (0xFFFF_FFFF_0000_1234, "bsf ebx, [m32] = 0: unchanged"), (Zf, "ZF"),
            (0xFFFF_FFFF_0000_1234, "bsr bx, [m16] = 0: unchanged"), (Zf, "ZF"),
            (0xFFFF_FFFF_0000_1234, "bsr ebx, [m32] = 0: unchanged"), (Zf, "ZF"),
            (0x0807_0605_0403_0201, "bswap rbx"),
            (0x4433_2211, "bswap ebx"),
            (Arith, "BSWAP leaves the flags"),
        ]);
    }

    [ConformanceCase("Intel SDM Vol. 2B SHLD/SHRD, 2B RCL/RCR: counts masked to 5 (6) bits, RCL/RCR modulo 9/17 for 8/16-bit operands; a zero count changes no flags; CF = last bit out, OF defined for a count of 1, SF ZF PF from a double shift's result, SF ZF AF PF unaffected by RCL/RCR")]
    public static void double_shifts_and_rotates_through_carry(CaseContext ctx)
    {
        const int Szpc = 0xC5, Szpco = 0x8C5, CfOf = 0x801, Rc = 0xD5; // Rc: CF + the unaffected SF ZF AF PF
        RunAndCompare(ctx, (a, r) =>
        {
            r.SetFlags(0);
            a.mov(rbx, 0x4000_0000_0000_0000L); a.mov(rcx, unchecked((long)0x8000_0000_0000_0000UL)); a.shld(rbx, rcx, 1); r.Save(rbx); r.SaveFlags(Szpco);
            a.mov(rbx, 0x0C00_0000_0000_0001L); a.mov(rcx, unchecked((long)0xF000_0000_0000_0000UL)); a.shld(rbx, rcx, 5); r.Save(rbx); r.SaveFlags(Szpc);
            r.SetFlags(Arith);
            a.mov(rbx, unchecked((long)0xFFFF_FFFF_0000_0007UL)); a.mov(ecx, 0); a.shld(ebx, edx, cl); r.Save(rbx); r.SaveFlags(Arith);
            a.mov(ebx, 0x1234); a.mov(ecx, 0xABCD); a.shld(bx, cx, 8); r.Save(rbx); r.SaveFlags(Szpc);
            a.mov(ebx, 0xC1); a.mov(ecx, 1); a.shrd(rbx, rcx, 7); r.Save(rbx); r.SaveFlags(Szpc);
            a.mov(ebx, 0x8000_0001u); a.xor(ecx, ecx); a.shrd(ebx, ecx, 1); r.Save(rbx); r.SaveFlags(Szpco);
            r.SetFlags(0);
            a.mov(ebx, 0x1234); a.mov(ecx, 64); a.shrd(rbx, rdx, cl); r.Save(rbx); r.SaveFlags(Arith);
            a.mov(rbx, unchecked((long)0x8000_0000_0000_0001UL)); a.rcl(rbx, 1); r.Save(rbx); r.SaveFlags(CfOf);
            r.SetFlags(Arith);
            a.mov(ebx, 0x0C00_0001); a.rcl(ebx, 5); r.Save(rbx); r.SaveFlags(Rc);
            a.mov(ebx, 0x81); a.rcl(bl, 9); r.Save(rbx); r.SaveFlags(Rc);
            r.SetFlags(0);
            a.mov(ebx, 0x8001); a.mov(ecx, 20); a.rcr(bx, cl); r.Save(rbx); r.SaveFlags(Rc);
            r.SetFlags(1);
            a.mov(ebx, 1); a.rcr(rbx, 1); r.Save(rbx); r.SaveFlags(CfOf);
            a.mov(ebx, 0x55); a.mov(ecx, 0); a.rcr(rbx, cl); r.Save(rbx); r.SaveFlags(Arith);
        }, _ => { },
        [
            (0x8000_0000_0000_0001, "shld rbx, rcx, 1"), (0x880, "OF SF"),
            (0x8000_0000_0000_003E, "shld rbx, rcx, 5"), (0x81, "SF CF"),
            (7, "shld ebx, edx, 0: zero-extended"), (Arith, "count 0: flags kept"),
            (0x34AB, "shld bx, cx, 8"), (0, "CF from bit 8"),
            (0x0200_0000_0000_0001, "shrd rbx, rcx, 7"), (0x01, "CF"),
            (0x4000_0000, "shrd ebx, ecx, 1"), (0x805, "OF PF CF"),
            (0x1234, "shrd rbx, rdx, 64 (masked to 0)"), (0, "flags kept"),
            (2, "rcl rbx, 1"), (CfOf, "CF OF"),
            (0x8000_0030, "rcl ebx, 5 with CF"), (Rc, "CF; SF ZF AF PF kept"),
            (0x81, "rcl bl, 9: a whole turn"), (Rc, "CF kept"),
            (0x5000, "rcr bx, 20 (3 modulo 17)"), (0, "CF"),
            (0x8000_0000_0000_0000, "rcr rbx, 1 with CF"), (CfOf, "CF OF"),
            (0x55, "rcr rbx, 0"), (CfOf, "flags kept"),
        ]);
    }

    [ConformanceCase("Intel SDM Vol. 2B XADD, 2A CMPXCHG/CMPXCHG8B, LAHF/SAHF, XLAT: XADD swaps and adds with ADD's flags; CMPXCHG compares with the accumulator (CMP's flags) and loads it on failure; CMPXCHG8B sets only ZF; LOCK is accepted on the memory forms")]
    public static void exchanges_compare_exchanges_and_flag_byte_moves(CaseContext ctx)
    {
        const int Zf = 0x40;
        RunAndCompare(ctx, (a, r) =>
        {
            r.SetFlags(0);
            a.mov(rbx, -1L); a.xadd(__qword_ptr[Scratch], rbx); r.Save(rbx); r.SaveMemory(Scratch); r.SaveFlags(Arith);
            a.mov(rbx, -1L); a.mov(ebx, 1); a.@lock.xadd(__dword_ptr[Scratch + 8], ebx); r.Save(rbx); r.SaveMemory(Scratch + 8); r.SaveFlags(Arith);
            a.mov(eax, 7); a.mov(ecx, 7); a.mov(edx, 9); a.cmpxchg(rcx, rdx); r.Save(rax); r.Save(rcx); r.SaveFlags(Arith);
            a.mov(rax, unchecked((long)0xFFFF_FFFF_0000_0005UL)); a.mov(rcx, unchecked((long)0xFFFF_FFFF_0000_0007UL));
            a.cmpxchg(ecx, edx); r.Save(rax); r.Save(rcx); r.SaveFlags(Arith);
            a.mov(eax, 0x1111); a.mov(edx, 0x2222); a.@lock.cmpxchg(__qword_ptr[Scratch + 16], rdx); r.Save(rax); r.SaveMemory(Scratch + 16); r.SaveFlags(Arith);
            a.mov(eax, 0x1234_5601); a.cmpxchg(__byte_ptr[Scratch + 24], dl); r.Save(rax); r.SaveMemory(Scratch + 24); r.SaveFlags(Arith);
            r.SetFlags(Arith & ~Zf);
            a.mov(eax, 1); a.mov(edx, 2); a.mov(ebx, 3); a.mov(ecx, 4); a.cmpxchg8b(__qword_ptr[Scratch + 32]); r.SaveMemory(Scratch + 32); r.SaveFlags(Arith);
            r.SetFlags(Zf);
            a.mov(rax, unchecked((long)0xFFFF_FFFF_0000_0001UL)); a.mov(edx, 2); a.@lock.cmpxchg8b(__qword_ptr[Scratch + 32]); r.Save(rax); r.Save(rdx); r.SaveFlags(Arith);
            r.SetFlags(0x93);
            a.mov(eax, 0); a.lahf(); r.Save(rax);
            r.SetFlags(0);
            a.mov(eax, 0xFF00); a.sahf(); r.SaveFlags(0x8FF);
            a.mov(rbx, (long)(Scratch + 64)); a.mov(eax, 0xAAAA_AA05u); a.xlatb(); r.Save(rax);
        }, g =>
        {
            g.Guest.Memory.Write(Scratch, 5UL);
            g.Guest.Memory.Write(Scratch + 8, 0xAAAA_AAAA_7FFF_FFFFUL);
            g.Guest.Memory.Write(Scratch + 16, 0x1111UL);
            g.Guest.Memory.Write(Scratch + 24, 0xBBBB_BBBB_BBBB_BB80UL);
            g.Guest.Memory.Write(Scratch + 32, 0x0000_0002_0000_0001UL);
            for (int i = 0; i < 16; i++) g.Guest.Memory.Write(Scratch + 64 + (ulong)i, (byte)(i * 3));
        },
        [
            (5, "xadd: rbx takes the old value"), (4, "xadd: 5 + -1"), (0x11, "CF AF"),
            (0x7FFF_FFFF, "lock xadd dword: ebx, zero-extended"), (0xAAAA_AAAA_8000_0000, "the sum"), (0x894, "OF SF AF PF"),
            (7, "cmpxchg success: rax kept"), (9, "rcx = rdx"), (0x44, "ZF PF"),
            (7, "cmpxchg failure: eax = ecx, zero-extended"), (7, "ecx written back, zero-extended"), (0x91, "SF AF CF"),
            (0x1111, "lock cmpxchg m64 success"), (0x2222, "memory = rdx"), (0x44, "ZF PF"),
            (0x1234_5680, "cmpxchg m8 failure: al = 0x80"), (0xBBBB_BBBB_BBBB_BB80, "memory kept"), (0x885, "OF SF PF CF"),
            (0x0000_0004_0000_0003, "cmpxchg8b success"), (Arith, "ZF set, the others kept"),
            (3, "cmpxchg8b failure: eax, zero-extended"), (4, "edx"), (0, "ZF clear"),
            (0x9300, "lahf"),
            (0xD7, "sahf 0xFF: SF ZF AF PF CF, bits 3 and 5 stay 0"),
            (0xAAAA_AA0F, "xlat: [rbx + 5]"),
        ]);
    }

    [ConformanceCase("Intel SDM Vol. 2B TZCNT/LZCNT (BMI1/ABM): the count of trailing/leading zeros, the operand size for a zero source; CF = the source was zero, ZF = the count is zero (kvm_pvm: run as BSF/BSR, HostDeviations.KvmPvmTzcntLzcntRunAsBsfBsr)")]
    public static void tzcnt_and_lzcnt_count_zeros(CaseContext ctx)
    {
        const int Zf = 0x40, Cf = 0x01, CfZf = Cf | Zf;
        bool asBitScans = HostDeviations.KvmPvmTzcntLzcntRunAsBsfBsr(ctx.Target.IsReal);
        RunAndCompare(ctx, (a, r) =>
        {
            r.SetFlags(Arith);
            a.mov(rbx, 0x1234L); a.xor(ecx, ecx); a.tzcnt(rbx, rcx); r.Save(rbx); r.SaveFlags(CfZf);
            a.mov(rbx, -1L); a.mov(ecx, 0x100); a.tzcnt(ebx, ecx); r.Save(rbx); r.SaveFlags(CfZf);
            a.mov(ecx, 1); a.lzcnt(rbx, rcx); r.Save(rbx); r.SaveFlags(CfZf);
            a.mov(ecx, 0x8000_0000u); a.lzcnt(ebx, ecx); r.Save(rbx); r.SaveFlags(CfZf);
            a.mov(rbx, -1L); a.xor(ecx, ecx); a.lzcnt(bx, cx); r.Save(rbx); r.SaveFlags(CfZf);
        }, _ => { }, asBitScans
            ?
            [
                (0x1234, "tzcnt rbx, 0 as bsf: unchanged"), (Zf, "ZF"),
                (8, "tzcnt ebx, 0x100"), (0, "CF ZF"),
                (0, "lzcnt rbx, 1 as bsr: bit 0"), (0, "CF ZF"),
                (31, "lzcnt ebx, 0x80000000 as bsr: bit 31"), (0, "CF ZF"),
                (ulong.MaxValue, "lzcnt bx, 0 as bsr: unchanged"), (Zf, "ZF"),
            ]
            :
            [
                (64, "tzcnt rbx, 0"), (Cf, "CF"),
                (8, "tzcnt ebx, 0x100"), (0, "CF ZF"),
                (63, "lzcnt rbx, 1"), (0, "CF ZF"),
                (0, "lzcnt ebx, 0x80000000"), (Zf, "ZF"),
                (0xFFFF_FFFF_FFFF_0010, "lzcnt bx, 0"), (Cf, "CF"),
            ]);
    }

    [ConformanceCase("Intel SDM Vol. 2B MOVBE: a load or store with the bytes reversed, flags unaffected; the guest's CPUID table does not gate it on a CPU that has it (kvm_pvm: #UD, HostDeviations.KvmPvmMovbeIsUndefined)")]
    public static void movbe_loads_and_stores_with_the_bytes_reversed(CaseContext ctx)
    {
        static void Program(Assembler a, Recorder r)
        {
            r.SetFlags(Arith);
            a.movbe(rbx, __qword_ptr[Scratch]); r.Save(rbx);
            a.mov(ebx, 0x1122_3344); a.movbe(__dword_ptr[Scratch + 8], ebx); r.SaveMemory(Scratch + 8);
            a.mov(rbx, -1L); a.movbe(bx, __word_ptr[Scratch]); r.Save(rbx); r.SaveFlags(Arith);
        }
        (ulong, string)[] expected =
        [
            (0x0807_0605_0403_0201, "movbe rbx, [m64]"),
            (0xAAAA_AAAA_4433_2211, "movbe [m32], ebx"),
            (0xFFFF_FFFF_FFFF_0807, "movbe bx, [m16]"), (Arith, "flags kept"),
        ];
        static void Data(IdtGuest g)
        {
            g.Guest.Memory.Write(Scratch, 0x0102_0304_0506_0708UL);
            g.Guest.Memory.Write(Scratch + 8, 0xAAAA_AAAA_AAAA_AAAAUL);
        }
        static void WithMovbe(IdtGuest g)
        {
            // CPUID.1:ECX.MOVBE[22] in the guest's table (the kernel's supported table has it clear on kvm_pvm).
            var table = g.Vcpu.Vm.Kvm.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | (1u << 22) } : e).ToArray();
            g.Vcpu.SetCpuid(table);
            Data(g);
        }
        if (!HostDeviations.KvmPvmMovbeIsUndefined(ctx.Target.IsReal))
        {
            RunAndCompare(ctx, Program, Data, expected);
            RunAndCompare(ctx, Program, WithMovbe, expected);
            return;
        }
        foreach (var setup in new Action<IdtGuest>[] { Data, WithMovbe })
        {
            using var kvm = ctx.OpenKvm();
            using var g = IdtGuest.Create(kvm, a => { Program(a, new Recorder(a)); a.hlt(); }, Halting);
            setup(g);
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == Abi.KvmExitReason.KVM_EXIT_HLT, exit.ToString());
            var d = g.Single();
            Assert.Equal(6UL, d.Vector);
            Assert.Equal(LongModeGuest.CodeGpa + 6, d.Rip); // on the first MOVBE, after PUSH imm32; POPFQ
        }
    }

    [ConformanceCase("Intel SDM Vol. 2B POPCNT: the count of set bits; ZF = the source was zero, OF SF AF CF PF cleared (kvm_pvm: an emulation failure, HostDeviations.KvmPvmPopcntAndCmpxchg16bFail)")]
    public static void popcnt_counts_set_bits_and_clears_the_other_flags(CaseContext ctx)
    {
        RunOrDeviate(ctx, (a, r) =>
        {
            r.SetFlags(Arith);
            a.mov(rcx, unchecked((long)0xF0F0_0000_0000_0001UL)); a.popcnt(rbx, rcx); r.Save(rbx); r.SaveFlags(Arith);
            a.mov(rbx, -1L); a.mov(ecx, 0); a.popcnt(ebx, ecx); r.Save(rbx); r.SaveFlags(Arith);
            a.mov(ecx, 0xFFFF); a.popcnt(bx, cx); r.Save(rbx); r.SaveFlags(Arith);
        }, _ => { },
        [
            (9, "popcnt rbx"), (0, "flags cleared"),
            (0, "popcnt ebx, 0 (zero-extended)"), (0x40, "ZF only"),
            (16, "popcnt bx, 0xFFFF"), (0, "flags cleared"),
        ]);
    }

    [ConformanceCase("Intel SDM Vol. 2A CMPXCHG8B/CMPXCHG16B: compare RDX:RAX with m128; equal → m128 = RCX:RBX, ZF = 1; else RDX:RAX = m128, ZF = 0; the other flags unaffected (kvm_pvm: an emulation failure, HostDeviations.KvmPvmPopcntAndCmpxchg16bFail)")]
    public static void cmpxchg16b_compares_and_exchanges_16_bytes(CaseContext ctx)
    {
        const int Zf = 0x40;
        RunOrDeviate(ctx, (a, r) =>
        {
            r.SetFlags(Arith & ~Zf);
            a.mov(eax, 0x10); a.mov(edx, 0x20); a.mov(ebx, 0x30); a.mov(ecx, 0x40); a.cmpxchg16b(__xmmword_ptr[Scratch + 48]);
            r.SaveMemory(Scratch + 48); r.SaveMemory(Scratch + 56); r.SaveFlags(Arith);
            a.mov(eax, 0); a.mov(edx, 0); a.@lock.cmpxchg16b(__xmmword_ptr[Scratch + 48]); r.Save(rax); r.Save(rdx); r.SaveFlags(Arith);
        }, g =>
        {
            g.Guest.Memory.Write(Scratch + 48, 0x10UL);
            g.Guest.Memory.Write(Scratch + 56, 0x20UL);
        },
        [
            (0x30, "cmpxchg16b success: low"), (0x40, "high"), (Arith, "ZF set, the others kept"),
            (0x30, "cmpxchg16b failure: rax"), (0x40, "rdx"), (Arith & ~Zf, "ZF clear, the others kept"),
        ]);
    }

    /// <summary>
    /// <see cref="RunAndCompare"/>, but on kvm_pvm the first POPCNT/CMPXCHG16B ends KVM_RUN with an emulation failure
    /// (<see cref="HostDeviations.KvmPvmPopcntAndCmpxchg16bFail"/>): asserted there, with RIP on the instruction.
    /// </summary>
    private static void RunOrDeviate(CaseContext ctx, Action<Assembler, Recorder> program, Action<IdtGuest> setup, (ulong Value, string What)[] expected)
    {
        if (!HostDeviations.KvmPvmPopcntAndCmpxchg16bFail(ctx.Target.IsReal))
        {
            RunAndCompare(ctx, program, setup, expected);
            return;
        }
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a => program(a, new Recorder(a)), Halting);
        setup(g);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == Abi.KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.ToString());
        Assert.Empty(g.Deliveries);
        ulong rip = g.Vcpu.GetRegs().rip;
        byte[] bytes = [.. BitConverter.GetBytes(g.Guest.Memory.Read<ulong>(rip)), .. BitConverter.GetBytes(g.Guest.Memory.Read<ulong>(rip + 8))];
        var decoded = Iced.Intel.Decoder.Create(64, bytes).Decode();
        Assert.True(decoded.Mnemonic is Mnemonic.Popcnt or Mnemonic.Cmpxchg16b, $"stopped at 0x{rip:X} on {decoded} ({Convert.ToHexString(bytes)})");
    }

    [ConformanceCase("Intel SDM Vol. 2A CMPXCHG16B: \"#GP(0) If the memory operand for CMPXCHG16B is not aligned on a 16-byte boundary\"; memory and registers are left as they were")]
    public static void cmpxchg16b_needs_a_16_byte_aligned_operand(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.cmpxchg16b(__xmmword_ptr[Scratch + 8]);
            a.hlt();
        }, Halting);
        g.Guest.Memory.Write(Scratch + 8, 0UL);
        g.Guest.Memory.Write(Scratch + 16, 0UL);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == Abi.KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        var d = g.Single();
        Assert.True(d.Vector == 13 && d.ErrorCode == 0, $"vector {d.Vector} error {d.ErrorCode}");
        Assert.Equal(LongModeGuest.CodeGpa + 4, d.Rip); // after the two 2-byte XORs
        Assert.Equal(0UL, g.Guest.Memory.Read<ulong>(Scratch + 8) | g.Guest.Memory.Read<ulong>(Scratch + 16));
    }
}
