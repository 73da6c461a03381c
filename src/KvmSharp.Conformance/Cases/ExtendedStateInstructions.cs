// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Guests that set and read the extended register state a micro-VM must not leak between users: XMM/YMM (SSE and AVX
/// moves and logic), MXCSR, XCR0 (XGETBV/XSETBV) and DR0–DR7 (MOV DR). The results are read back through KVM_GET_FPU,
/// KVM_GET_XCRS, KVM_GET_DEBUGREGS, guest memory and the exception records of an <see cref="IdtGuest"/>; the expected
/// vector values are computed by this host's CPU (System.Runtime.Intrinsics). Where this host cannot run an
/// instruction (<see cref="KvmPvmRunsSseInKvmEmulator"/>) the real kernel's answer is asserted as it is and the
/// emulator's as the SDM says.
/// </summary>
public static class ExtendedStateInstructions
{
    private const ulong Data = 0x8_9000, Out = Data + 0x100, Init = Data + 0x200;
    private const ulong CR0_EM = 1 << 2, CR0_TS = 1 << 3, CR4_DE = 1 << 3, CR4_OSFXSR = 1 << 9, CR4_OSXSAVE = 1 << 18;
    private const int DB = 1, UD = 6, NM = 7, GP = 13;

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>
    /// kvm_pvm (software nested KVM) runs a guest's SSE and AVX instructions through KVM's instruction emulator
    /// (arch/x86/kvm/emulate.c), which knows only the Sse moves MOVUPS/MOVUPD (0F 10/11), MOVAPS/MOVAPD (0F 28/29),
    /// MOVDQA/MOVDQU (66/F3 0F 6F/7F) and MOVNTDQ (66 0F E7), with its checks (CR0.EM or !CR4.OSFXSR → #UD, CR0.TS →
    /// #NM, misaligned aligned form → #GP(0)). Everything else ends KVM_RUN in KVM_EXIT_INTERNAL_ERROR with RIP on the
    /// instruction, even where the CPU would fault first. Observed on Linux 6.18 kvm_pvm (AMD): MOVD/MOVQ in every
    /// form, PXOR (also with CR0.TS = 1 or CR4.OSFXSR = 0), XORPS, PCMPEQB, PTEST, PINSRQ, LDMXCSR, STMXCSR, XGETBV
    /// (with or without CR4.OSXSAVE, ECX 0, 1, 2), and every VEX instruction (VMOVDQU, VZEROUPPER; also with XCR0 = 3
    /// or without CR4.OSXSAVE). XSETBV and MOV DR are emulated there and agree with upstream's rules. Upstream on
    /// VMX/SVM hardware runs SSE/AVX/XGETBV natively, as the SDM describes and the emulator does.
    /// </summary>
    public static bool KvmPvmRunsSseInKvmEmulator(bool realKernel) =>
        realKernel && Directory.Exists("/sys/module/kvm_pvm");

    private static byte[] Pattern(int offset, int length) => [.. Enumerable.Range(offset + 1, length).Select(b => (byte)b)];

    /// <summary>
    /// The guest: <paramref name="program"/> then HLT; 64 pattern bytes (1, 2, …) at <see cref="Data"/> and a zeroed
    /// output area at <see cref="Out"/>; CR0/CR4 adjusted; <paramref name="cpuid"/>: a CPUID table with SSE4.1, XSAVE,
    /// AVX and AVX2 (the kernel's supported table with those bits added); <paramref name="xcr0"/>: KVM_SET_XCRS when not 0.
    /// </summary>
    private static IdtGuest Guest(Kvm kvm, Action<Assembler> program, ulong cr0Set = 0, ulong cr4Set = 0, ulong cr4Clear = 0,
        bool cpuid = false, ulong xcr0 = 0)
    {
        var g = IdtGuest.Create(kvm, a => { program(a); a.hlt(); }, Halting);
        try
        {
            if (cpuid) g.Vcpu.SetCpuid(FeatureTable(kvm));
            var s = g.Vcpu.GetSregs();
            s.cr0 |= cr0Set;
            s.cr4 = (s.cr4 | cr4Set) & ~cr4Clear;
            g.Vcpu.SetSregs(s);
            if (xcr0 != 0) g.Vcpu.SetXcr0(xcr0);
            g.Guest.Memory.Write(Data, Pattern(0, 64));
            g.Guest.Memory.Fill(Out, 0x100, 0);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    private static IdtGuest AvxGuest(Kvm kvm, Action<Assembler> program, ulong cr0Set = 0, ulong xcr0 = 7, ulong cr4Clear = 0) =>
        Guest(kvm, program, cr0Set, CR4_OSXSAVE, cr4Clear, cpuid: true, xcr0: xcr0);

    /// <summary>The kernel's supported CPUID with CPUID.1 ECX SSE4.1 (19), XSAVE (26), AVX (28) and CPUID.7.0 EBX AVX2 (5).</summary>
    private static CpuidEntry[] FeatureTable(Kvm kvm) =>
    [
        .. kvm.GetSupportedCpuid().Select(e => e.Function switch
        {
            1 => e with { Ecx = e.Ecx | (1u << 19) | (1u << 26) | (1u << 28) },
            7 when e.Index == 0 => e with { Ebx = e.Ebx | (1u << 5) },
            _ => e,
        }),
    ];

    private static byte[] Xmm(in kvm_fpu fpu, int n)
    {
        var copy = fpu;
        ReadOnlySpan<byte> all = copy.xmm;
        return all.Slice(n * 16, 16).ToArray();
    }

    /// <summary>
    /// XMM n = <paramref name="values"/>[n] as the guest sees them: KVM_SET_XSAVE of the vCPU's image with those bytes
    /// and SSE's xstate_bv bit set (non-zero XMM are in use, so every XSAVES after a run writes them back).
    /// KVM_SET_FPU would not do: it leaves xstate_bv alone, so on a new vCPU the guest runs with XRSTOR's init XMM
    /// (zeros) and the stored bytes survive a run only while the CPU keeps reporting SSE as init — on the EPYC Genoa
    /// host (Linux 6.18 kvm_pvm) it often does not: a real-mode guest raising #UD (UD2, or MOVDQU without
    /// CR4.OSFXSR) came back with xstate_bv 0x2 and XMM0 0 in 30 runs of 30, one halting at once in about 20 of 30
    /// (C probe); with this image XMM0 = 0xa5 came back in 100 of 100 for HLT, #UD, #NM and #GP.
    /// XsaveRules.xsave_after_kvm_run covers KVM_SET_FPU under a clear bit.
    /// </summary>
    private static void SetXmm(Vcpu vcpu, params byte[][] values)
    {
        var image = vcpu.GetXsave();
        for (int n = 0; n < values.Length; n++) values[n].CopyTo(image.AsSpan(XsaveArea.XmmOffset + n * 16));
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset));
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset), bv | XsaveArea.FeatureSse);
        vcpu.SetXsave(image);
    }

    private static AssemblerRegisterXMM XmmRegister(int n) => n switch
    {
        0 => xmm0, 1 => xmm1, 2 => xmm2, 3 => xmm3, 4 => xmm4, 5 => xmm5, 6 => xmm6, 7 => xmm7,
        8 => xmm8, 9 => xmm9, 10 => xmm10, 11 => xmm11, 12 => xmm12, _ => xmm13,
    };

    private static byte[] Mem(IdtGuest g, ulong gpa, int length)
    {
        byte[] b = new byte[length];
        g.Guest.Memory.Read(gpa, b);
        return b;
    }

    private static byte[] Bytes(Vector128<byte> v) => [.. Enumerable.Range(0, 16).Select(k => v.GetElement(k))];

    private static byte[] Bytes(Vector256<byte> v) => [.. Enumerable.Range(0, 32).Select(k => v.GetElement(k))];

    /// <summary>The run ended where this host gives up on an instruction (KVM_EXIT_INTERNAL_ERROR, RIP on it, no exception).</summary>
    private static void AssertHostCannotRun(IdtGuest g, KvmExitReason exit, ulong rip = LongModeGuest.CodeGpa)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit);
        Assert.Equal(rip, g.Vcpu.GetRegs().rip);
        Assert.Empty(g.Deliveries);
    }

    private static void AssertFault(IdtGuest g, int vector, ulong offset, string what)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.True((int)d.Vector == vector, $"{what}: {d}");
        Assert.Equal(IdtGuest.HasErrorCode(vector) ? 0UL : null, d.ErrorCode);
        Assert.Equal(LongModeGuest.CodeGpa + offset, d.Rip);
    }

    [ConformanceCase("Intel SDM Vol. 2B MOVDQU/MOVDQA/MOVUPS/MOVAPS/MOVUPD/MOVAPD/MOVNTDQ: 128-bit loads, stores and register copies")]
    public static void sse_moves_copy_128_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            a.movdqu(xmm0, __xmmword_ptr[Data + 1]);
            a.movups(xmm1, __xmmword_ptr[Data + 3]);
            a.movupd(xmm2, __xmmword_ptr[Data + 5]);
            a.movdqa(xmm3, __xmmword_ptr[Data + 16]);
            a.movaps(xmm4, __xmmword_ptr[Data + 32]);
            a.movapd(xmm5, __xmmword_ptr[Data + 48]);
            a.movaps(xmm6, xmm5);
            a.movdqa(xmm7, xmm0);
            a.movdqu(xmm8, xmm1);
            a.movdqu(__xmmword_ptr[Out + 1], xmm0);
            a.movups(__xmmword_ptr[Out + 0x13], xmm1);
            a.movdqa(__xmmword_ptr[Out + 0x20], xmm3);
            a.movaps(__xmmword_ptr[Out + 0x30], xmm4);
            a.movapd(__xmmword_ptr[Out + 0x40], xmm5);
            a.movntdq(__xmmword_ptr[Out + 0x50], xmm2);
        });
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Empty(g.Deliveries);
        var fpu = g.Vcpu.GetFpu();
        int[] from = [1, 3, 5, 16, 32, 48, 48, 1, 3];
        for (int n = 0; n < from.Length; n++) Assert.Equal(Pattern(from[n], 16), Xmm(fpu, n));
        Assert.Equal(Pattern(1, 16), Mem(g, Out + 1, 16));
        Assert.Equal(Pattern(3, 16), Mem(g, Out + 0x13, 16));
        Assert.Equal(Pattern(16, 16), Mem(g, Out + 0x20, 16));
        Assert.Equal(Pattern(32, 16), Mem(g, Out + 0x30, 16));
        Assert.Equal(Pattern(48, 16), Mem(g, Out + 0x40, 16));
        Assert.Equal(Pattern(5, 16), Mem(g, Out + 0x50, 16));
        Assert.Equal(0, g.Guest.Memory.Read<byte>(Out)); // nothing before the unaligned store
    }

    [ConformanceCase("Intel SDM Vol. 3A 13.1 / emulate.c x86_emulate_insn: CR4.OSFXSR = 0 or CR0.EM = 1 -> #UD, CR0.TS = 1 -> #NM, misaligned MOVDQA/MOVAPS/MOVAPD -> #GP(0); XMM unchanged")]
    public static void sse_faults(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (string What, Action<Assembler> Program, ulong Cr0, ulong Cr4Clear, int Vector)[] cases =
        [
            ("no OSFXSR", a => a.movdqu(xmm0, __xmmword_ptr[Data]), 0, CR4_OSFXSR, UD),
            ("CR0.EM", a => a.movdqu(xmm0, __xmmword_ptr[Data]), CR0_EM, 0, UD),
            ("CR0.TS", a => a.movdqu(xmm0, __xmmword_ptr[Data]), CR0_TS, 0, NM),
            ("CR0.TS without OSFXSR", a => a.movups(xmm0, __xmmword_ptr[Data]), CR0_TS, CR4_OSFXSR, UD),
            ("MOVDQA load at +8", a => a.movdqa(xmm0, __xmmword_ptr[Data + 8]), 0, 0, GP),
            ("MOVAPS store at +4", a => a.movaps(__xmmword_ptr[Out + 4], xmm0), 0, 0, GP),
            ("MOVAPD load at +1", a => a.movapd(xmm0, __xmmword_ptr[Data + 1]), 0, 0, GP),
            ("MOVNTDQ store at +8", a => a.movntdq(__xmmword_ptr[Out + 8], xmm0), 0, 0, GP),
        ];
        byte[] before = [.. Enumerable.Repeat((byte)0xa5, 16)];
        foreach (var (what, program, cr0, cr4Clear, vector) in cases)
        {
            using var g = Guest(kvm, program, cr0Set: cr0, cr4Clear: cr4Clear);
            SetXmm(g.Vcpu, before);
            AssertFault(g, vector, 0, what);
            Assert.Equal(before, Xmm(g.Vcpu.GetFpu(), 0));
            Assert.Equal(new byte[0x20], Mem(g, Out, 0x20));
        }
    }

    [ConformanceCase("Intel SDM Vol. 2B MOVD/MOVQ, PXOR/XORPS/XORPD, PCMPEQB/D, PTEST, PINSRQ/PEXTRQ, STMXCSR/LDMXCSR: results as this CPU computes them")]
    public static void sse_data_operations(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // XMM0..13 are loaded by the guest (MOVDQU, which this host runs): a KVM_SET_FPU image is not what a guest
        // sees while the XSAVE header marks SSE as in its init state.
        static void Load(Assembler a)
        {
            for (int n = 0; n < 14; n++) a.movdqu(XmmRegister(n), __xmmword_ptr[Init + (ulong)n * 16]);
        }
        using var g = Guest(kvm, a =>
        {
            Load(a);
            a.movq(rax, xmm0);
            a.movd(ebx, xmm1);
            a.movq(xmm3, rax);
            a.movd(xmm4, ebx);
            a.movq(xmm5, __qword_ptr[Data + 0x20]);
            a.movq(xmm6, xmm1);
            a.movq(__qword_ptr[Out], xmm1);
            a.movd(__dword_ptr[Out + 8], xmm0);
            a.pxor(xmm7, xmm0);
            a.xorps(xmm8, __xmmword_ptr[Data + 0x30]);
            a.xorpd(xmm9, xmm9);
            a.pcmpeqb(xmm10, xmm11);
            a.pcmpeqd(xmm12, xmm11);
            a.ptest(xmm0, xmm1);
            a.setz(cl);
            a.setc(ch);
            a.ptest(xmm9, xmm9);
            a.setz(dl);
            a.setc(dh);
            a.pinsrq(xmm13, rax, 1);
            a.pextrq(rsi, xmm1, 1);
            a.stmxcsr(__dword_ptr[Out + 0x10]);
            a.mov(__dword_ptr[Out + 0x14], 0x9fc0);
            a.ldmxcsr(__dword_ptr[Out + 0x14]);
            a.stmxcsr(__dword_ptr[Out + 0x18]);
        }, cpuid: true);
        var x0 = Vector128.Create(Pattern(0, 16));
        var x1 = Vector128.Create(Pattern(16, 16));
        var x11 = x0.WithElement(3, (byte)0xee).WithElement(9, (byte)0xee);
        var init = new[] { x0, x1, x0, x0, x0, x0, x0, x1, x0, x1, x0, x11, x0, x1 };
        for (int n = 0; n < init.Length; n++) g.Guest.Memory.Write(Init + (ulong)n * 16, Bytes(init[n]));
        var exit = g.Vcpu.Run().Reason;
        if (KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
        {
            // The loads ran; the first MOVQ is where this host gives up.
            AssertHostCannotRun(g, exit, LongModeGuest.CodeGpa + (ulong)LongModeGuest.Assemble(Load).Length);
            Assert.Equal(Bytes(x11), Xmm(g.Vcpu.GetFpu(), 11));
            return;
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
        Assert.Empty(g.Deliveries);
        var r = g.Vcpu.GetRegs();
        var fpu = g.Vcpu.GetFpu();
        ulong q0 = x0.AsUInt64().GetElement(0);
        Assert.Equal(q0, r.rax);
        Assert.Equal(x1.AsUInt32().GetElement(0), r.rbx);
        Assert.Equal(Bytes(Vector128.CreateScalar(q0).AsByte()), Xmm(fpu, 3));
        Assert.Equal(Bytes(Vector128.CreateScalar(x1.AsUInt32().GetElement(0)).AsByte()), Xmm(fpu, 4));
        Assert.Equal(Bytes(Vector128.CreateScalar(BitConverter.ToUInt64(Pattern(0x20, 8))).AsByte()), Xmm(fpu, 5));
        Assert.Equal(Bytes(Vector128.CreateScalar(x1.AsUInt64().GetElement(0)).AsByte()), Xmm(fpu, 6));
        Assert.Equal(x1.AsUInt64().GetElement(0), g.Guest.Memory.Read<ulong>(Out));
        Assert.Equal(x0.AsUInt32().GetElement(0), g.Guest.Memory.Read<uint>(Out + 8));
        Assert.Equal(0u, g.Guest.Memory.Read<uint>(Out + 12));
        Assert.Equal(Bytes(System.Runtime.Intrinsics.X86.Sse2.Xor(x1, x0)), Xmm(fpu, 7));
        Assert.Equal(Bytes(System.Runtime.Intrinsics.X86.Sse.Xor(x0.AsSingle(), Vector128.Create(Pattern(0x30, 16)).AsSingle()).AsByte()), Xmm(fpu, 8));
        Assert.Equal(new byte[16], Xmm(fpu, 9));
        Assert.Equal(Bytes(System.Runtime.Intrinsics.X86.Sse2.CompareEqual(x0, x11)), Xmm(fpu, 10));
        Assert.Equal(Bytes(System.Runtime.Intrinsics.X86.Sse2.CompareEqual(x0.AsUInt32(), x11.AsUInt32()).AsByte()), Xmm(fpu, 12));
        Assert.Equal(System.Runtime.Intrinsics.X86.Sse41.TestZ(x0, x1) ? 1UL : 0, r.rcx & 0xff);
        Assert.Equal(System.Runtime.Intrinsics.X86.Sse41.TestC(x0, x1) ? 1UL : 0, (r.rcx >> 8) & 0xff);
        Assert.Equal(0x0101UL, r.rdx & 0xffff); // PTEST of zero with itself: ZF = CF = 1
        Assert.Equal(Bytes(x1.AsUInt64().WithElement(1, q0).AsByte()), Xmm(fpu, 13));
        Assert.Equal(x1.AsUInt64().GetElement(1), r.rsi);
        Assert.Equal(0x1f80u, g.Guest.Memory.Read<uint>(Out + 0x10));
        Assert.Equal(0x9fc0u, g.Guest.Memory.Read<uint>(Out + 0x18));
    }

    [ConformanceCase("Intel SDM Vol. 2B LDMXCSR: a bit outside MXCSR_MASK (0x2ffff on this AMD host) is #GP(0); MM (bit 17) and DAZ are accepted")]
    public static void ldmxcsr_checks_reserved_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (uint value in new uint[] { 0x1_1f80, 0x8000_1f80, 0x2_1f80, 0xffff })
        {
            using var g = Guest(kvm, a => { a.ldmxcsr(__dword_ptr[Out]); a.stmxcsr(__dword_ptr[Out + 4]); });
            g.Guest.Memory.Write(Out, value);
            var exit = g.Vcpu.Run().Reason;
            if (KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
            {
                AssertHostCannotRun(g, exit);
                continue;
            }
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
            if ((value & ~0x2ffffu) != 0)
            {
                var d = g.Single();
                Assert.True(d.Vector == GP && d.ErrorCode == 0 && d.Rip == LongModeGuest.CodeGpa, $"LDMXCSR 0x{value:X}: {d}");
                continue;
            }
            Assert.Empty(g.Deliveries);
            Assert.Equal(value, g.Guest.Memory.Read<uint>(Out + 4));
        }
    }

    [ConformanceCase("arch/x86/kvm/x86.c __kvm_set_xcr: XSETBV 7 with CPUID.0xD offering AVX is taken; 5, ECX = 1, no CPUID -> #GP(0); no CR4.OSXSAVE -> #UD")]
    public static void xsetbv_follows_kvm_set_xcr(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        static void Xsetbv(Assembler a, int index, int value)
        {
            a.mov(ecx, index);
            a.xor(edx, edx);
            a.mov(eax, value);
            a.xsetbv(); // at offset 12 (5 + 2 + 5)
            a.mov(ebx, 0x77);
        }
        using (var g = Guest(kvm, a => Xsetbv(a, 0, 7), cr4Set: CR4_OSXSAVE, cpuid: true))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
            Assert.Equal(0x77UL, g.Vcpu.GetRegs().rbx);
            Assert.Equal(7UL, g.Vcpu.GetXcr0());
        }
        (string What, int Ecx, int Eax, bool Cpuid, bool Osxsave, int Vector)[] faults =
        [
            ("AVX without SSE", 0, 5, true, true, GP),
            ("ECX = 1", 1, 3, true, true, GP),
            ("no CPUID table", 0, 7, false, true, GP),
            ("x87 clear", 0, 6, true, true, GP),
            ("no CR4.OSXSAVE", 0, 3, true, false, UD),
        ];
        foreach (var (what, ecxValue, eaxValue, cpuid, osxsave, vector) in faults)
        {
            using var g = Guest(kvm, a => Xsetbv(a, ecxValue, eaxValue), cr4Set: osxsave ? CR4_OSXSAVE : 0, cpuid: cpuid);
            AssertFault(g, vector, 12, what);
            Assert.Equal(1UL, g.Vcpu.GetXcr0());
        }
    }

    [ConformanceCase("Intel SDM Vol. 2C XGETBV: ECX = 0 reads XCR0; another ECX -> #GP(0); no CR4.OSXSAVE -> #UD")]
    public static void xgetbv_reads_xcr0(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (ulong Cr4, int Ecx, int Vector)[] runs = [(CR4_OSXSAVE, 0, -1), (0, 0, UD), (CR4_OSXSAVE, 2, GP)];
        foreach (var (cr4, ecxValue, vector) in runs)
        {
            using var g = Guest(kvm, a => { a.xgetbv(); a.mov(ebx, 0x77); }, cr4Set: cr4, cpuid: true, xcr0: 7);
            var regs = g.Vcpu.GetRegs();
            regs.rcx = (ulong)ecxValue;
            regs.rax = regs.rdx = ulong.MaxValue;
            g.Vcpu.SetRegs(regs);
            var exit = g.Vcpu.Run().Reason;
            if (KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
            {
                AssertHostCannotRun(g, exit);
                continue;
            }
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
            if (vector < 0)
            {
                Assert.Empty(g.Deliveries);
                var r = g.Vcpu.GetRegs();
                Assert.Equal(7UL, r.rax);
                Assert.Equal(0UL, r.rdx);
                continue;
            }
            var d = g.Single();
            Assert.True((int)d.Vector == vector && d.Rip == LongModeGuest.CodeGpa, $"XGETBV ECX={ecxValue}: {d}");
        }
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_set_dr/kvm_get_dr via emulate.c em_dr_read/em_dr_write: DR0-3 as written, DR6/DR7 fixed bits, DR4/DR5 alias DR6/DR7")]
    public static void debug_register_moves(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, a =>
        {
            a.mov(rax, 0x1234_5678_9abcL);
            a.mov(dr0, rax);
            a.mov(rax, unchecked((long)0x8000_0000_0000_0001UL)); // non-canonical is fine
            a.mov(dr1, rax);
            a.mov(eax, 0x2000);
            a.mov(dr2, rax);
            a.mov(rax, -1L);
            a.mov(dr3, rax);
            a.mov(r8, dr0);
            a.mov(r9, dr6);
            a.mov(r10, dr7);
            a.xor(eax, eax);
            a.mov(dr6, rax);
            a.mov(r11, dr6);
            a.mov(eax, -1);
            a.mov(dr4, rax);
            a.mov(r12, dr6);
            a.mov(eax, unchecked((int)0xffff_0000));
            a.mov(dr7, rax);
            a.mov(r13, dr7);
            a.mov(r14, dr4);
            a.mov(r15, dr5);
            a.mov(rax, 1L << 32);
            a.mov(dr5, rax); // kvm_set_dr refuses it and em_dr_write drops the write without a fault
            a.mov(rsi, dr7);
            a.mov(rdi, dr3);
        });
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Empty(g.Deliveries);
        var r = g.Vcpu.GetRegs();
        Assert.Equal(0x1234_5678_9abcUL, r.r8);
        Assert.Equal(0xffff_0ff0UL, r.r9);
        Assert.Equal(0x400UL, r.r10);
        Assert.Equal(0xffff_0ff0UL, r.r11); // DR6 = (0 & DR6_VOLATILE) | kvm_dr6_fixed
        Assert.Equal(0xffff_efffUL, r.r12); // bit 12 reserved 0; RTM and BUS_LOCK read 1 without the CPUID bits
        Assert.Equal(0xffff_0400UL, r.r13);
        Assert.Equal(r.r12, r.r14);
        Assert.Equal(r.r13, r.r15);
        Assert.Equal(0xffff_0400UL, r.rsi);
        Assert.Equal(ulong.MaxValue, r.rdi);
        var d = g.Vcpu.GetDebugRegs();
        Assert.Equal(0x1234_5678_9abcUL, d.db[0]);
        Assert.Equal(0x8000_0000_0000_0001UL, d.db[1]);
        Assert.Equal(0x2000UL, d.db[2]);
        Assert.Equal(ulong.MaxValue, d.db[3]);
        Assert.Equal(0xffff_efffUL, d.dr6);
        Assert.Equal(0xffff_0400UL, d.dr7);
    }

    [ConformanceCase("emulate.c check_dr_write/check_dr_read: bits 63:32 of DR6/DR7 -> #GP(0), DR4/DR5 with CR4.DE -> #UD, DR7.GD -> #DB with DR6.BD and GD cleared")]
    public static void debug_register_faults(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (string What, Action<Assembler> Program, ulong Cr4, int Vector, ulong Offset)[] cases =
        [
            ("DR7 bit 32", a => { a.mov(rax, 1L << 32); a.mov(dr7, rax); }, 0, GP, 10),
            ("DR6 bit 63", a => { a.mov(rax, long.MinValue); a.mov(dr6, rax); }, 0, GP, 10),
            ("read DR4 with CR4.DE", a => a.mov(rbx, dr4), CR4_DE, UD, 0),
            ("write DR5 with CR4.DE", a => a.mov(dr5, rax), CR4_DE, UD, 0),
            ("DR7.GD", a => { a.mov(eax, 0x2400); a.mov(dr7, rax); a.mov(rbx, dr0); }, 0, DB, 8),
        ];
        foreach (var (what, program, cr4, vector, offset) in cases)
        {
            using var g = Guest(kvm, program, cr4Set: cr4);
            AssertFault(g, vector, offset, what);
            var d = g.Vcpu.GetDebugRegs();
            Assert.Equal(vector == DB ? 0xffff_2ff0UL : 0xffff_0ff0UL, d.dr6);
            Assert.Equal(0x400UL, d.dr7);
        }
    }

    [ConformanceCase("x86.c kvm_vcpu_check_code_breakpoint: an enabled execute breakpoint raises #DB on the instruction (DR6.Bn, RF clear in the frame); a data breakpoint does not fire here")]
    public static void code_breakpoint_raises_debug_exception(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Target = LongModeGuest.CodeGpa + 0x20;
        using (var g = Guest(kvm, a =>
        {
            a.mov(rax, (long)Target);
            a.mov(dr1, rax);
            a.mov(eax, 0x404); // L1, RW1 = LEN1 = 0
            a.mov(dr7, rax);
            for (int k = 0; k < 32; k++) a.nop();
            a.mov(esi, 0x55);
        }))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            var d = g.Single();
            Assert.Equal((ulong)DB, d.Vector);
            Assert.Null(d.ErrorCode);
            Assert.Equal(Target, d.Rip);
            Assert.Equal(2UL, d.Rflags); // KVM injects #DB as a trap: no RF in the frame
            Assert.Equal(0xffff_0ff2UL, g.Vcpu.GetDebugRegs().dr6);
            Assert.Equal(0UL, g.Vcpu.GetRegs().rsi); // the breakpointed instructions did not run
        }
        // A write breakpoint (RW0 = 01) on data the guest then writes: not raised by this host's KVM nor the emulator's
        // like-this-host preset (VMX/SVM hardware raises #DB after the write: EmulatorConfig.X86DataBreakpoints, on in the
        // upstream presets, tests/KvmSharp.Emulation.Tests/X86DataBreakpointTests.cs).
        using (var g = Guest(kvm, a =>
        {
            a.mov(rax, (long)Out);
            a.mov(dr0, rax);
            a.mov(eax, 0xd0402); // G0, RW0 = 01, LEN0 = 11
            a.mov(dr7, rax);
            a.mov(__qword_ptr[Out], rax);
            a.mov(ebx, 0x55);
        }))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
            Assert.Equal(0x55UL, g.Vcpu.GetRegs().rbx);
            Assert.Equal(0xffff_0ff0UL, g.Vcpu.GetDebugRegs().dr6);
        }
    }

    [ConformanceCase("Intel SDM Vol. 2A 2.3.10/14.1.3: VMOVDQU/VMOVDQA ymm, VEXTRACTI128, VEX.128 zeroes bits 255:128, legacy SSE keeps them, VPXOR/VXORPS/VPCMPEQB, VZEROUPPER")]
    public static void avx_moves_and_upper_halves(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = AvxGuest(kvm, a =>
        {
            a.vmovdqu(ymm0, __ymmword_ptr[Data]);
            a.vmovdqa(ymm1, __ymmword_ptr[Data + 0x20]);
            a.vmovdqu(__ymmword_ptr[Out], ymm0);
            a.vextracti128(__xmmword_ptr[Out + 0x20], ymm1, 1);
            a.vmovdqu(ymm2, ymm0);
            a.vmovdqu(xmm2, __xmmword_ptr[Data + 0x20]);
            a.vextractf128(__xmmword_ptr[Out + 0x30], ymm2, 1);
            a.vmovdqu(ymm3, ymm0);
            a.movdqu(xmm3, __xmmword_ptr[Data + 0x20]);
            a.vextracti128(__xmmword_ptr[Out + 0x40], ymm3, 1);
            a.vpxor(ymm4, ymm0, ymm1);
            a.vmovdqu(__ymmword_ptr[Out + 0x60], ymm4);
            a.vxorps(xmm5, xmm0, xmm1);
            a.vmovups(ymm6, __ymmword_ptr[Data + 1]);
            a.vmovaps(__ymmword_ptr[Out + 0x80], ymm6);
            a.vpcmpeqb(ymm7, ymm0, __ymmword_ptr[Data]);
            a.vmovdqu(__ymmword_ptr[Out + 0xa0], ymm7);
            a.vextracti128(xmm8, ymm1, 1);
            a.vzeroupper();
            a.vextracti128(__xmmword_ptr[Out + 0xc0], ymm0, 1);
        });
        var exit = g.Vcpu.Run().Reason;
        if (KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
        {
            AssertHostCannotRun(g, exit);
            return;
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
        Assert.Empty(g.Deliveries);
        var y0 = Vector256.Create(Pattern(0, 32));
        var y1 = Vector256.Create(Pattern(32, 32));
        var fpu = g.Vcpu.GetFpu();
        Assert.Equal(Pattern(0, 32), Mem(g, Out, 32));
        Assert.Equal(Pattern(48, 16), Mem(g, Out + 0x20, 16));
        Assert.Equal(new byte[16], Mem(g, Out + 0x30, 16));      // VEX.128 load zeroed YMM2's upper half
        Assert.Equal(Pattern(16, 16), Mem(g, Out + 0x40, 16));   // legacy MOVDQU kept YMM3's upper half
        Assert.Equal(Bytes(System.Runtime.Intrinsics.X86.Avx2.Xor(y0, y1)), Mem(g, Out + 0x60, 32));
        Assert.Equal(Bytes(System.Runtime.Intrinsics.X86.Sse.Xor(y0.GetLower().AsSingle(), y1.GetLower().AsSingle()).AsByte()), Xmm(fpu, 5));
        Assert.Equal(Pattern(1, 32), Mem(g, Out + 0x80, 32));
        Assert.Equal([.. Enumerable.Repeat((byte)0xff, 32)], Mem(g, Out + 0xa0, 32));
        Assert.Equal(Pattern(48, 16), Xmm(fpu, 8));
        Assert.Equal(new byte[16], Mem(g, Out + 0xc0, 16));      // VZEROUPPER
        Assert.Equal(Pattern(0, 16), Xmm(fpu, 0));               // … left the low halves
        Assert.Equal(Pattern(32, 16), Xmm(fpu, 2));
        Assert.Equal(Pattern(32, 16), Xmm(fpu, 3));
    }

    [ConformanceCase("Intel SDM Vol. 2C VZEROALL zeroes YMM0-15; VEX faults: XCR0 without AVX or no CR4.OSXSAVE -> #UD, CR0.TS -> #NM, misaligned VMOVDQA -> #GP(0)")]
    public static void avx_vzeroall_and_faults(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var g = AvxGuest(kvm, a =>
        {
            a.vmovdqu(ymm0, __ymmword_ptr[Data]);
            a.vmovdqu(ymm15, __ymmword_ptr[Data]);
            a.vzeroall();
            a.vmovdqu(__ymmword_ptr[Out], ymm15);
        }))
        {
            var exit = g.Vcpu.Run().Reason;
            if (KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal)) AssertHostCannotRun(g, exit);
            else
            {
                Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
                Assert.Empty(g.Deliveries);
                Assert.Equal(new byte[16], Xmm(g.Vcpu.GetFpu(), 0));
                Assert.Equal(new byte[32], Mem(g, Out, 32));
            }
        }
        (string What, Action<Assembler> Program, ulong Cr0, ulong Xcr0, ulong Cr4Clear, int Vector)[] cases =
        [
            ("XCR0 = 3", a => a.vmovdqu(ymm0, __ymmword_ptr[Data]), 0, 3, 0, UD),
            ("no CR4.OSXSAVE", a => a.vmovdqu(ymm0, __ymmword_ptr[Data]), 0, 7, CR4_OSXSAVE, UD),
            ("CR0.TS", a => a.vmovdqu(ymm0, __ymmword_ptr[Data]), CR0_TS, 7, 0, NM),
            ("VMOVDQA ymm at +16", a => a.vmovdqa(ymm0, __ymmword_ptr[Data + 16]), 0, 7, 0, GP),
            ("VMOVDQA xmm at +8", a => a.vmovdqa(__xmmword_ptr[Out + 8], xmm0), 0, 7, 0, GP),
        ];
        foreach (var (what, program, cr0, xcr0, cr4Clear, vector) in cases)
        {
            using var g = AvxGuest(kvm, program, cr0, xcr0, cr4Clear);
            if (KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal))
            {
                AssertHostCannotRun(g, g.Vcpu.Run().Reason);
                continue;
            }
            AssertFault(g, vector, 0, what);
        }
    }
}
