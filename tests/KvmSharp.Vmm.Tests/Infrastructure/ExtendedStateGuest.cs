// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// A guest that leaves its marks in the vCPU state a call does not reload, and reads them back:
/// <list type="bullet">
/// <item><c>taint(secret, avx)</c>: XMM n = { secret + n, ~(secret + n) } (MOVDQU from memory), DR0..DR3 = addresses
/// derived from the secret with DR0 armed in DR7 (<see cref="TaintedDr7"/>, a write breakpoint on a page nothing
/// touches); with <c>avx</c> ≠ 0 also CR4.OSXSAVE and XCR0 = x87|SSE|AVX (XSETBV).</item>
/// <item><c>probe()</c>: output = XMM0..15 (256 bytes, MOVDQU to memory), then DR0..3, DR6, DR7 (6 × u64).</item>
/// <item><c>wrmsr(index, value)</c> → 0; <c>rdmsr(index)</c> → the value (a refused MSR is a #GP outcome).</item>
/// </list>
/// Only instructions this project's kvm_pvm hosts run: they emulate every SSE/AVX instruction with KVM's instruction
/// emulator, which knows MOVDQU/MOVDQA/MOVAPS/MOVUPS, FXSAVE and XSETBV but not MOVQ, LDMXCSR/STMXCSR, XGETBV or
/// any VEX instruction (those end in KVM_EXIT_INTERNAL_ERROR there). MXCSR and the upper YMM halves are therefore
/// set and read by the tests through KVM_SET/GET_XSAVE instead.
/// </summary>
public static class ExtendedStateGuest
{
    /// <summary>L0 | reserved bit 10 | RW0 = write | LEN0 = 8 bytes.</summary>
    public const ulong TaintedDr7 = 0x1 | 0x400 | (1UL << 16) | (3UL << 18);

    /// <summary>DR0's address: the last page of a 2 MiB micro-VM, which neither guest touches.</summary>
    public const ulong BreakpointAddress = 0x1F_F000;

    public const int OutputLength = 256 + 48;

    /// <summary>XCR0 after <c>taint</c> with AVX: x87 | SSE | AVX.</summary>
    public const ulong TaintedXcr0 = 7;

    private const ulong Cr4OsXsave = 1UL << 18;

    public static GuestImage Image()
    {
        var p = new GuestProgram();
        Assembler a = p.Asm;
        Label start = p.Export("_start"), taint = p.Export("taint"), probe = p.Export("probe");
        var xmm = new[] { xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15 };
        var dr = new[] { dr0, dr1, dr2, dr3 };
        const ulong Scratch = Layout.CallData;

        p.Place(ref start);
        p.ExitWith(0);

        // taint(RDI = secret, RSI = avx)
        p.Place(ref taint);
        a.mov(r8, Scratch);
        a.mov(rax, rdi);
        for (int n = 0; n < 16; n++)
        {
            a.mov(__qword_ptr[r8 + n * 16], rax);
            a.mov(rdx, rax);
            a.not(rdx);
            a.mov(__qword_ptr[r8 + n * 16 + 8], rdx);
            a.movdqu(xmm[n], __xmmword_ptr[r8 + n * 16]);
            a.inc(rax);
        }
        a.mov(rax, BreakpointAddress);
        a.mov(dr0, rax);
        for (int n = 1; n < 4; n++)
        {
            a.mov(rax, rdi);
            a.add(rax, n * 0x1000);
            a.mov(dr[n], rax);
        }
        a.mov(rax, TaintedDr7);
        a.mov(dr7, rax);
        Label done = a.CreateLabel();
        a.test(rsi, rsi);
        a.jz(done);
        a.mov(rax, cr4);
        a.or(rax, (int)Cr4OsXsave);
        a.mov(cr4, rax);
        a.xor(ecx, ecx);
        a.xor(edx, edx);
        a.mov(eax, (int)TaintedXcr0);
        a.xsetbv();
        a.Label(ref done);
        a.xor(eax, eax);
        a.ret();

        // probe()
        p.Place(ref probe);
        a.mov(r8, Scratch);
        for (int n = 0; n < 16; n++) a.movdqu(__xmmword_ptr[r8 + n * 16], xmm[n]);
        for (int n = 0; n < 4; n++)
        {
            a.mov(rax, dr[n]);
            a.mov(__qword_ptr[r8 + 256 + n * 8], rax);
        }
        a.mov(rax, dr6);
        a.mov(__qword_ptr[r8 + 288], rax);
        a.mov(rax, dr7);
        a.mov(__qword_ptr[r8 + 296], rax);
        a.mov(rax, GuestAbi.CallRegion.Address(GuestAbi.CallRegion.OutputPtr));
        a.mov(__qword_ptr[rax], r8);
        a.mov(__qword_ptr[rax + 8], OutputLength);
        a.xor(eax, eax);
        a.ret();

        p.AddMsrFunctions();

        return p.Build(start);
    }

    /// <summary>True when <paramref name="kvm"/>'s supported CPUID offers XSAVE and AVX (leaf 1 ECX bits 26 and 28).</summary>
    public static bool HostOffersAvx(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        foreach (CpuidEntry e in kvm.GetSupportedCpuid())
            if (e.Function == 1) return (e.Ecx & (1u << 26)) != 0 && (e.Ecx & (1u << 28)) != 0;
        return false;
    }
}
