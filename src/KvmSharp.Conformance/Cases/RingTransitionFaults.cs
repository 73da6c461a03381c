// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The fault paths of ring transitions in a 64-bit guest: SYSRET with a non-canonical RCX (Intel SDM Vol. 2B SYSRET;
/// AMD APM Vol. 3 SYSRET), IRETQ and far RET to an outer ring with a bad CS, SS or RIP (SDM Vol. 2A IRET and RET,
/// IA-32e "RETURN-TO-OUTER-PRIVILEGE-LEVEL"), INT n / INT3 / INTO at CPL 3 (SDM Vol. 2A INT n, Vol. 3A 6.12.1.1) and
/// exception delivery whose stack switch or handler segment fails (SDM Vol. 3A 6.14.4, 6.14.5). Each scenario is a
/// fresh <see cref="IdtGuest"/> whose halting handlers record the vector, error code and the pushed RIP/CS/SS.
/// </summary>
public static class RingTransitionFaults
{
    private const ushort UserData = 0x28 | 3, UserCode = 0x30 | 3, KernelCode = Gdt.CodeSelector, KernelData = Gdt.DataSelector;

    /// <summary>GDT entries 7–9: a ring-3 code and a ring-3 data segment, and a ring-0 code segment, each not present.</summary>
    private const ushort UserCodeAbsent = 0x38, UserDataAbsent = 0x40, KernelCodeAbsent = 0x48;

    private const uint MsrStar = 0xc000_0081;
    private const ulong EferSce = 1;
    private const ulong Star = (0x20UL << 48) | ((ulong)KernelCode << 32);

    /// <summary>The ring-3 stack top (a user page below it), TSS.RSP0 and the IST1 stack; a non-canonical address.</summary>
    private const ulong UserStackTop = 0x8_B000, Rsp0 = 0x2_0000, Ist1 = 0x1_8000, NonCanonical = 0x8000_0000_0000;

    private const ulong StartRsp = 0x27ff8; // LongModeGuest: Layout.StackTop - 8

    private static readonly int[] Halting = [3, 5, 6, 8, 11, 12, 13];

    /// <summary>What the guest did: the exit, the deliveries, the address of the faulting instruction and the ring-3 stack page.</summary>
    private readonly record struct Outcome(KvmExitReason Exit, IReadOnlyList<Delivery> Deliveries, ulong At, byte[] Memory, string Where);

    /// <summary>
    /// Runs <paramref name="body"/> at CPL 0, or at CPL 3 after an IRETQ to <see cref="UserCode"/> with RFLAGS 2 and
    /// RSP <see cref="UserStackTop"/>, then <paramref name="tail"/> after the final HLT. The instruction the scenario
    /// expects to fault is the last occurrence of <paramref name="pattern"/> in the code page.
    /// </summary>
    private static Outcome Run(Kvm kvm, bool ring3, Action<Assembler> body, byte[] pattern, Action<IdtGuest>? setup = null,
        Action<Assembler>? tail = null)
    {
        using var g = IdtGuest.Create(kvm, a =>
        {
            if (ring3) IdtGuest.IretqToRing3(a, UserCode, UserData, UserStackTop, rflags: 2);
            body(a);
            a.mov(al, 0);
            a.@out(0x10, al);
            a.hlt();
            tail?.Invoke(a);
        }, [.. Halting.Select(v => new IdtVector(v))]);
        Prepare(kvm, g);
        setup?.Invoke(g);
        var exit = g.Vcpu.Run();
        var code = new byte[0x1000];
        g.Guest.Memory.Read(LongModeGuest.CodeGpa, code);
        int at = code.AsSpan().LastIndexOf(pattern);
        Assert.True(at >= 0, "pattern not found in the guest code");
        var regs = g.Vcpu.GetRegs();
        var stack = new byte[0x1000];
        g.Guest.Memory.Read(UserStackTop - 0x1000, stack);
        return new Outcome(exit.Reason, g.Deliveries, LongModeGuest.CodeGpa + (ulong)at, stack,
            $"{exit.ToString()} at RIP 0x{regs.rip:X}, deliveries: {string.Join("; ", g.Deliveries)}");
    }

    /// <summary>
    /// Ring 3 as PrivilegeTransitions has it (GDT 5/6 = ring-3 data/code, TSS.RSP0, U/S on the code and the ring-3
    /// stack page), plus the not-present GDT entries 7–9, TSS.IST1, EFER.SCE and STAR.
    /// </summary>
    private static void Prepare(Kvm kvm, IdtGuest g)
    {
        var (code, data) = g.PrepareRing3(UserCode, UserData, Rsp0, UserStackTop - 0x1000);
        var mem = g.Guest.Memory;
        var kernelCode = Gdt.Code;
        (code.present, data.present, kernelCode.present) = (0, 0, 0);
        mem.Write(Layout.Gdt + UserCodeAbsent, Gdt.Encode(code));
        mem.Write(Layout.Gdt + UserDataAbsent, Gdt.Encode(data));
        mem.Write(Layout.Gdt + KernelCodeAbsent, Gdt.Encode(kernelCode));
        mem.Write(Layout.Tss + 0x24, Ist1);
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        var sregs = g.Vcpu.GetSregs();
        sregs.gdt.limit = KernelCodeAbsent + 7;
        sregs.efer |= EferSce;
        g.Vcpu.SetSregs(sregs);
        g.Vcpu.SetMsr(MsrStar, Star);
    }

    /// <summary>Pushes a 64-bit value (RAX is scratch).</summary>
    private static void Push64(Assembler a, ulong value)
    {
        a.mov(rax, unchecked((long)value));
        a.push(rax);
    }

    /// <summary>IRETQ with the frame RIP, CS, RFLAGS 2, RSP <see cref="UserStackTop"/>, SS.</summary>
    private static void Iretq(Assembler a, ulong rip, ushort cs, ushort ss)
    {
        Push64(a, ss);
        Push64(a, UserStackTop);
        Push64(a, 2);
        Push64(a, cs);
        Push64(a, rip);
        a.iretq();
    }

    /// <summary>REX.W far RET (48 CB) with the frame RIP, CS and, below them, RSP <see cref="UserStackTop"/>, SS.</summary>
    private static void Retfq(Assembler a, ulong rip, ushort cs, ushort ss)
    {
        Push64(a, ss);
        Push64(a, UserStackTop);
        Push64(a, cs);
        Push64(a, rip);
        a.db(0x48, 0xcb);
    }

    private static readonly byte[] IretqBytes = [0x48, 0xcf], RetfqBytes = [0x48, 0xcb];

    /// <summary>
    /// The one delivery of a fault at CPL 0: vector, error code (<see cref="ulong.MaxValue"/>: none), RIP on the
    /// instruction, CS 0x08, SS 0x10.
    /// </summary>
    private static void AssertKernelFault(Outcome o, string name, ulong vector, ulong error)
    {
        Assert.True(o.Exit == KvmExitReason.KVM_EXIT_HLT && o.Deliveries.Count == 1, $"{name}: {o.Where}");
        var d = o.Deliveries[0];
        ulong? expected = error == ulong.MaxValue ? null : error;
        Assert.True((vector, expected, o.At, (ulong)KernelCode, (ulong)KernelData) == (d.Vector, d.ErrorCode, d.Rip, d.Cs, d.Ss),
            $"{name}: expected vector {vector} error 0x{error:X} at 0x{o.At:X} CS 0x08: {o.Where}");
    }

    /// <summary>The one delivery of a fault at CPL 3 through TSS.RSP0: the frame's CS 0x33, SS 0x2b, RSP as it was.</summary>
    private static void AssertUserFault(Outcome o, string name, ulong vector, ulong? error, ulong rip, ulong rsp = UserStackTop, ulong handlerRsp = Rsp0,
        ushort cs = UserCode)
    {
        Assert.True(o.Exit == KvmExitReason.KVM_EXIT_HLT && o.Deliveries.Count == 1, $"{name}: {o.Where}");
        var d = o.Deliveries[0];
        ulong frame = handlerRsp - (error is null ? 40UL : 48UL);
        Assert.True((vector, error, rip, (ulong)cs, (ulong)UserData, rsp, frame) == (d.Vector, d.ErrorCode, d.Rip, d.Cs, d.Ss, d.Rsp, d.HandlerRsp),
            $"{name}: expected vector {vector} error 0x{error:X} at 0x{rip:X} from CS 0x{cs:X}: {o.Where}");
    }

    [ConformanceCase("AMD APM Vol. 3 SYSRET (the vendor of this host's CPU model; Intel SDM Vol. 2B SYSRET: #GP(0) at CPL 0): a non-canonical RCX is loaded into RIP with CS/SS of ring 3, and the fetch at CPL 3 is #GP(0) through TSS.RSP0 with the non-canonical RIP pushed")]
    public static void ring_fault_sysret_with_a_non_canonical_rcx_faults_by_vendor(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool amd = CpuidVendor.IsAmdCompatible(kvm.GetSupportedCpuid());
        var o = Run(kvm, ring3: false, a =>
        {
            a.mov(rcx, unchecked((long)NonCanonical));
            a.mov(r11, 2);
            a.sysretq();
        }, [0x48, 0x0f, 0x07]);
        if (amd) AssertUserFault(o, "SYSRET (AMD)", 13, 0, NonCanonical, rsp: StartRsp);
        else AssertKernelFault(o, "SYSRET (Intel)", 13, 0);
    }

    [ConformanceCase("Intel SDM Vol. 2B SYSRET, AMD APM Vol. 3 SYSRET: SYSRETD (32-bit operand) takes RIP = ECX (RCX[63:32] ignored) and CS = STAR[63:48] | 3 as 32-bit compatibility-mode code, SS = STAR[63:48] + 8 | 3 (a UD2 there is #UD from CS 0x23 through TSS.RSP0); SYSRETQ at CPL 3 is #GP(0)")]
    public static void ring_fault_sysret32_and_sysret_at_cpl_3(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var o = Run(kvm, ring3: false, a =>
        {
            var compat = a.CreateLabel();
            a.lea(rax, __[compat]);
            a.mov(rcx, unchecked((long)0xFFFF_FFFF_0000_0000));
            a.or(rcx, rax);
            a.mov(r11, 2);
            a.sysret();
            a.Label(ref compat);
            a.db(0x0f, 0x0b); // UD2, decoded as 32-bit code
        }, [0x0f, 0x07, 0x0f, 0x0b]);
        if (HostDeviations.KvmPvmSysret32ReturnsTo64BitCode(ctx.Target.IsReal))
        {
            ulong rip = 0xFFFF_FFFF_0000_0000 | (o.At + 2);
            Assert.True(o.Exit == KvmExitReason.KVM_EXIT_HLT && o.Deliveries is [{ Vector: 8, Cs: UserCode } d] && d.Rip == rip && d.Cr2 == rip,
                $"SYSRETD (kvm_pvm: to 0x33:RCX, #PF, #DF): {o.Where}");
        }
        else
        {
            AssertUserFault(o, "UD2 after SYSRETD", 6, null, o.At + 2, rsp: StartRsp, cs: 0x20 | 3);
        }
        o = Run(kvm, ring3: true, a => a.sysretq(), [0x48, 0x0f, 0x07]);
        AssertUserFault(o, "SYSRETQ at CPL 3", 13, 0, o.At);
    }

    [ConformanceCase("Intel SDM Vol. 2A IRET (IA-32e mode) at CPL 0 to ring 3: null CS → #GP(0); a data segment as CS → #GP(selector); CS not present → #NP(selector); null SS at RPL 3 → #GP(0); SS RPL ≠ CS RPL or SS DPL ≠ CS RPL → #GP(SS selector); SS not present → #SS(selector); non-canonical RIP → #GP(0) — RIP on the IRETQ, CS 0x08")]
    public static void ring_fault_iretq_to_ring_3_faults_on_a_bad_cs_ss_or_rip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var failures = new List<string>();
        foreach (var (name, rip, cs, ss, vector, error) in OuterReturnScenarios)
        {
            Check(failures, () =>
            {
                var o = Run(kvm, ring3: false, a => Iretq(a, rip, cs, ss), IretqBytes);
                if (!HostDeviations.KvmPvmIretqSkipsCsTypeAndRipChecks(ctx.Target.IsReal) || name is not ("data segment as CS" or "non-canonical RIP"))
                    AssertKernelFault(o, "IRETQ " + name, vector, error);
                else if (cs == UserData)
                    Assert.True(o.Deliveries.Count > 0 && o.Deliveries[^1] is { Vector: 8, Cs: UserData }, $"IRETQ {name} (kvm_pvm: CS 0x2b loaded, #DF): {o.Where}");
                else
                    AssertUserFault(o, $"IRETQ {name} (kvm_pvm: #GP at the fetch)", 13, 0, NonCanonical);
            });
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [ConformanceCase("Intel SDM Vol. 2A RET far (IA-32e mode, RETURN-TO-OUTER-PRIVILEGE-LEVEL) at CPL 0 to ring 3: the same CS, SS and RIP checks as IRETQ — null CS → #GP(0), data CS → #GP(selector), CS not present → #NP(selector), null SS at RPL 3 → #GP(0), SS RPL/DPL ≠ CS RPL → #GP(selector), SS not present → #SS(selector), non-canonical RIP → #GP(0)")]
    public static void ring_fault_far_return_to_ring_3_faults_on_a_bad_cs_ss_or_rip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var failures = new List<string>();
        foreach (var (name, rip, cs, ss, vector, error) in OuterReturnScenarios)
        {
            Check(failures, () =>
            {
                var o = Run(kvm, ring3: false, a => Retfq(a, rip, cs, ss), RetfqBytes);
                // kvm_pvm: emulate.c __load_segment_descriptor checks a null CS and the CS type before giving up.
                if (!HostDeviations.KvmPvmFarReturnToOuterRingFails(ctx.Target.IsReal) || name is "null CS" or "data segment as CS")
                    AssertKernelFault(o, "RETFQ " + name, vector, error);
                else
                    Assert.True(o.Exit == KvmExitReason.KVM_EXIT_INTERNAL_ERROR && o.Deliveries.Count == 0, $"RETFQ {name} (kvm_pvm: emulation failure): {o.Where}");
            });
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>Runs one scenario's assertion, keeping its failure message so that every scenario is reported.</summary>
    private static void Check(List<string> failures, Action scenario)
    {
        try
        {
            scenario();
        }
        catch (Xunit.Sdk.XunitException e)
        {
            failures.Add(e.Message);
        }
    }

    /// <summary>A valid ring-3 RIP (the code page is user-accessible) for scenarios that fault before using it.</summary>
    private const ulong UserRip = LongModeGuest.CodeGpa;

    private static readonly (string Name, ulong Rip, ushort Cs, ushort Ss, ulong Vector, ulong Error)[] OuterReturnScenarios =
    [
        ("null CS", UserRip, 3, UserData, 13, 0),
        ("data segment as CS", UserRip, UserData, UserData, 13, UserData & 0xfffc),
        ("CS not present", UserRip, UserCodeAbsent | 3, UserData, 11, UserCodeAbsent),
        ("null SS", UserRip, UserCode, 3, 13, 0),
        ("SS RPL 0", UserRip, UserCode, UserData & 0xfffc, 13, UserData & 0xfffc),
        ("SS DPL 0", UserRip, UserCode, KernelData | 3, 13, KernelData),
        ("SS not present", UserRip, UserCode, UserDataAbsent | 3, 12, UserDataAbsent),
        ("non-canonical RIP", NonCanonical, UserCode, UserData, 13, 0),
    ];

    [ConformanceCase("Intel SDM Vol. 2A IRET and RET far (IA-32e mode) at CPL 3: a CS with RPL < CPL is #GP(selector), delivered through TSS.RSP0 with RIP on the instruction")]
    public static void ring_fault_iretq_and_far_return_at_cpl_3_to_ring_0_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var o = Run(kvm, ring3: true, a => Iretq(a, UserRip, KernelCode, KernelData), IretqBytes);
        AssertUserFault(o, "IRETQ to CS 0x08", 13, KernelCode, o.At, rsp: UserStackTop - 40);
        o = Run(kvm, ring3: true, a => Retfq(a, UserRip, KernelCode, KernelData), RetfqBytes);
        AssertUserFault(o, "RETFQ to CS 0x08", 13, KernelCode, o.At, rsp: UserStackTop - 32);
    }

    [ConformanceCase("Intel SDM Vol. 2A INT n/INTO/INT3/INT1, Vol. 3A 6.12.1.1: at CPL 3, INT n and INT3 through a DPL-0 gate are #GP(vector·8 + 2) through TSS.RSP0 with RIP on the instruction; INTO is #UD in 64-bit mode")]
    public static void ring_fault_software_interrupts_at_cpl_3_check_the_gate_dpl(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool hostUd = HostDeviations.KvmPvmSoftwareInterruptAtCpl3IsUndefined(ctx.Target.IsReal);
        var failures = new List<string>();
        foreach (var (name, bytes, vector) in new (string, byte[], int)[] { ("INT 5", [0xcd, 0x05], 5), ("INT3", [0xcc], 3) })
        {
            Check(failures, () =>
            {
                var o = Run(kvm, ring3: true, a => a.db(bytes), bytes);
                if (hostUd && vector == 3) AssertUserFault(o, "INT3 (kvm_pvm: #BP through the DPL-0 gate)", 3, null, o.At + 1);
                else if (hostUd) AssertUserFault(o, name + " (kvm_pvm: #UD)", 6, null, o.At);
                else AssertUserFault(o, name, 13, (ulong)vector * 8 + 2, o.At);
            });
        }
        Check(failures, () =>
        {
            var o = Run(kvm, ring3: true, a => a.db(0xce), [0xce]);
            AssertUserFault(o, "INTO", 6, null, o.At);
        });
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.12.1, 6.14.2: a #UD at CPL 3 through a gate whose code segment is a DPL-3 64-bit segment stays at CPL 3 on the same stack (RSP aligned to 16, the frame RIP/CS/RFLAGS/RSP/SS pushed there); the handler's HLT is then #GP(0) at CPL 3")]
    public static void ring_fault_exception_to_a_ring_3_handler_stays_on_the_user_stack(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        byte[] handler = [0x90, 0x90, 0x90, 0xf4]; // the ring-3 #UD handler: NOPs, HLT
        ulong handlerAt = 0;
        var o = Run(kvm, ring3: true, a => a.ud2(), [0x0f, 0x0b], g =>
        {
            var code = new byte[0x1000];
            g.Guest.Memory.Read(LongModeGuest.CodeGpa, code);
            handlerAt = LongModeGuest.CodeGpa + (ulong)code.AsSpan().LastIndexOf(handler);
            var (low, high) = IdtGuest.Gate(handlerAt, UserCode, GateKind.Interrupt, present: true);
            g.Guest.Memory.Write(IdtGuest.IdtGpa + 6 * 16, low);
            g.Guest.Memory.Write(IdtGuest.IdtGpa + 6 * 16 + 8, high);
        }, program => program.db(handler));
        ulong frame = UserStackTop - 40;
        AssertUserFault(o, "HLT in the ring-3 #UD handler", 13, 0, handlerAt + 3, rsp: frame);
        var mem = o.Memory;
        ulong Q(int k) => BitConverter.ToUInt64(mem, (int)(frame - (UserStackTop - 0x1000)) + k * 8);
        Assert.Equal((o.At, (ulong)UserCode, 0x10002UL, UserStackTop, (ulong)UserData), (Q(0), Q(1), Q(2), Q(3), Q(4)));
    }

    [ConformanceCase("Intel SDM Vol. 3A 6.14.4/6.14.5: a fault at CPL 3 whose TSS.RSP0 is non-canonical raises #SS(EXT) on the stack switch, again on its own delivery, so #DF(0) (Table 6-5) — delivered through IST1 with the CPL-3 frame; a gate whose code segment is not present is #NP(selector + EXT)")]
    public static void ring_fault_delivery_on_a_bad_rsp0_or_an_absent_handler_segment(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var o = Run(kvm, ring3: true, a => a.ud2(), [0x0f, 0x0b], g =>
        {
            g.Guest.Memory.Write(Layout.Tss + 4, NonCanonical);
            g.Guest.Memory.Write(IdtGuest.IdtGpa + 8 * 16 + 4, (byte)1); // #DF gate: IST1
        });
        AssertUserFault(o, "UD2 with a non-canonical RSP0", 8, 0, o.At, handlerRsp: Ist1);

        o = Run(kvm, ring3: false, a => a.ud2(), [0x0f, 0x0b], g =>
        {
            var (low, high) = IdtGuest.Gate(IdtGuest.HandlersGpa + 6 * 0x100, KernelCodeAbsent, GateKind.Interrupt, present: true);
            g.Guest.Memory.Write(IdtGuest.IdtGpa + 6 * 16, low);
            g.Guest.Memory.Write(IdtGuest.IdtGpa + 6 * 16 + 8, high);
        });
        if (HostDeviations.KvmPvmGateSelectorNotChecked(ctx.Target.IsReal)) AssertKernelFault(o, "UD2 through a gate to a not-present CS (kvm_pvm: delivered)", 6, ulong.MaxValue);
        else AssertKernelFault(o, "UD2 through a gate to a not-present CS", 11, KernelCodeAbsent | 1);
    }
}
