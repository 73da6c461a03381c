// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// RDTSCP, RDPID and the guest's TSC_AUX (MSR 0xC0000103): a 64-bit guest runs RDPID, RDMSR and WRMSR of TSC_AUX,
/// RDTSC and RDTSCP with a TSC_AUX the host set through KVM_SET_MSRS, under a CPUID table without and with the
/// RDTSCP (0x80000001 EDX bit 27) and RDPID (7.0 ECX bit 22) bits. Upstream (x86.c __kvm_get_msr/__kvm_set_msr
/// MSR_TSC_AUX, svm.c svm_recalc_instruction_intercepts, emulate.c em_rdpid) gates all three on the guest's CPUID;
/// kvm_pvm never offers them (<see cref="HostDeviations.KvmPvmWithoutTscAuxInstructions"/>).
/// </summary>
public static class TscAuxInstructions
{
    private const int UD = 6, GP = 13;
    private const uint Rdtscp = 1u << 27, Rdpid = 1u << 22;
    private const ulong Sentinel = 0x5a5a;

    /// <summary>TSC_AUX as the host sets it before the run: bits 63:32 set, which an AMD-vendor table drops.</summary>
    private const ulong HostAux = 0x1_1234_5678;

    /// <summary>What the guest writes with WRMSR (EDX = 1, EAX = 0xabcd): 0xabcd for an AMD-vendor table.</summary>
    private const ulong GuestAux = 0x1_0000_abcd;

    /// <summary>#UD resumes 4 bytes on (RDPID; RDTSCP is followed by a NOP), #GP 2 (RDMSR/WRMSR); the others halt.</summary>
    private static IdtVector[] Vectors =>
        [.. Enumerable.Range(0, 32).Select(v => v switch { UD => new IdtVector(v, ResumeSkip: 4), GP => new IdtVector(v, ResumeSkip: 2), _ => new IdtVector(v) })];

    /// <summary>
    /// The guest: R8 = RDPID (RBX, from <see cref="Sentinel"/>); R9 = RDMSR TSC_AUX (RAX, from the sentinel); WRMSR
    /// TSC_AUX = <see cref="GuestAux"/>; R10 = RDTSC; R11 = RDTSCP's EDX:EAX, R12 its RCX (from the sentinel); HLT.
    /// </summary>
    private static void Program(Assembler a)
    {
        a.mov(rbx, Sentinel);
        a.rdpid(rbx);
        a.mov(r8, rbx);
        a.mov(ecx, unchecked((int)X86Msr.TscAux));
        a.mov(eax, (int)Sentinel);
        a.rdmsr();
        a.mov(r9, rax);
        a.mov(eax, (int)(GuestAux & 0xffff_ffff));
        a.mov(edx, (int)(GuestAux >> 32));
        a.wrmsr();
        a.rdtsc();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.mov(r10, rax);
        a.mov(ecx, (int)Sentinel);
        a.rdtscp();
        a.nop();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.mov(r11, rax);
        a.mov(r12, rcx);
        a.hlt();
    }

    /// <summary>The kernel's supported table with RDTSCP and RDPID set as asked (AMD vendor, so TSC_AUX keeps 32 bits).</summary>
    private static CpuidEntry[] Table(Kvm kvm, bool offer) =>
    [
        .. kvm.GetSupportedCpuid().Select(e => e.Function switch
        {
            0x8000_0001 => e with { Edx = offer ? e.Edx | Rdtscp : e.Edx & ~Rdtscp },
            7 when e.Index == 0 => e with { Ecx = offer ? e.Ecx | Rdpid : e.Ecx & ~Rdpid },
            _ => e,
        }),
    ];

    /// <summary>Whether the guest's code at <paramref name="rip"/> starts with <paramref name="bytes"/>.</summary>
    private static bool At(IdtGuest g, ulong rip, byte[] bytes)
    {
        var code = new byte[bytes.Length];
        g.Guest.Memory.Read(rip, code);
        return code.AsSpan().SequenceEqual(bytes);
    }

    private static readonly byte[] RdpidBytes = [0xF3, 0x0F, 0xC7], RdmsrBytes = [0x0F, 0x32], WrmsrBytes = [0x0F, 0x30],
        RdtscpBytes = [0x0F, 0x01, 0xF9];

    [ConformanceCase("x86.c __kvm_get_msr/__kvm_set_msr MSR_TSC_AUX, svm.c svm_recalc_instruction_intercepts (INTERCEPT_RDTSCP → kvm_handle_invalid_op), emulate.c em_rdpid: without the CPUID bits RDPID and RDTSCP are #UD and guest TSC_AUX access #GP(0); the host still sets and reads TSC_AUX")]
    public static void rdtscp_rdpid_and_tsc_aux_need_cpuid(CaseContext ctx)
    {
        bool pvm = HostDeviations.KvmPvmWithoutTscAuxInstructions(ctx.Target.IsReal);
        using var kvm = ctx.OpenKvm();
        foreach (bool withTable in new[] { false, true })
        {
            using var g = IdtGuest.Create(kvm, Program, Vectors);
            if (withTable) g.Vcpu.SetCpuid(Table(kvm, offer: false));
            // Without a table the vCPU is Intel-compatible: bits 63:32 are refused; with the AMD table they are dropped.
            Span<MsrEntry> set = [new(X86Msr.TscAux, HostAux)];
            Assert.Equal(withTable ? 1 : 0, g.Vcpu.SetMsrs(set));
            if (!withTable) g.Vcpu.SetMsr(X86Msr.TscAux, HostAux & 0xffff_ffff);
            Assert.Equal(HostAux & 0xffff_ffff, g.Vcpu.GetMsr(X86Msr.TscAux));
            string what = withTable ? "supported table without the bits" : "no CPUID table";

            var exit = g.Vcpu.Run().Reason;
            var d = g.Deliveries;
            var r = g.Vcpu.GetRegs();
            // RDPID #UD (SVM cannot intercept a native RDPID: an upstream kernel on hardware with RDPID lets it run
            // whatever CPUID says, so only the emulator and kvm_pvm, which both refuse it, are checked).
            bool checkRdpid = !ctx.Target.IsReal || pvm;
            if (checkRdpid)
            {
                Assert.True(d.Count >= 1 && d[0].Vector == UD && At(g, d[0].Rip, RdpidBytes), $"{what}: RDPID #UD: {string.Join("; ", d)}");
                Assert.Equal(Sentinel, r.r8);
            }
            var rest = d.Where(x => !At(g, x.Rip, RdpidBytes)).ToList();
            Assert.True(rest.Count >= 2, $"{what}: {string.Join("; ", d)}");
            Assert.Equal((GP, (ulong?)0), ((int)rest[0].Vector, rest[0].ErrorCode));
            Assert.True(At(g, rest[0].Rip, RdmsrBytes), "RdmsrBytes at 0x" + (rest[0].Rip).ToString("X"));
            Assert.Equal((GP, (ulong?)0), ((int)rest[1].Vector, rest[1].ErrorCode));
            Assert.True(At(g, rest[1].Rip, WrmsrBytes), "WrmsrBytes at 0x" + (rest[1].Rip).ToString("X"));
            Assert.Equal(Sentinel, r.r9); // RDMSR faulted: RAX unchanged
            if (pvm)
            {
                // RDTSCP ends the run in KVM's instruction emulator, RIP on it, no exception, RCX unchanged.
                Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit);
                Assert.True(At(g, r.rip, RdtscpBytes), "RdtscpBytes at 0x" + (r.rip).ToString("X"));
                Assert.Equal(2, rest.Count);
                Assert.Equal(Sentinel, r.rcx);
            }
            else
            {
                Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
                Assert.Equal(3, rest.Count);
                Assert.Equal(UD, (int)rest[2].Vector);
                Assert.True(At(g, rest[2].Rip, RdtscpBytes), "RdtscpBytes at 0x" + (rest[2].Rip).ToString("X"));
                Assert.Equal(Sentinel, r.r12);
            }
            // The guest's WRMSR changed nothing.
            Assert.Equal(HostAux & 0xffff_ffff, g.Vcpu.GetMsr(X86Msr.TscAux));
        }
    }

    [ConformanceCase("svm.c (RDTSCP not intercepted with guest CPUID RDTSCP), emulate.c em_rdpid, x86.c __kvm_set_msr MSR_TSC_AUX \"data = (u32)data\": with the CPUID bits RDPID and RDTSCP's ECX read TSC_AUX, the guest reads and writes it (kvm_pvm: still refused, RDTSCP an internal error)")]
    public static void rdtscp_rdpid_and_tsc_aux_with_cpuid(CaseContext ctx)
    {
        bool pvm = HostDeviations.KvmPvmWithoutTscAuxInstructions(ctx.Target.IsReal);
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, Program, Vectors);
        g.Vcpu.SetCpuid(Table(kvm, offer: true));
        // Host-initiated: AMD-compatible guest, so bits 63:32 are dropped, not refused.
        g.Vcpu.SetMsr(X86Msr.TscAux, HostAux);
        Assert.Equal(HostAux & 0xffff_ffff, g.Vcpu.GetMsr(X86Msr.TscAux));

        var exit = g.Vcpu.Run().Reason;
        var d = g.Deliveries;
        var r = g.Vcpu.GetRegs();
        if (pvm)
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit);
            Assert.True(At(g, r.rip, RdtscpBytes), "RdtscpBytes at 0x" + (r.rip).ToString("X"));
            Assert.True(d.Count == 3, string.Join("; ", d));
            Assert.Equal(UD, (int)d[0].Vector);
            Assert.True(At(g, d[0].Rip, RdpidBytes), "RdpidBytes at 0x" + (d[0].Rip).ToString("X"));
            Assert.Equal(GP, (int)d[1].Vector);
            Assert.True(At(g, d[1].Rip, RdmsrBytes), "RdmsrBytes at 0x" + (d[1].Rip).ToString("X"));
            Assert.Equal(GP, (int)d[2].Vector);
            Assert.True(At(g, d[2].Rip, WrmsrBytes), "WrmsrBytes at 0x" + (d[2].Rip).ToString("X"));
            Assert.Equal(HostAux & 0xffff_ffff, g.Vcpu.GetMsr(X86Msr.TscAux));
            return;
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit);
        Assert.True(d.Count == 0, string.Join("; ", d));
        Assert.Equal(HostAux & 0xffff_ffff, r.r8); // RDPID
        Assert.Equal(HostAux & 0xffff_ffff, r.r9); // RDMSR
        Assert.Equal(GuestAux & 0xffff_ffff, r.r12); // RDTSCP's ECX after the guest's WRMSR (bits 63:32 dropped)
        Assert.True(r.r11 >= r.r10, $"RDTSCP {r.r11:X} before RDTSC {r.r10:X}");
        Assert.Equal(GuestAux & 0xffff_ffff, g.Vcpu.GetMsr(X86Msr.TscAux));
    }
}
