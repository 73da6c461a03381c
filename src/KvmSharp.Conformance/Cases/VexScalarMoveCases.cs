// SPDX-License-Identifier: MIT
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Cases.SimdSteps;
using Step = KvmSharp.Conformance.Cases.SimdSteps.YmmStep;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// VMOVSS/VMOVSD xmm1, xmm2, xmm3 in their second encoding, VEX.LIG.F3/F2.0F 11 /r with ModRM.rm the destination
/// (gcc -O2 -march=x86-64-v3 emits it for a scalar double kept in a register; CompiledCorpusTests found it stopping the
/// interpreter), against this host's CPU. kvm_pvm decodes no VEX
/// (<see cref="ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator"/>): its KVM_EXIT_INTERNAL_ERROR is asserted there.
/// </summary>
public static class VexScalarMoveCases
{
    private const ulong In = 0x9_0000, Out = 0xC_0000;
    private const ulong CR4_OSXSAVE = 1 << 18;

    [ConformanceCase("Intel SDM Vol. 2B MOVSS/MOVSD: VEX.LIG.F3/F2.0F 11 /r VMOVSS/VMOVSD xmm1 (ModRM.rm), xmm2 (VEX.vvvv), xmm3 (ModRM.reg): bits 31:0 / 63:0 from xmm3, the rest of 127:0 from xmm2, bits 255:128 zeroed, as this CPU computes them")]
    public static void vmovss_and_vmovsd_store_form_register_moves_match_the_cpu(CaseContext ctx)
    {
        if (!Avx.IsSupported) return; // no oracle on this host
        var f0 = Vector256.Create(1.5f, -2.25f, 3f, 4f, 5f, 6f, 7f, 8f);
        var f1 = Vector256.Create(-9f, 10f, 11.5f, 12f, 13f, 14f, 15f, 16f);
        var d0 = f0.AsDouble();
        var d1 = f1.AsDouble();
        Step[] steps =
        [
            // c5 eb 11 ca: vmovsd xmm2 (rm), xmm2 (vvvv), xmm1 (reg)
            S128("vmovsd 0F11 xmm2, xmm2, xmm1", d0, d1, a => a.db(0xc5, 0xeb, 0x11, 0xca), d0.GetLower().WithElement(0, d1.GetElement(0))),
            // c5 ea 11 ca: vmovss xmm2, xmm2, xmm1
            S128("vmovss 0F11 xmm2, xmm2, xmm1", f0, f1, a => a.db(0xc5, 0xea, 0x11, 0xca), f0.GetLower().WithElement(0, f1.GetElement(0))),
            // c5 f3 11 d2: vmovsd xmm2 (rm), xmm1 (vvvv), xmm2 (reg): the upper half from the other register
            S128("vmovsd 0F11 xmm2, xmm1, xmm2", d0, d1, a => a.db(0xc5, 0xf3, 0x11, 0xd2), d1.GetLower().WithElement(0, d0.GetElement(0))),
            // c5 f2 11 d2: vmovss xmm2, xmm1, xmm2
            S128("vmovss 0F11 xmm2, xmm1, xmm2", f0, f1, a => a.db(0xc5, 0xf2, 0x11, 0xd2), f1.GetLower().WithElement(0, f0.GetElement(0))),
            // the 0F 10 form of the same move, for comparison
            S128("vmovsd 0F10 xmm2, xmm1, xmm2", d0, d1, a => a.vmovsd(xmm2, xmm1, xmm2), d1.GetLower().WithElement(0, d0.GetElement(0))),
        ];
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            EmitSteps(a, In, Out, steps);
            a.hlt();
        }, [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))]);
        // CPUID.1 ECX: XSAVE (26), AVX (28); the guest sets CR4.OSXSAVE and XCR0 = x87|SSE|AVX.
        g.Vcpu.SetCpuid([.. kvm.GetSupportedCpuid().Select(e => e.Function == 1 ? e with { Ecx = e.Ecx | (1u << 26) | (1u << 28) } : e)]);
        var s = g.Vcpu.GetSregs();
        s.cr4 |= CR4_OSXSAVE;
        g.Vcpu.SetSregs(s);
        g.Vcpu.SetXcr0(7);
        RunAndCompare(ctx, g, In, Out, steps);
    }
}
