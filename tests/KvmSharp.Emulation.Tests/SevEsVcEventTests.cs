// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The instruction #VC events of a protected SEV-ES vCPU besides IOIO/CPUID/MSR/VMMCALL/MMIO (emulator only: this host
/// has no SEV): RDPMC, INVD, WBINVD/WBNOINVD, MONITOR(X), MWAIT(X), RDTSCP without its CPUID bit and MOV to/from DR7
/// raise #VC with their SVM exit code (the intercepts svm.c init_vmcb / sev_es_init_vmcb set); RDTSC, RDTSCP with the
/// bit and MOV DR0–DR6 run without one. The guest's #VC handler forwards each event through the GHCB page as
/// arch/x86/coco/sev/vc-handle.c does, and KVM answers as sev_handle_vmgexit → svm_invoke_exit_handler
/// (src/KvmSharp.Emulation/X86/Emulate/X86Emulator.GhcbEvents.cs).
/// </summary>
public sealed class SevEsVcEventTests
{
    private const ulong GhcbLinear = SevEsGuest.SharedAlias + SevEsGuest.Ghcb;
    private const ulong ReportLinear = SevEsGuest.SharedAlias + SevEsGuest.Report;

    // struct ghcb offsets (arch/x86/include/asm/svm.h); a field's valid bit is offset / 8.
    private const int Rax = 0x1f8, Rcx = 0x308, Rdx = 0x310, SwExitCode = 0x390, Info1 = 0x398, Info2 = 0x3a0, Valid = 0x3f0;

    /// <summary>Valid bits of RAX, RCX and RDX (bits 63, 97, 98 of the bitmap).</summary>
    private static readonly UInt128 RaxRcxRdx = Bits(Rax, Rcx, Rdx);

    /// <summary>Valid bits of sw_exit_code, sw_exit_info_1 and _2 (bits 114..116: the bitmap's second qword).</summary>
    private const ulong ExitFields = (1UL << (SwExitCode / 8 - 64)) | (1UL << (Info1 / 8 - 64)) | (1UL << (Info2 / 8 - 64));

    /// <summary>Where the #GP/#UD handler (<see cref="FaultHandler"/>) reports: vector, then the two stack qwords above it.</summary>
    private const int FaultReport = 96;

    private const byte VcDone = 1, FaultTaken = 0x77;

    private static readonly byte[] Invd = [0x0F, 0x08], Wbinvd = [0x0F, 0x09], Wbnoinvd = [0xF3, 0x0F, 0x09], Rdpmc = [0x0F, 0x33];
    private static readonly byte[] Monitor = [0x0F, 0x01, 0xC8], Mwait = [0x0F, 0x01, 0xC9], Monitorx = [0x0F, 0x01, 0xFA];
    private static readonly byte[] Mwaitx = [0x0F, 0x01, 0xFB], Rdtscp = [0x0F, 0x01, 0xF9];
    private static readonly byte[] MovDr7FromRax = [0x0F, 0x23, 0xF8], MovRaxFromDr7 = [0x0F, 0x21, 0xF8];

    /// <summary>
    /// The #VC handler: records (in report slot R13 / 64, qwords 5..7) the error code, the faulting RIP and R15 (the
    /// RIP the program expects), copies RAX/RCX/RDX into the GHCB with the valid bitmap R12 (low qword) and R11 (high
    /// qword, plus the exit fields),
    /// sw_exit_code = the error code, sw_exit_info_1/2 = 0, VMGEXIT; then records sw_exit_info_1/2 and the RAX/RCX/RDX
    /// the GHCB gives back (qwords 0..4), skips R14 bytes and returns.
    /// </summary>
    /// <summary>The valid bitmap (128 bits) with the bits of the fields at <paramref name="offsets"/> (offset / 8).</summary>
    private static UInt128 Bits(params int[] offsets) => offsets.Aggregate(UInt128.Zero, (v, o) => v | (UInt128.One << (o / 8)));

    private static void ForwardingVcHandler(Assembler a)
    {
        a.mov(r8, __qword_ptr[rsp]);
        a.mov(r9, (long)ReportLinear);
        a.add(r9, r13);
        a.mov(__qword_ptr[r9 + 40], r8);
        a.mov(r10, __qword_ptr[rsp + 8]);
        a.mov(__qword_ptr[r9 + 48], r10);
        a.mov(__qword_ptr[r9 + 56], r15);
        a.mov(rbx, (long)GhcbLinear);
        a.mov(__qword_ptr[rbx + Rax], rax);
        a.mov(__qword_ptr[rbx + Rcx], rcx);
        a.mov(__qword_ptr[rbx + Rdx], rdx);
        a.mov(__qword_ptr[rbx + SwExitCode], r8);
        a.xor(eax, eax);
        a.mov(__qword_ptr[rbx + Info1], rax);
        a.mov(__qword_ptr[rbx + Info2], rax);
        a.mov(__qword_ptr[rbx + Valid], r12);
        a.mov(rax, ExitFields);
        a.or(rax, r11);
        a.mov(__qword_ptr[rbx + Valid + 8], rax);
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb);
        SevEsGuest.Vmgexit(a);
        a.mov(rbx, (long)GhcbLinear);
        foreach (var (from, to) in new[] { (Info1, 0), (Info2, 8), (Rax, 16), (Rcx, 24), (Rdx, 32) })
        {
            a.mov(rax, __qword_ptr[rbx + from]);
            a.mov(__qword_ptr[r9 + to], rax);
        }
        a.add(__qword_ptr[rsp + 8], r14);
        a.add(rsp, 8);
        a.iretq();
    }

    /// <summary>
    /// At <see cref="SevEsGuest.ApCode"/>: the #GP entry (push 13) and at +4 the #UD entry (push 6), then one body that
    /// stores the vector and the two stack qwords above it at report[<see cref="FaultReport"/>..] and terminates with
    /// <see cref="FaultTaken"/>.
    /// </summary>
    private static void FaultHandler(Assembler a)
    {
        a.db(0x6A, 13, 0xEB, 0x02, 0x6A, 6); // push 13; jmp +2; push 6
        a.mov(rbx, (long)ReportLinear);
        for (int q = 0; q < 3; q++)
        {
            a.mov(rax, __qword_ptr[rsp + 8 * q]);
            a.mov(__qword_ptr[rbx + 8 * (FaultReport + q)], rax);
        }
        SevEsGuest.Terminate(a, FaultTaken);
    }

    /// <summary>IDT vectors 13 (#GP) and 6 (#UD) → <see cref="FaultHandler"/>'s entries.</summary>
    private static void AddFaultGates(byte[] image)
    {
        static ulong Gate(ulong target) => (target & 0xffff) | ((ulong)Gdt.CodeSelector << 16) | (0xEUL << 40) | (1UL << 47)
            | (((target >> 16) & 0xffff) << 48);
        BitConverter.TryWriteBytes(image.AsSpan((int)(SevEsGuest.Idt + 13 * 16), 8), Gate(SevEsGuest.ApCode));
        BitConverter.TryWriteBytes(image.AsSpan((int)(SevEsGuest.Idt + 6 * 16), 8), Gate(SevEsGuest.ApCode + 4));
    }

    private static SevEsGuest Create(Action<Assembler> program) =>
        SevEsGuest.Create(VmType.SevEs, program, ForwardingVcHandler, apProgram: FaultHandler, patchImage: AddFaultGates);

    /// <summary>
    /// Runs <paramref name="instruction"/> with RAX/RCX/RDX = <paramref name="regs"/>, the #VC handler reporting in
    /// slot <paramref name="slot"/> and sending the valid bits <paramref name="valid"/>.
    /// </summary>
    private static void Intercepted(Assembler a, int slot, byte[] instruction, UInt128 valid, (ulong Rax, ulong Rcx, ulong Rdx) regs = default)
    {
        var at = a.CreateLabel();
        a.mov(r12, (ulong)valid);
        a.mov(r11, (ulong)(valid >> 64));
        a.mov(r13, slot * 64);
        a.mov(r14, instruction.Length);
        a.lea(r15, __[at]);
        a.mov(rax, regs.Rax);
        a.mov(rcx, regs.Rcx);
        a.mov(rdx, regs.Rdx);
        a.Label(ref at);
        a.db(instruction);
    }

    private static void AssertTerminated(SevEsGuest g, byte code)
    {
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal(KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM, exit.SystemEventType);
        Assert.Equal(0x100 | (1UL << 12) | ((ulong)code << 16), exit.SystemEventData[0]);
    }

    /// <summary>Report slot <paramref name="slot"/>'s qword <paramref name="q"/>.</summary>
    private static ulong Slot(SevEsGuest g, int slot, int q) => g.ReportQword(slot * 8 + q);

    /// <summary>The #VC error code, and that the faulting RIP is the instruction's (RIP stays on it: a fault).</summary>
    private static void AssertVc(SevEsGuest g, int slot, ulong exitCode)
    {
        Assert.Equal(exitCode, Slot(g, slot, 5));
        Assert.NotEqual(0UL, Slot(g, slot, 7));
        Assert.Equal(Slot(g, slot, 7), Slot(g, slot, 6));
    }

    /// <summary>The exception the fault handler took was delivered with RIP just after the #VC handler's VMGEXIT.</summary>
    private static void AssertDeliveredAfterVmgexit(SevEsGuest g, ulong rip)
    {
        Assert.InRange(rip, SevEsGuest.VcHandler + 4, SevEsGuest.VcHandler + 0x1000);
        byte[] before = [.. Enumerable.Range(0, 4).Select(k => g.Memory.Read<byte>(rip - 4 + (ulong)k))];
        Assert.Equal(new byte[] { 0xF3, 0x0F, 0x01, 0xD9 }, before);
    }

    [Fact]
    public void Intercepted_instructions_raise_vc_with_their_exit_code_and_kvm_answers_each_without_action()
    {
        (byte[] Insn, ulong Code)[] cases =
        [
            (Invd, 0x76), (Wbinvd, 0x89), (Wbnoinvd, 0x89), (Monitor, 0x8a), (Mwait, 0x8b), (Monitorx, 0x8a),
            (Mwaitx, 0x8b), (MovDr7FromRax, 0x37), (MovRaxFromDr7, 0x27),
        ];
        using var g = Create(a =>
        {
            for (int s = 0; s < cases.Length; s++) Intercepted(a, s, cases[s].Insn, RaxRcxRdx, (0x401UL + (ulong)s, 0, 0x55));
            SevEsGuest.Terminate(a, VcDone);
        });
        AssertTerminated(g, VcDone);
        for (int s = 0; s < cases.Length; s++)
        {
            AssertVc(g, s, cases[s].Code);
            // svm_vmgexit_success(svm, 0): sw_exit_info_1 = 0 (no action), sw_exit_info_2 = 0.
            Assert.Equal((0UL, 0UL), (Slot(g, s, 0), Slot(g, s, 1)));
            // The handlers write no register (dr_interception returns at once for SEV-ES; INVD/WBINVD/MONITOR/MWAIT are
            // NOPs): sev_es_sync_to_ghcb gives back what the guest sent, so a DR7 write/read round-trips RAX unchanged.
            Assert.Equal((0x401UL + (ulong)s, 0UL, 0x55UL), (Slot(g, s, 2), Slot(g, s, 3), Slot(g, s, 4)));
        }
    }

    [Fact]
    public void Events_without_their_required_valid_bits_get_malformed_input_missing_input()
    {
        (byte[] Insn, ulong Code, bool Missing)[] cases =
        [
            (Rdpmc, 0x6f, true), (MovDr7FromRax, 0x37, true), (Monitor, 0x8a, true), (Mwait, 0x8b, true),
            (Wbinvd, 0x89, false), (Invd, 0x76, false), (MovRaxFromDr7, 0x27, false),
        ];
        using var g = Create(a =>
        {
            // Only the exit fields valid: sev_es_validate_vmgexit wants RCX for RDPMC, RAX for a DR7 write, RAX/RCX/RDX
            // for MONITOR, RAX/RCX for MWAIT, nothing for WBINVD, INVD and a DR7 read.
            for (int s = 0; s < cases.Length; s++) Intercepted(a, s, cases[s].Insn, valid: UInt128.Zero, (0x1234, 0, 0));
            // MWAIT with RAX and RCX but not RDX is complete; MONITOR with RAX and RCX is not.
            Intercepted(a, cases.Length, Mwait, Bits(Rax, Rcx));
            Intercepted(a, cases.Length + 1, Monitor, Bits(Rax, Rcx));
            SevEsGuest.Terminate(a, VcDone);
        });
        AssertTerminated(g, VcDone);
        for (int s = 0; s < cases.Length; s++)
        {
            AssertVc(g, s, cases[s].Code);
            // svm_vmgexit_bad_input(svm, GHCB_ERR_MISSING_INPUT): sw_exit_info_1 = 2, sw_exit_info_2 = 4.
            Assert.Equal(cases[s].Missing ? (2UL, 4UL) : (0UL, 0UL), (Slot(g, s, 0), Slot(g, s, 1)));
            // sev_es_sync_from_ghcb zeroes a register without its valid bit; the GHCB gets KVM's copy back.
            Assert.Equal(0UL, Slot(g, s, 2));
        }
        Assert.Equal((0UL, 0UL), (Slot(g, cases.Length, 0), Slot(g, cases.Length, 1)));
        Assert.Equal((2UL, 4UL), (Slot(g, cases.Length + 1, 0), Slot(g, cases.Length + 1, 1)));
    }

    [Fact]
    public void Rdpmc_through_the_ghcb_injects_gp_zero_after_the_vmgexit_without_a_vpmu()
    {
        using var g = Create(a =>
        {
            Intercepted(a, 0, Rdpmc, RaxRcxRdx, (0, 0, 0));
            SevEsGuest.Terminate(a, VcDone);
        });
        AssertTerminated(g, FaultTaken);
        AssertVc(g, 0, 0x6f);
        // kvm_emulate_rdpmc: kvm_pmu_rdpmc fails (no vPMU: pmu->version 0) → kvm_inject_gp(vcpu, 0).
        Assert.Equal((13UL, 0UL), (g.ReportQword(FaultReport), g.ReportQword(FaultReport + 1)));
        AssertDeliveredAfterVmgexit(g, g.ReportQword(FaultReport + 2));
        // The #GP came after the VMGEXIT, before the handler read its answer back.
        Assert.Equal(0UL, Slot(g, 0, 0) | Slot(g, 0, 1));
    }

    [Fact]
    public void Rdtscp_without_its_cpuid_bit_raises_vc_and_kvm_answers_ud()
    {
        using var g = Create(a =>
        {
            Intercepted(a, 0, Rdtscp, RaxRcxRdx);
            SevEsGuest.Terminate(a, VcDone);
        });
        AssertTerminated(g, FaultTaken);
        AssertVc(g, 0, 0x87);
        // svm_exit_handlers[SVM_EXIT_RDTSCP] = kvm_handle_invalid_op: #UD (no error code: the RIP is the next qword).
        Assert.Equal(6UL, g.ReportQword(FaultReport));
        AssertDeliveredAfterVmgexit(g, g.ReportQword(FaultReport + 1));
    }

    [Fact]
    public void Monitor_and_mwait_are_ud_once_the_never_ud_quirk_is_off_and_cpuid_lacks_monitor()
    {
        using var g = Create(a =>
        {
            Intercepted(a, 0, Mwait, RaxRcxRdx);
            SevEsGuest.Terminate(a, VcDone);
        });
        g.Vm.DisableQuirks(X86Quirks.MwaitNeverUdFaults);
        AssertTerminated(g, FaultTaken);
        AssertVc(g, 0, 0x8b);
        // kvm_emulate_monitor_mwait: quirk off, MISC_ENABLE_NO_MWAIT on → guest CPUID.1:ECX.MONITOR (absent) → #UD.
        Assert.Equal(6UL, g.ReportQword(FaultReport));
        AssertDeliveredAfterVmgexit(g, g.ReportQword(FaultReport + 1));
    }

    [Fact]
    public void Rdtsc_rdtscp_with_its_cpuid_bit_and_other_debug_registers_run_without_vc()
    {
        using var g = Create(a =>
        {
            a.mov(rbx, (long)ReportLinear);
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(__qword_ptr[rbx], rax);
            a.db(Rdtscp);
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(__qword_ptr[rbx + 8], rax);
            a.mov(__qword_ptr[rbx + 16], rcx);
            a.mov(rax, 0x1234_5678UL);
            a.mov(dr0, rax);
            a.mov(rcx, dr0);
            a.mov(__qword_ptr[rbx + 24], rcx);
            SevEsGuest.Terminate(a, VcDone);
        });
        // CPUID 0x80000001 EDX.RDTSCP[27]: svm_recalc_instruction_intercepts clears INTERCEPT_RDTSCP.
        g.Vcpu.SetCpuid([.. SevEsGuest.CpuidTable, new CpuidEntry(0x8000_0001, 0, 0, 0, 0, 0, 1u << 27)]);
        AssertTerminated(g, VcDone);
        // The #VC handler never ran (it would have recorded an error code in slot 0's qword 5).
        Assert.Equal(0UL, Slot(g, 0, 5));
        ulong t1 = g.ReportQword(0), t2 = g.ReportQword(1);
        Assert.NotEqual(0UL, t1);
        Assert.True(t2 >= t1, $"TSC went back: 0x{t1:X} then 0x{t2:X}");
        // Natively read: the guest TSC (host TSC + the vCPU's offset), not ahead of KVM's view afterwards (IA32_TSC).
        ulong kvmTsc = g.Vcpu.GetMsr(0x10);
        Assert.True(kvmTsc >= t2, $"guest TSC 0x{t2:X} ahead of KVM's 0x{kvmTsc:X}");
        Assert.Equal(0UL, g.ReportQword(2)); // TSC_AUX, never written
        Assert.Equal(0x1234_5678UL, g.ReportQword(3));
    }

    [Fact]
    public void A_ghcb_rdtsc_request_is_an_unexpected_exit_reason_and_the_guest_resumes_after_it()
    {
        using var g = Create(a =>
        {
            a.mov(rbx, (long)ReportLinear);
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(__qword_ptr[rbx], rax);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(__qword_ptr[rbx + SwExitCode], 0x6e);
            a.mov(__qword_ptr[rbx + Info1], 0);
            a.mov(__qword_ptr[rbx + Info2], 0);
            a.mov(__qword_ptr[rbx + Valid], 0);
            a.mov(rax, ExitFields);
            a.mov(__qword_ptr[rbx + Valid + 8], rax);
            SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb);
            SevEsGuest.Vmgexit(a);
            a.mov(rbx, (long)GhcbLinear);
            a.mov(rax, __qword_ptr[rbx + Info1]);
            a.mov(rbx, (long)ReportLinear);
            a.mov(__qword_ptr[rbx + 8], rax);
            SevEsGuest.Terminate(a, VcDone);
        });
        // sev_es_validate_vmgexit accepts SVM_EXIT_RDTSC, but svm_exit_handlers has no entry for it:
        // kvm_prepare_unexpected_reason_exit (KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4).
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_INTERNAL_ERROR, $"exit {exit.ToString()}");
        Assert.Equal(4u, exit.InternalSuberror);
        Assert.NotEqual(0UL, g.ReportQword(0));
        // The next KVM_RUN unmaps the GHCB (svm_vmgexit_success was already set) and the guest goes on.
        AssertTerminated(g, VcDone);
        Assert.Equal(0UL, g.ReportQword(1));
    }
}
