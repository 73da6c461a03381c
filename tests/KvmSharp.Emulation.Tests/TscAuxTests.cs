// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation.X86;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The interpreter's RDTSCP and RDPID and the guest's TSC_AUX beyond the conformance cases (KvmSharp.Conformance
/// TscAuxInstructions, which run on both kernels; kvm_pvm offers neither instruction): each is gated on its own CPUID
/// bit (RDTSCP: 0x80000001 EDX bit 27, svm.c INTERCEPT_RDTSCP; RDPID: 7.0 ECX bit 22, emulate.c em_rdpid), either bit
/// opens guest RDMSR/WRMSR of TSC_AUX (x86.c __kvm_get_msr/__kvm_set_msr), RDPID writes the whole 64-bit register,
/// and an Intel-compatible guest's WRMSR with bits 63:32 is #GP. On both emulated CPU models.
/// </summary>
public sealed class TscAuxTests
{
    private const uint TscAux = 0xC000_0103;
    private const int UD = 6, GP = 13;

    public static TheoryData<string> Models => new() { nameof(X86CpuModel.EpycMilan), nameof(X86CpuModel.EpycGenoa) };

    private static EmulatedKernel Kernel(string model) =>
        new(EmulatorConfig.LikeThisHost() with { X86Cpu = model == nameof(X86CpuModel.EpycMilan) ? X86CpuModel.EpycMilan : X86CpuModel.EpycGenoa });

    /// <summary>Every exception halts; its vector is then the only delivery.</summary>
    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    /// <summary>
    /// Runs <paramref name="program"/> (then HLT) with the kernel's supported CPUID plus the bits asked for (none
    /// without <paramref name="vendor"/>: leaf 0 dropped, so the guest is Intel-compatible) and TSC_AUX =
    /// <paramref name="aux"/>; returns the registers, the vector of the exception that stopped it (-1: none) and TSC_AUX.
    /// </summary>
    private static (kvm_regs Regs, int Vector, ulong Aux) Run(string model, Action<Assembler> program, bool rdtscp, bool rdpid,
        ulong aux = 0x42, bool vendor = true, ulong cr4Set = 0)
    {
        using var k = Kernel(model);
        using var kvm = Kvm.Open(k);
        using var g = IdtGuest.Create(kvm, a => { program(a); a.hlt(); }, Halting);
        var table = kvm.GetSupportedCpuid()
            .Where(e => vendor || e.Function != 0)
            .Select(e => e.Function switch
            {
                0x8000_0001 => e with { Edx = rdtscp ? e.Edx | (1u << 27) : e.Edx & ~(1u << 27) },
                7 when e.Index == 0 => e with { Ecx = rdpid ? e.Ecx | (1u << 22) : e.Ecx & ~(1u << 22) },
                _ => e,
            }).ToArray();
        g.Vcpu.SetCpuid(table);
        g.Vcpu.SetMsr(TscAux, aux);
        if (cr4Set != 0)
        {
            var s = g.Vcpu.GetSregs();
            s.cr4 |= cr4Set;
            g.Vcpu.SetSregs(s);
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        var d = g.Deliveries;
        Assert.True(d.Count <= 1, string.Join("; ", d));
        return (g.Vcpu.GetRegs(), d.Count == 0 ? -1 : (int)d[0].Vector, g.Vcpu.GetMsr(TscAux));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Rdtscp_needs_its_own_bit_and_returns_the_tsc_and_tsc_aux(string model)
    {
        static void Program(Assembler a)
        {
            a.mov(rax, -1L);
            a.mov(rdx, -1L);
            a.mov(rcx, -1L);
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(r10, rax);
            a.mov(rax, -1L);
            a.mov(rdx, -1L);
            a.rdtscp();
            a.mov(r8, rax);
            a.mov(r9, rdx);
        }
        var (r, vector, _) = Run(model, Program, rdtscp: true, rdpid: false, aux: 0x8765_4321);
        Assert.Equal(-1, vector);
        Assert.Equal(0x8765_4321UL, r.rcx); // ECX = TSC_AUX, upper half cleared
        Assert.Equal(0UL, r.r8 >> 32); // EAX and EDX zero-extended
        Assert.Equal(0UL, r.r9 >> 32);
        Assert.True(((r.r9 << 32) | r.r8) >= r.r10, "RDTSCP read a TSC below the RDTSC before it");
        // RDPID's bit alone does not offer RDTSCP; RCX is left as it was.
        var (r2, v2, _) = Run(model, Program, rdtscp: false, rdpid: true);
        Assert.Equal(UD, v2);
        Assert.Equal(ulong.MaxValue, r2.rcx);
        // CR4.TSD makes RDTSCP privileged; at CPL 0 it still runs.
        Assert.Equal(-1, Run(model, Program, rdtscp: true, rdpid: false, cr4Set: 1 << 2).Vector);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Rdpid_needs_its_own_bit_and_writes_the_whole_register(string model)
    {
        static void Program(Assembler a)
        {
            a.mov(rax, -1L);
            a.mov(r13, -1L);
            a.rdpid(rax);
            a.rdpid(r13);
        }
        var (r, vector, _) = Run(model, Program, rdtscp: false, rdpid: true, aux: 0xfedc_ba98);
        Assert.Equal(-1, vector);
        Assert.Equal(0xfedc_ba98UL, r.rax);
        Assert.Equal(0xfedc_ba98UL, r.r13);
        var (r2, v2, _) = Run(model, Program, rdtscp: true, rdpid: false);
        Assert.Equal(UD, v2);
        Assert.Equal(ulong.MaxValue, r2.r13); // the first RDPID faulted (the halting handler uses RAX itself)
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Either_bit_opens_guest_tsc_aux_and_an_amd_guest_drops_bits_63_32(string model)
    {
        static void Program(Assembler a)
        {
            a.mov(ecx, unchecked((int)TscAux));
            a.mov(eax, 0x1357);
            a.mov(edx, 0x2);
            a.wrmsr();
            a.mov(rax, -1L);
            a.mov(rdx, -1L);
            a.rdmsr();
        }
        foreach (var (rdtscp, rdpid) in new[] { (true, false), (false, true), (true, true) })
        {
            var (r, vector, aux) = Run(model, Program, rdtscp, rdpid);
            Assert.Equal(-1, vector);
            Assert.Equal((0x1357UL, 0UL, 0x1357UL), (r.rax, r.rdx, aux));
        }
        // Neither bit: the WRMSR is #GP(0) and TSC_AUX keeps the host's value.
        var (_, none, kept) = Run(model, Program, rdtscp: false, rdpid: false);
        Assert.Equal((GP, 0x42UL), (none, kept));
        // An Intel-compatible guest (no vendor leaf) with the bit: bits 63:32 are reserved, the WRMSR is #GP(0).
        var (_, intel, keptIntel) = Run(model, Program, rdtscp: true, rdpid: true, vendor: false);
        Assert.Equal((GP, 0x42UL), (intel, keptIntel));
    }
}
