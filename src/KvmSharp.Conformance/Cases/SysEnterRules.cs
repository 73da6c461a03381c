// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using Mode = KvmSharp.Conformance.Guests.ModeSwitchGuest;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// SYSENTER and SYSEXIT (Intel SDM Vol. 2B SYSENTER, SYSEXIT; AMD APM Vol. 3 SYSENTER, SYSEXIT; arch/x86/kvm/emulate.c
/// em_sysenter, em_sysexit). The MSRs are IA32_SYSENTER_CS/ESP/EIP (0x174–0x176), written by the host. 32-bit
/// guests are <see cref="ModeSwitchGuest"/>s entered from real mode, with four flat segments at SYSENTER_CS = 0x28
/// (ring-0 code and data, ring-3 code and data), a 32-bit TSS for faults at CPL 3 and a legacy IDT whose #UD/#GP
/// handlers report the vector, the error code and the pushed CS on port 0x10, then halt (no IRET:
/// HostDeviations.KvmPvmIretIn32BitCodeFails). The 64-bit guest is an <see cref="IdtGuest"/>.
/// </summary>
public static class SysEnterRules
{
    private const uint MsrSysenterCs = 0x174, MsrSysenterEsp = 0x175, MsrSysenterEip = 0x176;
    private const ushort KernelCs = 0x28, KernelSs = 0x30, UserCs = 0x38 | 3, UserSs = 0x40 | 3, TssSelector = 0x48;
    private const ulong Idt = Mode.Base + 0xB00, IdtPointer = Mode.Base + 0xAF0, UdHandler = Mode.Base + 0xC00, GpHandler = Mode.Base + 0xC40,
        Ring3GpHandler = Mode.Base + 0xC80;
    private const ulong Tss = Mode.Base + 0xD00, Ring0Stack = Mode.Base + 0xE800, UserStack = Mode.Base + 0xE000, EntryStack = Mode.Base + 0xE400;

    /// <summary>SYSENTER_EIP: a HLT the host writes; ring-3 code is the ModeSwitchGuest's Code32Far block.</summary>
    private const ulong KernelEntry = Mode.Base + 0xA80;
    private const ulong RflagsIf = 1UL << 9;

    /// <summary>Flat 4 GiB descriptors (G, D/B): 32-bit code and data at DPL 0 and DPL 3.</summary>
    private const ulong Code0 = 0x00CF_9A00_0000_FFFF, Data0 = 0x00CF_9200_0000_FFFF, Code3 = 0x00CF_FA00_0000_FFFF, Data3 = 0x00CF_F200_0000_FFFF;

    /// <summary>A 32-bit interrupt gate, DPL 0, to <paramref name="selector"/> (SDM Vol. 3A 6.11, Figure 6-2).</summary>
    private static ulong Gate(ulong offset, ushort selector = Mode.Code32Selector) =>
        (offset & 0xFFFF) | ((ulong)selector << 16) | (0x8EUL << 40) | ((offset >> 16 & 0xFFFF) << 48);

    /// <summary>A handler: report the vector, the error code's low byte (for #GP) and the pushed CS's low byte, then halt.</summary>
    private static byte[] Handler(ulong address, byte vector) => Mode.Assemble(32, address, a =>
    {
        ReportPort.Out(a, vector);
        if (vector == 13)
        {
            a.pop(eax);
            a.@out(ReportPort.Port, al);
        }
        a.mov(eax, __dword_ptr[esp + 4]);
        a.@out(ReportPort.Port, al);
        a.hlt();
    });

    /// <summary>
    /// Real mode → 32-bit protected mode (flat DS/ES/SS 0x10, ESP = StackTop, IDT loaded), then <paramref name="body"/>;
    /// the host adds the GDT entries 5–9, the TSS (SS0 0x10, ESP0 <see cref="Ring0Stack"/>, TR loaded by KVM_SET_SREGS),
    /// CPUID and the three MSRs.
    /// </summary>
    private static ModeSwitchGuest Create32(Kvm kvm, Action<Assembler> body, ulong sysenterCs, Action<Assembler>? ring3 = null)
    {
        var g = Mode.Create(kvm, code16: Mode.EnterProtectedMode, code32: a =>
        {
            a.mov(ax, Mode.DataSelector);
            a.mov(ds, ax);
            a.mov(es, ax);
            a.mov(ss, ax);
            a.mov(esp, (uint)Mode.StackTop);
            a.lidt(__[(uint)IdtPointer]);
            body(a);
        }, code32Far: ring3);
        try
        {
            ulong[] extra = [Code0, Data0, Code3, Data3, Descriptor(Tss, 0x67, 0x89)];
            for (int n = 0; n < extra.Length; n++) g.Write(Mode.Gdt + 0x28 + (ulong)n * 8, extra[n]);
            g.Write<ushort>(Mode.GdtPointer, 10 * 8 - 1);
            g.Write(Idt + 6 * 8, Gate(UdHandler));
            g.Write(Idt + 13 * 8, Gate(GpHandler));
            g.Write<ushort>(IdtPointer, 14 * 8 - 1);
            g.Write(IdtPointer + 2, (uint)Idt);
            g.Write(UdHandler, Handler(UdHandler, 6));
            g.Write(GpHandler, Handler(GpHandler, 13));
            g.Write(Tss + 4, (uint)Ring0Stack);
            g.Write(Tss + 8, (uint)Mode.DataSelector);
            g.Write<ushort>(Tss + 0x66, 0x68); // I/O map base beyond the limit: no bitmap
            g.Write(KernelEntry, (byte)0xF4); // HLT
            var sregs = g.Vcpu.GetSregs();
            sregs.tr = new kvm_segment { selector = TssSelector, @base = Tss, limit = 0x67, type = 0xB, present = 1 };
            g.Vcpu.SetSregs(sregs);
            g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
            g.Vcpu.SetMsr(MsrSysenterCs, sysenterCs);
            g.Vcpu.SetMsr(MsrSysenterEsp, EntryStack);
            g.Vcpu.SetMsr(MsrSysenterEip, KernelEntry);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    /// <summary>An 8-byte system-segment descriptor (SDM Vol. 3A 3.4.5) from base, limit and access byte.</summary>
    private static ulong Descriptor(ulong @base, uint limit, byte access) =>
        (limit & 0xFFFFUL) | ((@base & 0xFF_FFFFUL) << 16) | ((ulong)access << 40) | (((@base >> 24) & 0xFF) << 56);

    /// <summary>The bytes the guest reported and the stop, as text for the failure messages.</summary>
    private static (List<byte> Reports, KvmExitReason Last, string Where) Run(ModeSwitchGuest g)
    {
        var (reports, last) = ReportPort.RunToEnd(g.Vcpu);
        var regs = g.Vcpu.GetRegs();
        var sregs = g.Vcpu.GetSregs();
        return (reports, last, $"{last} at EIP 0x{regs.rip:X} CS 0x{sregs.cs.selector:X} SS 0x{sregs.ss.selector:X}, reports [{string.Join(", ", reports.Select(b => $"0x{b:X2}"))}]");
    }

    [ConformanceCase("Intel SDM Vol. 2B SYSEXIT, SYSENTER; AMD APM Vol. 3 SYSEXIT, SYSENTER (legacy protected mode, both vendors): SYSEXIT at CPL 0 loads CS = SYSENTER_CS + 16 | 3, SS = SYSENTER_CS + 24 | 3, EIP = EDX, ESP = ECX, EFLAGS kept; SYSENTER from ring 3 loads CS = SYSENTER_CS & ~3, SS = CS + 8, EIP = SYSENTER_EIP, ESP = SYSENTER_ESP and clears IF")]
    public static void sysenter_and_sysexit_round_trip_through_ring_3_in_32_bit_mode(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Create32(kvm, a =>
        {
            a.mov(ecx, (uint)UserStack);
            a.mov(edx, (uint)Mode.Code32Far);
            a.pushfd();
            a.or(__dword_ptr[esp], (int)RflagsIf);
            a.popfd();
            a.sysexit();
        }, sysenterCs: KernelCs | 3, ring3: a =>
        {
            a.mov(esi, cs);
            a.mov(edi, ss);
            a.mov(ebp, esp);
            a.pushfd();
            a.pop(ebx);
            a.sysenter();
        });
        const ulong entry = KernelEntry;
        var (reports, last, where) = Run(g);
        var regs = g.Vcpu.GetRegs();
        var sregs = g.Vcpu.GetSregs();
        Assert.True(last == KvmExitReason.KVM_EXIT_HLT && reports.Count == 0, where);
        Assert.True((regs.rip, sregs.cs.selector, sregs.ss.selector, sregs.cs.dpl, sregs.ss.dpl, regs.rsp) == (entry + 1, KernelCs, KernelSs, (byte)0, (byte)0, EntryStack),
            $"after SYSENTER: expected EIP 0x{entry + 1:X} CS 0x28 SS 0x30 ESP 0x{EntryStack:X}, got ESP 0x{regs.rsp:X}: {where}");
        Assert.True((regs.rsi, regs.rdi, regs.rbp) == (UserCs, UserSs, UserStack),
            $"at ring 3: expected CS 0x3B SS 0x43 ESP 0x{UserStack:X}, got 0x{regs.rsi:X} 0x{regs.rdi:X} 0x{regs.rbp:X}");
        Assert.True((regs.rbx & RflagsIf) != 0 && (regs.rflags & RflagsIf) == 0,
            $"IF: SYSEXIT keeps it (ring 3 EFLAGS 0x{regs.rbx:X}), SYSENTER clears it (0x{regs.rflags:X})");
    }

    [ConformanceCase("Intel SDM Vol. 2B SYSENTER, SYSEXIT; AMD APM Vol. 3; emulate.c em_sysenter/em_sysexit: IA32_SYSENTER_CS[15:2] = 0 is #GP(0) for both; SYSEXIT at CPL 3 is #GP(0) (delivered through the TSS, pushed CS 0x3B)")]
    public static void sysenter_and_sysexit_faults_in_32_bit_mode(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (bool enter in new[] { true, false })
        {
            using var g = Create32(kvm, a =>
            {
                if (enter) a.sysenter();
                else a.sysexit();
            }, sysenterCs: enter ? 0UL : 3UL);
            var (reports, last, where) = Run(g);
            Assert.True(last == KvmExitReason.KVM_EXIT_HLT && reports.SequenceEqual(new byte[] { 13, 0, (byte)Mode.Code32Selector }),
                $"{(enter ? "SYSENTER" : "SYSEXIT")} with a null SYSENTER_CS: expected #GP(0) from CS 0x08: {where}");
        }
        // SYSEXIT at CPL 3: the #GP gate names the ring-3 code segment, so the handler runs at CPL 3 on the ring-3 stack
        // (no stack switch: the emulator has no 32-bit inner-privilege delivery); it keeps the error code and the
        // pushed CS and SYSENTERs back to the HLT at SYSENTER_EIP.
        using var user = Create32(kvm, a =>
        {
            a.mov(ecx, (uint)UserStack);
            a.mov(edx, (uint)Mode.Code32Far);
            a.sysexit();
        }, sysenterCs: KernelCs, ring3: a => a.sysexit());
        user.Write(Idt + 13 * 8, Gate(Ring3GpHandler, (ushort)(UserCs & ~3)));
        user.Write(Ring3GpHandler, Mode.Assemble(32, Ring3GpHandler, a =>
        {
            a.mov(esi, 13);
            a.pop(eax);
            a.mov(ebx, __dword_ptr[esp + 4]);
            a.mov(edi, __dword_ptr[esp]);
            a.sysenter();
        }));
        var (r, l, w) = Run(user);
        var regs = user.Vcpu.GetRegs();
        Assert.True(l == KvmExitReason.KVM_EXIT_HLT && r.Count == 0 && (regs.rsi, regs.rax, regs.rbx, regs.rdi) == (13UL, 0UL, (ulong)UserCs, Mode.Code32Far),
            $"SYSEXIT at CPL 3: expected #GP(0) from CS 0x3B on the instruction, got vector {regs.rsi} error 0x{regs.rax:X} CS 0x{regs.rbx:X} EIP 0x{regs.rdi:X}: {w}");
    }

    private const ushort UserData64 = 0x28 | 3, UserCode64 = 0x30 | 3;
    private const ulong Rsp0 = 0x2_0000, UserStackTop = 0x8_B000;

    /// <summary>
    /// A 64-bit <see cref="IdtGuest"/> (#UD and #GP handlers record and halt) running <paramref name="body"/> at CPL 0,
    /// or at CPL 3 after an IRETQ to <see cref="UserCode64"/> (RingTransitionFaults' ring 3), with SYSENTER_CS 0x08,
    /// SYSENTER_ESP 0x1_0000 and SYSENTER_EIP = the code page + 0xF00 (a HLT).
    /// </summary>
    private static IdtGuest Create64(Kvm kvm, bool ring3, Action<Assembler> body)
    {
        var g = IdtGuest.Create(kvm, a =>
        {
            if (ring3) IdtGuest.IretqToRing3(a, UserCode64, UserData64, UserStackTop, rflags: 2);
            body(a);
            a.hlt();
        }, [new IdtVector(6), new IdtVector(13)]);
        try
        {
            g.PrepareRing3(UserCode64, UserData64, Rsp0, UserStackTop - 0x1000);
            g.Guest.Memory.Write(LongModeGuest.CodeGpa + 0xF00, (byte)0xF4);
            g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
            g.Vcpu.SetMsr(MsrSysenterCs, Gdt.CodeSelector);
            g.Vcpu.SetMsr(MsrSysenterEsp, 0x1_0000);
            g.Vcpu.SetMsr(MsrSysenterEip, LongModeGuest.CodeGpa + 0xF00);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    private static string Describe(IdtGuest g, VcpuExit exit)
    {
        var ev = g.Vcpu.GetEvents();
        var sregs = g.Vcpu.GetSregs();
        return $"{exit.ToString()} at RIP 0x{g.Vcpu.GetRegs().rip:X} CS 0x{sregs.cs.selector:X}, deliveries: {string.Join("; ", g.Deliveries)}, " +
            $"exception injected {ev.exception_injected} pending {ev.exception_pending} nr {ev.exception_nr}";
    }

    [ConformanceCase("AMD APM Vol. 3 SYSENTER (\"#UD: the instruction is not recognized in long mode\"), intercepted by KVM: emulate.c em_sysenter returns X86EMUL_UNHANDLEABLE in 64-bit mode and x86.c handle_emulation_failure queues #UD, exiting with KVM_EXIT_INTERNAL_ERROR (emulation) at CPL 0 and delivering the #UD at CPL 3; Intel SDM Vol. 2B SYSENTER (an Intel CPU): RIP = SYSENTER_EIP, RSP = SYSENTER_ESP, CS = SYSENTER_CS as 64-bit code")]
    public static void sysenter_in_64_bit_mode_follows_the_vendor(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool amd = CpuidVendor.IsAmdCompatible(kvm.GetSupportedCpuid());
        foreach (bool ring3 in new[] { false, true })
        {
            using var g = Create64(kvm, ring3, a => a.sysenter());
            var exit = g.Vcpu.Run();
            string where = $"SYSENTER at CPL {(ring3 ? 3 : 0)}: {Describe(g, exit)}";
            ulong at = At(g, [0x0f, 0x34]);
            if (!amd)
            {
                var sregs = g.Vcpu.GetSregs();
                var regs = g.Vcpu.GetRegs();
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT && g.Deliveries.Count == 0 && regs.rip == LongModeGuest.CodeGpa + 0xF01
                    && regs.rsp == 0x1_0000 && (sregs.cs.selector, sregs.cs.l, sregs.cs.dpl, sregs.ss.selector) == (Gdt.CodeSelector, (byte)1, (byte)0, (ushort)(Gdt.CodeSelector + 8)),
                    $"(Intel) expected RIP = SYSENTER_EIP, RSP = SYSENTER_ESP, CS 0x08 as 64-bit code, SS 0x10: {where}");
                continue;
            }
            if (ring3)
            {
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT && g.Deliveries is [{ Vector: 6, Cs: UserCode64, ErrorCode: null } d] && d.Rip == at,
                    $"(AMD) expected #UD on the instruction from CS 0x33: {where}");
                continue;
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_INTERNAL_ERROR && exit.InternalSuberror == 1 && g.Vcpu.GetRegs().rip == at,
                $"(AMD) expected KVM_EXIT_INTERNAL_ERROR (emulation) on the instruction: {where}");
            var ev = g.Vcpu.GetEvents();
            exit = g.Vcpu.Run();
            where += $"; next KVM_RUN: {Describe(g, exit)}";
            if (HostDeviations.KvmPvmEmulationFailureQueuesNoUd(ctx.Target.IsReal))
            {
                Assert.True(ev.exception_injected == 0 && exit.Reason == KvmExitReason.KVM_EXIT_INTERNAL_ERROR && g.Vcpu.GetRegs().rip == at,
                    $"(kvm_pvm) expected no queued exception and the same failure again: {where}");
            }
            else
            {
                Assert.True((ev.exception_injected, ev.exception_nr, ev.exception_has_error_code) == ((byte)1, (byte)6, (byte)0),
                    $"(AMD) expected #UD queued with the exit: {where}");
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT && g.Deliveries is [{ Vector: 6, Cs: Gdt.CodeSelector } d] && d.Rip == at,
                    $"(AMD) expected the queued #UD delivered by the next KVM_RUN: {where}");
            }
        }
    }

    [ConformanceCase("Intel SDM Vol. 2B SYSEXIT (REX.W: CS = SYSENTER_CS + 32 | 3 as 64-bit code, SS = SYSENTER_CS + 40 | 3, RIP = RDX, RSP = RCX); on AMD the #UD is intercepted and emulate.c em_sysexit does the same (EmulateOnUD); a HLT there is #GP(0) from CS 0x2B")]
    public static void sysexit_in_64_bit_mode_returns_to_sysenter_cs_plus_32(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Create64(kvm, false, a =>
        {
            a.mov(rcx, (long)UserStackTop);
            a.mov(rdx, (long)(LongModeGuest.CodeGpa + 0xF00));
            a.db(0x48, 0x0f, 0x35); // SYSEXIT with REX.W
        });
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT
            && g.Deliveries is [{ Vector: 13, ErrorCode: 0, Cs: Gdt.CodeSelector + 32 + 3, Ss: Gdt.CodeSelector + 40 + 3, Rsp: UserStackTop } d]
            && d.Rip == LongModeGuest.CodeGpa + 0xF00,
            $"expected the HLT at RDX to fault at CPL 3 from CS 0x2B, SS 0x33, RSP = RCX: {Describe(g, exit)}");
    }

    /// <summary>The address of the last occurrence of <paramref name="pattern"/> in the guest's code page.</summary>
    private static ulong At(IdtGuest g, byte[] pattern)
    {
        var code = new byte[0xF00];
        g.Guest.Memory.Read(LongModeGuest.CodeGpa, code);
        int at = code.AsSpan().LastIndexOf(pattern);
        Assert.True(at >= 0, "pattern not found in the guest code");
        return LongModeGuest.CodeGpa + (ulong)at;
    }
}
