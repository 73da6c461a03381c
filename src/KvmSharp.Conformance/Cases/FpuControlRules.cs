// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The FPU state instructions firmware runs (FXSAVE/FXRSTOR and their REX.W forms, FNINIT, FLDCW, FNSTCW, FNSTSW,
/// FNCLEX, FWAIT) and guest WRMSR of EFER, on a 64-bit <see cref="IdtGuest"/> (and a 32-bit
/// <see cref="ModeSwitchGuest"/> where the mode matters). The FPU state is set with KVM_SET_XSAVE / KVM_SET_FPU and read
/// back with KVM_GET_FPU / KVM_GET_XSAVE and from the images the guest writes over a 0xCC fill. FIP, FDP and FOP stay
/// 0 throughout: this AMD host keeps them only while FSW.ES is set and kvm_pvm's FXSAVE64 writes them in the 32-bit
/// format, neither of which these cases are about. kvm_pvm answers a part of this through KVM's instruction emulator
/// (<see cref="HostDeviations.KvmPvmFxsaveWithoutFxsrIsUndefined"/> and its siblings in HostDeviations.Fpu.cs).
/// </summary>
public static class FpuControlRules
{
    private const ulong Area = 0x8_9000, Image = 0x8_A000, Data = 0x8_B000;
    private const byte Fill = 0xcc;
    private const int UD = 6, NM = 7, GP = 13, MF = 16;
    private const ulong CR0_MP = 1 << 1, CR0_EM = 1 << 2, CR0_TS = 1 << 3, CR0_NE = 1 << 5, CR4_OSFXSR = 1 << 9;
    private const uint Efer = 0xC000_0080, EferLme = 1 << 8, EferLma = 1 << 10, EferNx = 1 << 11;

    /// <summary>MXCSR_MASK of this host's CPUs (AMD: MM, bit 17, is supported; bit 16 is not).</summary>
    private const uint MxcsrMask = 0x2ffff;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>The legacy x87/SSE state a case loads; FIP, FDP and FOP are 0 (see the class summary).</summary>
    private sealed record FpuState(ushort Fcw, ushort Fsw, byte Ftw, uint Mxcsr, byte[] St, byte[] Xmm)
    {
        /// <summary>
        /// FCW 0x0a7f (all masked, PC = 10, RC = 10), FSW 0x3800 (TOP = 7, no flags), ST slots 0x20.. with bytes
        /// 10..15 of each 16-byte slot set too (reserved: an x87 register is 80 bits), XMM0..15 = 0xa0, 0xa1, ….
        /// </summary>
        public static FpuState Sample() => new(0x0a7f, 0x3800, 0x81, 0x9fc0, Pattern(0x20, 128), Pattern(0xa0, 256));

        /// <summary>The ST slots as the CPU stores them: the 80-bit value, then six zero bytes (SDM Vol. 2A Table 3-53).</summary>
        public byte[] StAsStored()
        {
            byte[] st = [.. St];
            for (int n = 0; n < 8; n++) st.AsSpan(n * 16 + 10, 6).Clear();
            return st;
        }

        public void WriteLegacy(Span<byte> b)
        {
            b[..160].Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(b, Fcw);
            BinaryPrimitives.WriteUInt16LittleEndian(b[2..], Fsw);
            b[4] = Ftw;
            BinaryPrimitives.WriteUInt32LittleEndian(b[24..], Mxcsr);
            St.CopyTo(b[32..]);
            Xmm.CopyTo(b[160..]);
        }
    }

    private static byte[] Pattern(int first, int length) => [.. Enumerable.Range(first, length).Select(b => (byte)b)];

    /// <summary>KVM_SET_XSAVE of the vCPU's image with <paramref name="s"/> in the legacy area and FP|SSE in xstate_bv.</summary>
    private static void SetXsave(Vcpu vcpu, FpuState s)
    {
        var x = vcpu.GetXsave();
        s.WriteLegacy(x);
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(x.AsSpan(XsaveArea.HeaderOffset));
        BinaryPrimitives.WriteUInt64LittleEndian(x.AsSpan(XsaveArea.HeaderOffset), bv | XsaveArea.FeatureFp | XsaveArea.FeatureSse);
        vcpu.SetXsave(x);
    }

    /// <summary>
    /// KVM_SET_FPU of <paramref name="s"/> after a KVM_SET_XSAVE that marks FP and SSE in use (KVM_SET_FPU leaves
    /// xstate_bv alone: ExtendedStateInstructions.SetXmm) and sets MXCSR, which kvm_arch_vcpu_ioctl_set_fpu does not copy.
    /// </summary>
    private static void SetFpu(Vcpu vcpu, FpuState s)
    {
        SetXsave(vcpu, FpuState.Sample() with { Fcw = 0x37f, Fsw = 0, Ftw = 0, Mxcsr = s.Mxcsr, St = new byte[128], Xmm = new byte[256] });
        var f = vcpu.GetFpu();
        f.fcw = s.Fcw;
        f.fsw = s.Fsw;
        f.ftwx = s.Ftw;
        s.St.CopyTo(f.fpr);
        s.Xmm.CopyTo(f.xmm);
        vcpu.SetFpu(f);
    }

    /// <summary>
    /// What FXSAVE writes over the fill: the legacy area with MXCSR_MASK and the ST
    /// slots as stored; <paramref name="xmmCount"/> XMM registers; the bytes after them keep the fill (SDM Vol. 2A
    /// FXSAVE: bytes 464..511 are software's, the processor does not write them).
    /// </summary>
    private static byte[] ExpectedImage(FpuState s, int xmmCount)
    {
        byte[] b = new byte[512];
        Array.Fill(b, Fill);
        s.WriteLegacy(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(28), MxcsrMask);
        s.StAsStored().CopyTo(b, 32);
        Array.Fill(b, Fill, 160 + xmmCount * 16, 256 - xmmCount * 16);
        return b;
    }

    /// <summary>A 64-bit guest: <paramref name="program"/> then HLT, the supported CPUID unless <paramref name="cpuid"/> is false.</summary>
    private static IdtGuest Guest(Kvm kvm, Action<Assembler> program, bool cpuid = true, ulong cr0Set = 0, ulong cr0Clear = 0,
        ulong cr4Clear = 0, IReadOnlyList<CpuidEntry>? table = null)
    {
        var g = IdtGuest.Create(kvm, a => { program(a); a.hlt(); }, Halting);
        try
        {
            if (cpuid) g.Vcpu.SetCpuid(table ?? kvm.GetSupportedCpuid());
            var s = g.Vcpu.GetSregs();
            s.cr0 = (s.cr0 | cr0Set) & ~cr0Clear;
            s.cr4 &= ~cr4Clear;
            g.Vcpu.SetSregs(s);
            g.Guest.Memory.Fill(Area, 0x1000, Fill);
            g.Guest.Memory.Fill(Image, 0x1000, 0);
            g.Guest.Memory.Fill(Data, 0x1000, 0);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    private static int Length(Action<Assembler> prefix) => LongModeGuest.Assemble(prefix).Length;

    private static byte[] Mem(IdtGuest g, ulong gpa, int length)
    {
        byte[] b = new byte[length];
        g.Guest.Memory.Read(gpa, b);
        return b;
    }

    private static void RunToHlt(IdtGuest g, string what)
    {
        var exit = g.Vcpu.Run().Reason;
        Assert.True(exit == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit} at RIP 0x{g.Vcpu.GetRegs().rip:X}, deliveries {string.Join("; ", g.Deliveries)}");
        Assert.True(g.Deliveries.Count == 0, $"{what}: {string.Join("; ", g.Deliveries)}");
    }

    private static void AssertFault(IdtGuest g, int vector, int offset, string what)
    {
        var exit = g.Vcpu.Run().Reason;
        Assert.True(exit == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit} at RIP 0x{g.Vcpu.GetRegs().rip:X}");
        var d = g.Single();
        Assert.True((int)d.Vector == vector && d.Rip == LongModeGuest.CodeGpa + (ulong)offset, $"{what}: {d}");
        Assert.Equal(IdtGuest.HasErrorCode(vector) ? 0UL : null, d.ErrorCode);
    }

    /// <summary>kvm_pvm's KVM emulator gives up on the instruction at <paramref name="offset"/>: internal error, RIP on it.</summary>
    private static void AssertHostGivesUp(IdtGuest g, int offset, string what)
    {
        var exit = g.Vcpu.Run().Reason;
        Assert.True(exit == KvmExitReason.KVM_EXIT_INTERNAL_ERROR, $"{what}: {exit}");
        Assert.Equal(LongModeGuest.CodeGpa + (ulong)offset, g.Vcpu.GetRegs().rip);
        Assert.Empty(g.Deliveries);
    }

    private static void AssertImage(byte[] expected, byte[] actual, string what)
    {
        for (int k = 0; k < expected.Length; k++)
            Assert.True(expected[k] == actual[k], $"{what}: byte {k} is 0x{actual[k]:X2}, expected 0x{expected[k]:X2}\n{Convert.ToHexString(actual)}");
    }

    /// <summary>Bytes 416..511 after a 64-bit FXSAVE: kept on upstream and the emulator, zeroed by kvm_pvm.</summary>
    private static void AssertTail(byte[] image, bool realKernel, string what)
    {
        byte tail = HostDeviations.KvmPvmFxsaveWritesWholeArea(realKernel) ? (byte)0 : Fill;
        for (int k = 416; k < 512; k++) Assert.True(image[k] == tail, $"{what}: byte {k} is 0x{image[k]:X2}, expected 0x{tail:X2}");
    }

    [ConformanceCase("Intel SDM Vol. 2A FXSAVE Table 3-53: FXSAVE64 and FXSAVE in 64-bit mode write FCW/FSW/FTW, MXCSR, MXCSR_MASK, ST0-7 (80 bits, 6 zero bytes), XMM0-15 of a KVM_SET_XSAVE or KVM_SET_FPU state")]
    public static void fxsave_writes_the_state_set_by_the_host(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var state = FpuState.Sample();
        foreach (var (what, set) in new (string, Action<Vcpu, FpuState>)[] { ("KVM_SET_XSAVE", SetXsave), ("KVM_SET_FPU", SetFpu) })
        {
            using var g = Guest(kvm, a => { a.fxsave64(__[Area]); a.fxsave(__[Area + 0x200]); });
            set(g.Vcpu, state);
            RunToHlt(g, what);
            var expected = ExpectedImage(state, 16);
            foreach (var (form, gpa) in new[] { ("FXSAVE64", Area), ("FXSAVE", Area + 0x200) })
            {
                var image = Mem(g, gpa, 512);
                AssertImage(expected[..416], image[..416], $"{form} after {what}");
                AssertTail(image, ctx.Target.IsReal, $"{form} after {what}");
            }
        }
    }

    [ConformanceCase("Intel SDM Vol. 2A FNINIT/MOVDQA/FXSAVE: FNINIT (FCW 0x37F, FSW 0 so TOP = 0, tags empty; ST(i) renumbered from the old TOP), MOVDQA into XMM0-15, then FXSAVE64")]
    public static void fxsave_writes_the_state_set_by_the_guest(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var state = FpuState.Sample();
        byte[] loaded = Pattern(0x40, 256);
        using var g = Guest(kvm, a =>
        {
            a.fninit();
            for (int n = 0; n < 16; n++) a.movdqa(Xmm(n), __xmmword_ptr[Image + (ulong)n * 16]);
            a.fxsave64(__[Area]);
        });
        SetXsave(g.Vcpu, state);
        g.Guest.Memory.Write(Image, loaded);
        RunToHlt(g, "FNINIT, MOVDQA, FXSAVE64");
        // TOP went from 7 to 0: the physical register ST(0) named (R7) is ST(7) now, and ST(1) (R0) is ST(0).
        byte[] st = [.. state.St.AsSpan(16), .. state.St.AsSpan(0, 16)];
        var after = state with { Fcw = 0x37f, Fsw = 0, Ftw = 0, St = st, Xmm = loaded };
        var image = Mem(g, Area, 512);
        AssertImage(ExpectedImage(after, 16)[..416], image[..416], "FXSAVE64");
        AssertTail(image, ctx.Target.IsReal, "FXSAVE64");
        var fpu = g.Vcpu.GetFpu();
        Assert.Equal((ushort)0x37f, fpu.fcw);
        Assert.Equal((ushort)0, fpu.fsw);
        Assert.Equal((byte)0, fpu.ftwx);
    }

    [ConformanceCase("Intel SDM Vol. 2A FLDCW/LDMXCSR then FXSAVE64: the image has the new FCW and MXCSR")]
    public static void fxsave_after_fldcw_and_ldmxcsr(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var state = FpuState.Sample();
        using var g = Guest(kvm, a =>
        {
            a.fldcw(__word_ptr[Data]);
            a.ldmxcsr(__dword_ptr[Data + 4]);
            a.fxsave64(__[Area]);
        });
        SetXsave(g.Vcpu, state);
        g.Guest.Memory.Write(Data, (ushort)0x0c7f);
        g.Guest.Memory.Write(Data + 4, 0x7f80u);
        if (HostDeviations.KvmPvmX87ControlFails(ctx.Target.IsReal))
        {
            AssertHostGivesUp(g, 0, "FLDCW");
            return;
        }
        RunToHlt(g, "FLDCW, LDMXCSR, FXSAVE64");
        AssertImage(ExpectedImage(state with { Fcw = 0x0c7f, Mxcsr = 0x7f80 }, 16)[..416], Mem(g, Area, 416), "FXSAVE64");
    }

    [ConformanceCase("Intel SDM Vol. 2A FXSAVE outside 64-bit mode: XMM0-7 only with CR4.OSFXSR, none without (emulate.c fxstate_size: 'Hardware doesn't save and restore XMM 0-7 without CR4.OSFXSR, but does save and restore MXCSR')")]
    public static void fxsave_in_protected_mode(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Area32 = ModeSwitchGuest.Base + 0x4000;
        var state = FpuState.Sample();
        foreach (bool osfxsr in new[] { true, false })
        {
            using var g = ModeSwitchGuest.Create(kvm, ModeSwitchGuest.EnterProtectedMode, code32: a =>
            {
                a.mov(ax, ModeSwitchGuest.DataSelector);
                a.mov(ds, ax);
                a.mov(es, ax);
                if (osfxsr)
                {
                    a.mov(eax, cr4);
                    a.or(eax, (int)CR4_OSFXSR);
                    a.mov(cr4, eax);
                }
                a.fxsave(__[(uint)Area32]);
                a.hlt();
            });
            g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
            g.Write(Area32, Enumerable.Repeat(Fill, 512).ToArray());
            SetXsave(g.Vcpu, state);
            var exit = g.Vcpu.Run().Reason;
            Assert.True(exit == KvmExitReason.KVM_EXIT_HLT, $"OSFXSR={osfxsr}: {exit}");
            byte[] image = new byte[512];
            g.Memory.Read(Area32 - ModeSwitchGuest.Base, image);
            AssertImage(ExpectedImage(state, osfxsr ? 8 : 0), image, $"FXSAVE in 32-bit mode, OSFXSR={osfxsr}");
        }
    }

    [ConformanceCase("Intel SDM Vol. 2A FXRSTOR: FXRSTOR64 loads the image (KVM_GET_FPU/KVM_GET_XSAVE show it); FSW.ES and B follow the unmasked flags (AMD APM Vol. 1 x87 Status Word; seen on this EPYC host)")]
    public static void fxrstor_loads_the_image(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // IE set and unmasked in FCW; the image's FSW has ES and B clear.
        var state = FpuState.Sample() with { Fcw = 0x037e, Fsw = 0x2001, Ftw = 0x0f, Mxcsr = 0x3f80 };
        byte[] image = new byte[512];
        state.WriteLegacy(image);
        using var g = Guest(kvm, a => { a.fxrstor64(__[Image]); a.fnstsw(__word_ptr[Data]); a.fnstcw(__word_ptr[Data + 2]); });
        g.Guest.Memory.Write(Image, image);
        RunToHlt(g, "FXRSTOR64");
        const ushort Fsw = 0xa081; // the image's 0x2001 with ES (bit 7) and B (bit 15)
        Assert.Equal(Fsw, g.Guest.Memory.Read<ushort>(Data));
        Assert.Equal((ushort)0x037e, g.Guest.Memory.Read<ushort>(Data + 2));
        var fpu = g.Vcpu.GetFpu();
        Assert.Equal((ushort)0x037e, fpu.fcw);
        Assert.Equal(Fsw, fpu.fsw);
        Assert.Equal((byte)0x0f, fpu.ftwx);
        Assert.Equal(state.StAsStored(), ((ReadOnlySpan<byte>)fpu.fpr).ToArray());
        Assert.Equal(state.Xmm, ((ReadOnlySpan<byte>)fpu.xmm).ToArray());
        var xsave = new XsaveArea(g.Vcpu.GetXsave());
        Assert.Equal(0x3f80u, xsave.Mxcsr);
        Assert.Equal((ushort)0x037e, xsave.Fcw);
        Assert.Equal(Fsw, xsave.Fsw);
    }

    [ConformanceCase("Intel SDM Vol. 2A FXSAVE/FXRSTOR faults: MXCSR bit outside MXCSR_MASK -> #GP(0), operand not 16-byte aligned -> #GP(0), CR0.TS or CR0.EM -> #NM; state and memory unchanged")]
    public static void fxsave_and_fxrstor_faults(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool real = ctx.Target.IsReal;
        (string What, Action<Assembler> Program, uint Mxcsr, ulong Cr0, int Vector)[] cases =
        [
            ("FXRSTOR64 MXCSR bit 16", a => a.fxrstor64(__[Image]), 0x1_1f80, 0, GP),
            ("FXRSTOR64 MXCSR bit 31", a => a.fxrstor64(__[Image]), 0x8000_1f80, 0, GP),
            ("FXSAVE64 at +8", a => a.fxsave64(__[Area + 8]), 0, 0, GP),
            ("FXRSTOR64 at +8", a => a.fxrstor64(__[Image + 8]), 0x1f80, 0, GP),
            ("FXSAVE64 with CR0.TS", a => a.fxsave64(__[Area]), 0, CR0_TS, NM),
            ("FXSAVE with CR0.EM", a => a.fxsave(__[Area]), 0, CR0_EM, NM),
            ("FXRSTOR64 with CR0.TS", a => a.fxrstor64(__[Image]), 0x1f80, CR0_TS, NM),
            ("FXRSTOR with CR0.EM", a => a.fxrstor(__[Image]), 0x1f80, CR0_EM, NM),
        ];
        var state = FpuState.Sample();
        foreach (var (what, program, mxcsr, cr0, vector) in cases)
        {
            using var g = Guest(kvm, program, cr0Set: cr0);
            SetXsave(g.Vcpu, state);
            byte[] image = new byte[512];
            (state with { Fcw = 0x37f, Mxcsr = mxcsr }).WriteLegacy(image);
            g.Guest.Memory.Write(Image, image);
            if (what == "FXSAVE64 at +8" && HostDeviations.KvmPvmFxsaveWritesWholeArea(real))
            {
                RunToHlt(g, what);
                Assert.Equal(state.Fcw, g.Guest.Memory.Read<ushort>(Area + 8));
                continue;
            }
            AssertFault(g, vector, 0, what);
            var fpu = g.Vcpu.GetFpu();
            Assert.Equal(state.Fcw, fpu.fcw);
            Assert.Equal(state.Xmm, ((ReadOnlySpan<byte>)fpu.xmm).ToArray());
            Assert.Equal(state.Mxcsr, new XsaveArea(g.Vcpu.GetXsave()).Mxcsr);
            Assert.Equal(Enumerable.Repeat(Fill, 0x220).ToArray(), Mem(g, Area, 0x220));
        }
    }

    [ConformanceCase("Intel SDM Vol. 2A FXSAVE: the CPU runs FXSAVE/FXRSTOR whatever the guest CPUID says (SVM/VMX do not intercept them)")]
    public static void fxsave_without_a_cpuid_table(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a => a.fxsave64(__[Area]), cpuid: false);
        if (HostDeviations.KvmPvmFxsaveWithoutFxsrIsUndefined(ctx.Target.IsReal))
        {
            AssertFault(g, UD, 0, "FXSAVE64 without CPUID.FXSR");
            Assert.Equal(Fill, g.Guest.Memory.Read<byte>(Area));
            return;
        }
        RunToHlt(g, "FXSAVE64 without a CPUID table");
        Assert.Equal((ushort)0x37f, g.Guest.Memory.Read<ushort>(Area));
    }

    [ConformanceCase("Intel SDM Vol. 2A FNINIT/FNSTCW/FNSTSW m16: the host's FCW/FSW, then 0x37F and 0 after FNINIT; CR0.TS or CR0.EM -> #NM")]
    public static void fninit_fnstcw_fnstsw(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var state = FpuState.Sample();
        using (var g = Guest(kvm, a =>
        {
            a.fnstcw(__word_ptr[Data]);
            a.fnstsw(__word_ptr[Data + 2]);
            a.fninit();
            a.fnstcw(__word_ptr[Data + 4]);
            a.fnstsw(__word_ptr[Data + 6]);
        }))
        {
            SetXsave(g.Vcpu, state);
            RunToHlt(g, "FNSTCW, FNSTSW, FNINIT");
            Assert.Equal(new byte[] { 0x7f, 0x0a, 0x00, 0x38, 0x7f, 0x03, 0x00, 0x00 }, Mem(g, Data, 8));
        }
        (string What, Action<Assembler> Program, ulong Cr0)[] faults =
        [
            ("FNINIT with CR0.TS", a => a.fninit(), CR0_TS),
            ("FNINIT with CR0.EM", a => a.fninit(), CR0_EM),
            ("FNSTCW with CR0.TS", a => a.fnstcw(__word_ptr[Data]), CR0_TS),
            ("FNSTSW with CR0.EM", a => a.fnstsw(__word_ptr[Data]), CR0_EM),
        ];
        foreach (var (what, program, cr0) in faults)
        {
            using var g = Guest(kvm, program, cr0Set: cr0);
            SetXsave(g.Vcpu, state);
            AssertFault(g, NM, 0, what);
            Assert.Equal(state.Fcw, g.Vcpu.GetFpu().fcw);
            Assert.Equal(0u, g.Guest.Memory.Read<uint>(Data));
        }
    }

    [ConformanceCase("Intel SDM Vol. 2A FNSTSW AX, FLDCW then FNSTCW, FNCLEX after an FXRSTOR image with exception flags (FSW 0x3800 remains)")]
    public static void fnstsw_ax_fldcw_fnclex(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool givesUp = HostDeviations.KvmPvmX87ControlFails(ctx.Target.IsReal);
        var state = FpuState.Sample();
        using (var g = Guest(kvm, a => { a.fnstsw(ax); a.mov(ebx, 0x77); }))
        {
            SetXsave(g.Vcpu, state);
            if (givesUp) AssertHostGivesUp(g, 0, "FNSTSW AX");
            else
            {
                RunToHlt(g, "FNSTSW AX");
                Assert.Equal(0x3800UL, g.Vcpu.GetRegs().rax & 0xffff);
            }
        }
        using (var g = Guest(kvm, a => { a.fldcw(__word_ptr[Data]); a.fnstcw(__word_ptr[Data + 2]); }))
        {
            SetXsave(g.Vcpu, state);
            g.Guest.Memory.Write(Data, (ushort)0x0e7f);
            if (givesUp) AssertHostGivesUp(g, 0, "FLDCW");
            else
            {
                RunToHlt(g, "FLDCW, FNSTCW");
                Assert.Equal((ushort)0x0e7f, g.Guest.Memory.Read<ushort>(Data + 2));
                Assert.Equal((ushort)0x0e7f, g.Vcpu.GetFpu().fcw);
            }
        }
        // Every flag (PE UE OE ZE DE IE), SF, C0-C3 and TOP = 7 in the image; IE unmasked, so ES and B come on too.
        var flagged = state with { Fcw = 0x037e, Fsw = 0x7fff & ~0x80 };
        static void Restore(Assembler a) => a.fxrstor64(__[Image]);
        using (var g = Guest(kvm, a => { Restore(a); a.fnclex(); a.fnstsw(__word_ptr[Data]); }))
        {
            byte[] image = new byte[512];
            flagged.WriteLegacy(image);
            g.Guest.Memory.Write(Image, image);
            if (givesUp) AssertHostGivesUp(g, Length(Restore), "FNCLEX");
            else
            {
                RunToHlt(g, "FXRSTOR64, FNCLEX, FNSTSW");
                Assert.Equal((ushort)0x7f00, g.Guest.Memory.Read<ushort>(Data)); // C3 TOP C2 C1 C0 left
            }
        }
    }

    [ConformanceCase("Intel SDM Vol. 1 8.7 / Vol. 2A WAIT/FWAIT: CR0.MP|TS -> #NM; FSW.ES with CR0.NE -> #MF; with NE clear no fault (FERR#)")]
    public static void fwait_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool givesUp = HostDeviations.KvmPvmX87ControlFails(ctx.Target.IsReal);
        var pending = FpuState.Sample() with { Fcw = 0x037e, Fsw = 0x8081 };
        (string What, FpuState State, ulong Cr0Set, ulong Cr0Clear, int Vector)[] cases =
        [
            ("CR0.MP|TS", FpuState.Sample(), CR0_MP | CR0_TS, 0, NM),
            ("CR0.TS without MP", FpuState.Sample(), CR0_TS, CR0_MP, -1),
            ("FSW.ES with CR0.NE", pending, CR0_NE, 0, MF),
            ("FSW.ES without CR0.NE", pending, 0, CR0_NE, -1),
            ("nothing pending", FpuState.Sample(), CR0_NE, 0, -1),
        ];
        foreach (var (what, state, set, clear, vector) in cases)
        {
            using var g = Guest(kvm, a => { a.wait(); a.mov(ebx, 0x77); }, cr0Set: set, cr0Clear: clear);
            SetXsave(g.Vcpu, state);
            if (givesUp)
            {
                AssertHostGivesUp(g, 0, $"FWAIT, {what}");
                continue;
            }
            if (vector < 0)
            {
                RunToHlt(g, $"FWAIT, {what}");
                Assert.Equal(0x77UL, g.Vcpu.GetRegs().rbx);
                continue;
            }
            AssertFault(g, vector, 0, $"FWAIT, {what}");
        }
    }

    /// <summary>The supported CPUID with CPUID.80000001H:EDX bits in <paramref name="clearEdx"/> cleared.</summary>
    private static CpuidEntry[] Without(Kvm kvm, uint clearEdx) =>
        [.. kvm.GetSupportedCpuid().Select(e => e.Function == 0x8000_0001 ? e with { Edx = e.Edx & ~clearEdx } : e)];

    private const uint CpuidNx = 1u << 20, CpuidLm = 1u << 29;

    private static void ReadEfer(Assembler a, AssemblerRegister32 to)
    {
        a.mov(ecx, unchecked((int)Efer));
        a.rdmsr();
        a.mov(to, eax);
    }

    [ConformanceCase("arch/x86/kvm/x86.c set_efer/__kvm_valid_efer: a guest toggles EFER.NX in long mode with CPUID LM and NX; NX without CPUID.NX, any LME without CPUID.LM, and LME cleared while paging -> #GP(0)")]
    public static void guest_wrmsr_efer_in_long_mode(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var g = Guest(kvm, a =>
        {
            ReadEfer(a, esi);
            a.xor(eax, (int)EferNx);
            a.wrmsr();
            ReadEfer(a, edi);
            a.xor(eax, (int)EferNx);
            a.wrmsr();
            ReadEfer(a, ebp);
        }))
        {
            RunToHlt(g, "EFER ^= NX twice");
            var r = g.Vcpu.GetRegs();
            Assert.Equal((ulong)(EferLme | EferLma), r.rsi);
            Assert.Equal((ulong)(EferLme | EferLma | EferNx), r.rdi);
            Assert.Equal((ulong)(EferLme | EferLma), r.rbp);
        }
        static void Write(Assembler a, uint value) => MsrAsm.Wrmsr(a, Efer, value);
        int at = Length(a => Write(a, 0)) - 2;
        (string What, uint Value, CpuidEntry[]? Table, bool Cpuid, bool Faults)[] writes =
        [
            ("LME|LMA|NX, no CPUID table", EferLme | EferLma | EferNx, null, false, true),
            ("LME|LMA, no CPUID table", EferLme | EferLma, null, false, true),
            ("LME|LMA|NX, CPUID without NX", EferLme | EferLma | EferNx, Without(kvm, CpuidNx), true, true),
            ("LME|LMA, CPUID without NX", EferLme | EferLma, Without(kvm, CpuidNx), true, false),
            ("LME|LMA, CPUID without LM", EferLme | EferLma, Without(kvm, CpuidLm), true, true),
            ("LMA only (LME cleared while paging)", EferLma, null, true, true),
            ("0 (LME cleared while paging)", 0, null, true, true),
        ];
        foreach (var (what, value, table, cpuid, faults) in writes)
        {
            using var g = Guest(kvm, a => Write(a, value), cpuid, table: table);
            if (faults) AssertFault(g, GP, at, what);
            else RunToHlt(g, what);
            Assert.Equal((ulong)(EferLme | EferLma), g.Vcpu.GetSregs().efer);
        }
    }

    [ConformanceCase("arch/x86/kvm/x86.c set_efer: with paging off a guest with CPUID LM and NX sets EFER.LME and NX (LMA stays clear)")]
    public static void guest_wrmsr_efer_with_paging_off(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = ModeSwitchGuest.Create(kvm, ModeSwitchGuest.EnterProtectedMode, code32: a =>
        {
            MsrAsm.Wrmsr(a, Efer, EferLme | EferNx | EferLma);
            ReadEfer(a, esi);
            a.hlt();
        });
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        var s = g.Vcpu.GetSregs();
        s.efer = 0;
        g.Vcpu.SetSregs(s);
        var exit = g.Vcpu.Run().Reason;
        Assert.True(exit == KvmExitReason.KVM_EXIT_HLT, $"{exit}");
        Assert.Equal((ulong)(EferLme | EferNx), g.Vcpu.GetRegs().rsi);
        Assert.Equal((ulong)(EferLme | EferNx), g.Vcpu.GetSregs().efer);
    }

    private static AssemblerRegisterXMM Xmm(int n) => n switch
    {
        0 => xmm0, 1 => xmm1, 2 => xmm2, 3 => xmm3, 4 => xmm4, 5 => xmm5, 6 => xmm6, 7 => xmm7,
        8 => xmm8, 9 => xmm9, 10 => xmm10, 11 => xmm11, 12 => xmm12, 13 => xmm13, 14 => xmm14, _ => xmm15,
    };
}
