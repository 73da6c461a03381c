// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The interpreter's SSE/AVX, XCR0 and debug-register instructions beyond the 64-bit conformance cases
/// (KvmSharp.Conformance ExtendedStateInstructions, which run on both kernels): a real-mode guest compared with this
/// host's kernel, and the emulator's rules where this host's KVM cannot run the instruction (it ends in
/// KVM_EXIT_INTERNAL_ERROR there): feature gating on the guest CPUID, MMX forms left unemulated, XGETBV's ECX = 1.
/// </summary>
public sealed class SseInstructionTests
{
    private const string NoKvm = "/dev/kvm cannot be opened here: there is no real kernel to compare with";
    private const ulong Idt = 0x6000, Handlers = 0x7000, Report = 0x9000, Data = 0xa000;

    private static kvm_fpu GetFpu(RawGuest g)
    {
        var fpu = default(kvm_fpu);
        Assert.Equal(0, g.Kernel.Ioctl(g.Vcpu, KvmIoctls.KVM_GET_FPU, Raw.Bytes(ref fpu)));
        return fpu;
    }

    private static kvm_debugregs GetDebugRegs(RawGuest g)
    {
        var d = default(kvm_debugregs);
        Assert.Equal(0, g.Kernel.Ioctl(g.Vcpu, KvmIoctls.KVM_GET_DEBUGREGS, Raw.Bytes(ref d)));
        return d;
    }

    [SkippableFact]
    public void A_real_mode_guest_moves_xmm_and_debug_registers_identically_on_both_kernels()
    {
        Skip.IfNot(Raw.HostHasKvm, NoKvm);
        using var emu = new EmulatedKernel();
        Assert.Equal(Trace(LinuxKernel.Instance), Trace(emu));

        static List<string> Trace(IKernel k)
        {
            using var g = new RawGuest(k);
            g.RealMode(a =>
            {
                a.movdqu(xmm0, __xmmword_ptr[0x101]);
                a.movaps(xmm1, __xmmword_ptr[0x110]);
                a.movdqu(__xmmword_ptr[0x203], xmm1);
                a.movdqa(__xmmword_ptr[0x220], xmm0);
                a.mov(eax, 0x1234_5678);
                a.mov(dr2, eax);
                a.mov(ebx, dr2);
                a.mov(ecx, dr7);
                a.xor(eax, eax);
                a.mov(dr6, eax);
                a.mov(edx, dr4);
                a.hlt();
            });
            for (int b = 0; b < 0x40; b++) g.Memory.GetSpan(0x1_0100 + (ulong)b, 1)[0] = (byte)(b + 1);
            var s = g.Sregs;
            s.cr4 |= 1 << 9; // OSFXSR
            g.Sregs = s;
            g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
            var r = g.Regs;
            var fpu = GetFpu(g);
            var d = GetDebugRegs(g);
            ReadOnlySpan<byte> xmm = fpu.xmm;
            return
            [
                $"rip={r.rip:X} rbx={r.rbx:X} rcx={r.rcx:X} rdx={r.rdx:X}",
                $"xmm0={Convert.ToHexString(xmm[..16])} xmm1={Convert.ToHexString(xmm[16..32])}",
                $"mem={Convert.ToHexString(g.Memory.GetSpan(0x1_0200, 0x30))}",
                $"db2={d.db[2]:X} dr6={d.dr6:X} dr7={d.dr7:X}",
            ];
        }
    }

    /// <summary>A long-mode RawGuest whose 32 IDT gates each record their vector at <see cref="Report"/> and halt.</summary>
    private static RawGuest Guest(IKernel k, Action<Assembler> program, ulong cr4Set = 0, bool avxCpuid = false, bool sse41 = false, bool avx2 = false)
    {
        var g = new RawGuest(k);
        g.LongMode(a => { program(a); a.hlt(); });
        g.Write64(0x5008, 0x00af_9b00_0000_ffffUL);
        g.Write64(0x5010, 0x00cf_9300_0000_ffffUL);
        for (int v = 0; v < 32; v++)
        {
            ulong handler = Handlers + (ulong)v * 0x20;
            g.Write(handler, RawGuest.Assemble(64, handler, h => { h.mov(__qword_ptr[Report], v); h.hlt(); }));
            g.Write64(Idt + (ulong)v * 16, (handler & 0xffff) | (8UL << 16) | (0x8eUL << 40) | (((handler >> 16) & 0xffff) << 48));
        }
        g.Write64(Report, ulong.MaxValue);
        var s = g.Sregs;
        s.gdt = new kvm_dtable { @base = 0x5000, limit = 23 };
        s.idt = new kvm_dtable { @base = Idt, limit = 32 * 16 - 1 };
        s.cr4 |= (1 << 9) | cr4Set; // OSFXSR
        g.Sregs = s;
        if (avxCpuid || sse41)
        {
            // The supported table with exactly the features asked for: SSE4.1 (1.ECX[19]), XSAVE + AVX (1.ECX[26, 28]),
            // AVX2 (7.0.EBX[5]).
            const uint Leaf1Features = (1u << 19) | (1u << 26) | (1u << 28);
            using var kvm = Kvm.Open(k);
            var table = kvm.GetSupportedCpuid().Select(e => e.Function switch
            {
                1 => e with { Ecx = (e.Ecx & ~Leaf1Features) | (sse41 ? 1u << 19 : 0) | (avxCpuid ? (1u << 26) | (1u << 28) : 0) },
                7 when e.Index == 0 => e with { Ebx = (e.Ebx & ~(1u << 5)) | (avx2 ? 1u << 5 : 0) },
                _ => e,
            }).ToArray();
            byte[] buffer = new byte[8 + table.Length * 40];
            BitConverter.TryWriteBytes(buffer.AsSpan(0, 4), table.Length);
            for (int n = 0; n < table.Length; n++)
            {
                var e = table[n].ToNative();
                Raw.Bytes(ref e).CopyTo(buffer.AsSpan(8 + n * 40));
            }
            Assert.Equal(0, k.Ioctl(g.Vcpu, KvmIoctls.KVM_SET_CPUID2, buffer));
            var xcrs = new kvm_xcrs { nr_xcrs = 1 };
            xcrs.xcrs[0].value = 7;
            Assert.Equal(0, k.Ioctl(g.Vcpu, KvmIoctls.KVM_SET_XCRS, Raw.Bytes(ref xcrs)));
        }
        return g;
    }

    private static ulong VectorSeen(RawGuest g)
    {
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        return g.Read64(Report);
    }

    [Fact]
    public void Sse41_instructions_are_undefined_without_the_cpuid_bit()
    {
        using var k = new EmulatedKernel();
        using (var g = Guest(k, a => a.ptest(xmm0, xmm1))) Assert.Equal(6UL, VectorSeen(g));
        using (var g = Guest(k, a => a.pinsrq(xmm0, rax, 1))) Assert.Equal(6UL, VectorSeen(g));
        using (var g = Guest(k, a => a.ptest(xmm0, xmm1), sse41: true)) Assert.Equal(ulong.MaxValue, VectorSeen(g));
    }

    [Fact]
    public void Avx_is_undefined_without_the_cpuid_bit_even_with_xcr0_and_osxsave()
    {
        using var k = new EmulatedKernel();
        using (var g = Guest(k, a => a.vzeroupper(), cr4Set: 1 << 18, sse41: true))
        {
            // XCR0 = 7 is taken (CPUID.0xD offers AVX) but CPUID.1 ECX.AVX is clear.
            var xcrs = new kvm_xcrs { nr_xcrs = 1 };
            xcrs.xcrs[0].value = 7;
            Assert.Equal(0, k.Ioctl(g.Vcpu, KvmIoctls.KVM_SET_XCRS, Raw.Bytes(ref xcrs)));
            Assert.Equal(6UL, VectorSeen(g));
        }
        using (var g = Guest(k, a => a.vzeroupper(), cr4Set: 1 << 18, avxCpuid: true)) Assert.Equal(ulong.MaxValue, VectorSeen(g));
    }

    [Fact]
    public void Vpxor_ymm_and_vextracti128_need_avx2()
    {
        using var k = new EmulatedKernel();
        // Without AVX2 (CPUID.7.0 EBX bit 5) the 256-bit integer forms are #UD, the 128-bit VPXOR and VEXTRACTF128 are AVX.
        using (var g = Guest(k, a => a.vpxor(ymm0, ymm1, ymm2), cr4Set: 1 << 18, avxCpuid: true)) Assert.Equal(6UL, VectorSeen(g));
        using (var g = Guest(k, a => a.vextracti128(xmm0, ymm1, 1), cr4Set: 1 << 18, avxCpuid: true)) Assert.Equal(6UL, VectorSeen(g));
        using (var g = Guest(k, a => { a.vpxor(ymm0, ymm1, ymm2); a.vextracti128(xmm0, ymm1, 1); }, cr4Set: 1 << 18, avxCpuid: true, avx2: true))
            Assert.Equal(ulong.MaxValue, VectorSeen(g));
        using (var g = Guest(k, a => { a.vpxor(xmm0, xmm1, xmm2); a.vextractf128(xmm3, ymm1, 1); }, cr4Set: 1 << 18, avxCpuid: true))
            Assert.Equal(ulong.MaxValue, VectorSeen(g));
    }

    [Fact]
    public void Mmx_forms_and_xgetbv_xinuse_stay_outside_the_emulated_subset()
    {
        using var k = new EmulatedKernel();
        foreach (Action<Assembler> program in new Action<Assembler>[] { a => a.movq(mm0, rax), a => a.pxor(mm0, mm1), a => a.pcmpeqb(mm0, mm1) })
        {
            using var g = Guest(k, program);
            g.RunExpect(KvmExitReason.KVM_EXIT_INTERNAL_ERROR);
            Assert.Equal(RawGuest.CodeGpa, g.Regs.rip);
        }
        // XGETBV ECX = 1 (XINUSE) is not modelled: without CPUID.0xD.1 EAX[2] it is #GP, as any unsupported XCR.
        using (var g = Guest(k, a => { a.mov(ecx, 1); a.xgetbv(); }, cr4Set: 1 << 18)) Assert.Equal(13UL, VectorSeen(g));
    }

    [Fact]
    public void Ldmxcsr_changes_what_stmxcsr_stores_and_kvm_get_fpu_does_not_report_it()
    {
        using var k = new EmulatedKernel();
        using var g = Guest(k, a =>
        {
            a.stmxcsr(__dword_ptr[Data]);
            a.mov(__dword_ptr[Data + 4], 0x9fc0);
            a.ldmxcsr(__dword_ptr[Data + 4]);
            a.stmxcsr(__dword_ptr[Data + 8]);
        });
        Assert.Equal(ulong.MaxValue, VectorSeen(g));
        Assert.Equal(0x1f80UL, g.Read64(Data) & 0xffff_ffff); // MXCSR_DEFAULT of a new vCPU
        Assert.Equal(0x9fc0UL, g.Read64(Data + 8) & 0xffff_ffff);
        // KVM_GET_FPU does not report MXCSR (it reads 0, as upstream): the guest's value is only seen in the guest.
        Assert.Equal(0u, GetFpu(g).mxcsr);
    }

    [Fact]
    public void A_faulting_sse_load_leaves_the_register_and_a_movq_store_writes_eight_bytes()
    {
        using var k = new EmulatedKernel();
        // 0x80_0000 is beyond the identity map: #PF, and XMM0 keeps what the guest put there.
        using (var g = Guest(k, a => { a.pcmpeqd(xmm0, xmm0); a.movq(xmm0, __qword_ptr[0x80_0000]); }))
        {
            Assert.Equal(14UL, VectorSeen(g));
            var fpu = GetFpu(g);
            ReadOnlySpan<byte> xmm = fpu.xmm;
            Assert.True(xmm[..16].SequenceEqual(Enumerable.Repeat((byte)0xff, 16).ToArray()));
        }
        using (var g = Guest(k, a => { a.pcmpeqd(xmm1, xmm1); a.movq(__qword_ptr[Data], xmm1); }))
        {
            g.Write64(Data + 8, 0x1111);
            Assert.Equal(ulong.MaxValue, VectorSeen(g));
            Assert.Equal(ulong.MaxValue, g.Read64(Data));
            Assert.Equal(0x1111UL, g.Read64(Data + 8));
        }
    }

    /// <summary>
    /// Intel SDM Vol. 2C "VTESTPD/VTESTPS—Packed Bit Test": only each element's sign bit counts (ZF: none of SRC1 AND
    /// SRC2, CF: none of (NOT SRC1) AND SRC2), AF/OF/PF/SF are cleared, nothing is written (a VEX.128 form leaves bits
    /// 255:128), and the instruction is AVX: #UD without CPUID.1 ECX.AVX. The host-CPU oracle is
    /// KvmSharp.Conformance VexTestCases (Oracles/v3_vtest.c).
    /// </summary>
    [Fact]
    public void Vtestps_and_vtestpd_set_zf_and_cf_from_sign_bits_only()
    {
        using var k = new EmulatedKernel();
        const ulong A = Data, B = Data + 0x40, Zero = Data + 0x80, Flags = Data + 0x100, Kept = Data + 0x200;
        // Each step: RFLAGS = CF|PF|AF|ZF|SF|OF, the test, RFLAGS & 0x8d5 stored.
        Action<Assembler>[] tests =
        [
            a => a.vtestps(xmm2, xmm1),  // A&B: only non-sign bits overlap → ZF; dword 1: B's sign without A's → CF clear
            a => a.vptest(xmm2, xmm1),   // the same inputs, all bits: ZF clear, CF clear
            a => a.vtestps(ymm2, ymm1),  // dword 7: both signs → ZF clear
            a => a.vtestpd(xmm2, xmm1),  // qword 0: A's sign (bit 63) clear, B's set → ZF set, CF clear
            a => a.vtestpd(xmm1, xmm1),  // B AND B has a sign, NOT B AND B none → CF only
            a => a.vtestpd(ymm2, __ymmword_ptr[A]), // qword 3 sign in both → CF only
            a => a.vtestps(xmm2, xmm3),  // SRC2 zero → ZF and CF
        ];
        ulong[] want = [0x40, 0, 0, 0x40, 0x01, 0x01, 0x41];
        using var g = Guest(k, a =>
        {
            a.vmovdqu(ymm2, __ymmword_ptr[A]);
            a.vmovdqu(ymm1, __ymmword_ptr[B]);
            a.vmovdqu(ymm3, __ymmword_ptr[Zero]);
            for (int n = 0; n < tests.Length; n++)
            {
                a.push(0x8d7);
                a.popfq();
                tests[n](a);
                a.pushfq();
                a.pop(rax);
                a.and(eax, 0x8d5);
                a.mov(__qword_ptr[Flags + (ulong)(8 * n)], rax);
            }
            a.vmovdqu(__ymmword_ptr[Kept], ymm2);
        }, cr4Set: 1 << 18, avxCpuid: true, sse41: true);
        uint[] a32 = [0x8000_0000, 0x7fff_ffff, 0, 0, 0, 0, 0, 0x8000_0000];
        uint[] b32 = [0, 0xffff_ffff, 0, 0, 0, 0, 0, 0x8000_0000];
        for (int n = 0; n < 4; n++)
        {
            g.Write64(A + (ulong)(8 * n), a32[2 * n] | (ulong)a32[2 * n + 1] << 32);
            g.Write64(B + (ulong)(8 * n), b32[2 * n] | (ulong)b32[2 * n + 1] << 32);
            g.Write64(Zero + (ulong)(8 * n), 0);
        }
        Assert.Equal(ulong.MaxValue, VectorSeen(g));
        Assert.Equal(want, Enumerable.Range(0, tests.Length).Select(n => g.Read64(Flags + (ulong)(8 * n))).ToArray());
        for (int n = 0; n < 4; n++) Assert.Equal(g.Read64(A + (ulong)(8 * n)), g.Read64(Kept + (ulong)(8 * n)));
        using (var noAvx = Guest(k, a => a.vtestps(xmm0, xmm1), cr4Set: 1 << 18, sse41: true)) Assert.Equal(6UL, VectorSeen(noAvx));
        using (var noAvx = Guest(k, a => a.vtestpd(ymm0, ymm1), cr4Set: 1 << 18, sse41: true)) Assert.Equal(6UL, VectorSeen(noAvx));
    }
}
