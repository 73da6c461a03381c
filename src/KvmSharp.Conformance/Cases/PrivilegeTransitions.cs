// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Privilege transitions in a 64-bit guest: IRETQ to ring 3 (Intel SDM Vol. 2A IRET, IA-32e "RETURN-TO-OUTER-
/// PRIVILEGE-LEVEL"), SYSCALL/SYSRET (SDM Vol. 2B SYSCALL, SYSRET; AMD APM Vol. 3), SWAPGS and RDFSBASE/WRFSBASE/
/// RDGSBASE/WRGSBASE. KVM runs these natively (arch/x86/kvm/emulate.c em_syscall/em_sysexit only in special cases):
/// the real kernel is the oracle. The GDT gets a ring-3 data segment at 0x28 and a ring-3 64-bit code segment at
/// 0x30, so that STAR[63:48] = 0x20 makes SYSRET load SS = 0x2b and CS = 0x33 (Linux's order).
/// </summary>
public static class PrivilegeTransitions
{
    private const ushort UserData = 0x28 | 3, UserCode = 0x30 | 3, KernelCode = Gdt.CodeSelector, KernelData = Gdt.DataSelector;

    private const uint MsrStar = 0xc000_0081, MsrLstar = 0xc000_0082, MsrSfmask = 0xc000_0084;
    private const uint MsrGsBase = 0xc000_0101, MsrKernelGsBase = 0xc000_0102;
    private const ulong EferSce = 1, Cr4FsGsBase = 1UL << 16;

    /// <summary>STAR: SYSCALL CS = 0x08 (SS 0x10), SYSRET base 0x20 (64-bit: SS 0x28|3, CS 0x30|3).</summary>
    private const ulong Star = (0x20UL << 48) | ((ulong)KernelCode << 32);

    /// <summary>Where the guest stores what each step saw (8-byte slots), a user page.</summary>
    private const ulong Slots = 0x8_9000;

    /// <summary>The ring-3 stack (a user page below it), and TSS.RSP0, the ring-0 stack of a fault at CPL 3.</summary>
    private const ulong UserStackTop = 0x8_B000, Rsp0 = 0x2_0000;

    private static AssemblerMemoryOperand Slot(int n) => __qword_ptr[Slots + (ulong)n * 8];

    private static ulong ReadSlot(IdtGuest g, int n) => g.Guest.Memory.Read<ulong>(Slots + (ulong)n * 8);

    /// <summary>
    /// GDT entries 5 (ring-3 data, 0x28) and 6 (ring-3 64-bit code, 0x30), TSS.RSP0, U/S on the paging path of the
    /// code page, the slots page and the ring-3 stack page; the guest's CPUID is the supported one, EFER.SCE as asked,
    /// STAR/LSTAR/SFMASK as given. The vCPU stays at CPL 0.
    /// </summary>
    private static void Prepare(Kvm kvm, IdtGuest g, bool sce = true, ulong lstar = 0, ulong sfmask = 0)
    {
        g.PrepareRing3(UserCode, UserData, Rsp0, Slots, UserStackTop - 0x1000);
        g.Guest.Memory.Fill(Slots, Layout.PageSize, 0xee);
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        var sregs = g.Vcpu.GetSregs();
        sregs.efer = sce ? sregs.efer | EferSce : sregs.efer & ~EferSce;
        g.Vcpu.SetSregs(sregs);
        g.Vcpu.SetMsr(MsrStar, Star);
        g.Vcpu.SetMsr(MsrLstar, lstar);
        g.Vcpu.SetMsr(MsrSfmask, sfmask);
    }

    /// <summary>Stores the selector of <paramref name="sreg"/> (zero-extended) into slot <paramref name="n"/>; RAX is scratch.</summary>
    private static void SaveSelector(Assembler a, AssemblerRegisterSegment sreg, int n)
    {
        a.mov(eax, sreg);
        a.mov(Slot(n), rax);
    }

    /// <summary>Stores RFLAGS into slot <paramref name="n"/> without changing it; RAX is scratch.</summary>
    private static void SaveFlags(Assembler a, int n)
    {
        a.pushfq();
        a.pop(rax);
        a.mov(Slot(n), rax);
    }

    private static void ExpectIo(IdtGuest g, byte value, string what)
    {
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == 0x10 && exit.IoData[0] == value,
            $"{what}: {exit.ToString()} at RIP 0x{g.Vcpu.GetRegs().rip:X}, deliveries: {string.Join("; ", g.Deliveries)}");
    }

    /// <summary>R11 the ring-0 entry hands SYSRET: every bit but TF, AC, VIF and VIP (SYSRET keeps R11 &amp; 0x3C7FD7 | 2).</summary>
    private const ulong SysretR11 = 0xFFFF_FFFF_FFE3_FEFF;

    [ConformanceCase("SDM Vol. 2A IRET IA-32e RETURN-TO-OUTER-PRIVILEGE-LEVEL (CS/SS RPL 3, RFLAGS IOPL/IF restored at CPL 0, DS/FS with DPL < CPL nulled, ES with DPL 3 kept); SYSCALL (RCX = next RIP, R11 = RFLAGS, RFLAGS &= ~SFMASK, CS/SS from STAR[47:32]); SYSRET64 (CS = STAR[63:48]+16 | 3, SS = +8 | 3, RFLAGS = R11 & 0x3C7FD7 | 2); at CPL 3 SYSRET and SWAPGS #GP(0) through TSS.RSP0 and the handler's IRETQ returns to ring 3")]
    public static void ring_3_round_trip_through_iretq_syscall_and_sysret(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            var user = a.CreateLabel();
            var afterSysret = a.CreateLabel();
            // Ring 0: ES = the ring-3 data segment (kept), DS/FS = the ring-0 one (nulled), GS null; IRETQ to ring 3 with
            // IOPL 3, IF and CF.
            a.mov(ax, UserData);
            a.mov(es, ax);
            a.mov(ax, KernelData);
            a.mov(ds, ax);
            a.mov(fs, ax);
            a.xor(eax, eax);
            a.mov(gs, ax);
            a.push((int)UserData);
            a.push((int)UserStackTop);
            a.push(0x3203);
            a.push((int)UserCode);
            a.lea(rax, __[user]);
            a.push(rax);
            a.iretq();

            // Ring 3: what IRETQ left, then SYSCALL with RFLAGS = 0x3ED7 (POPFQ keeps IOPL at CPL 3).
            a.Label(ref user);
            SaveFlags(a, 0);
            SaveSelector(a, cs, 1);
            SaveSelector(a, ss, 2);
            SaveSelector(a, ds, 3);
            SaveSelector(a, es, 4);
            SaveSelector(a, fs, 5);
            SaveSelector(a, gs, 6);
            a.mov(Slot(7), rsp);
            a.push(0x0ED7);
            a.popfq();
            a.syscall();
            a.ud2();

            // Ring 3 after SYSRET: selectors and RFLAGS, an OUT (IOPL 3 from R11 allows it), then SYSRET and SWAPGS,
            // both #GP(0) at CPL 3 (the handler skips 3 bytes and IRETQs back), then OUT again.
            a.Label(ref afterSysret);
            SaveFlags(a, 14);
            SaveSelector(a, cs, 15);
            SaveSelector(a, ss, 16);
            a.mov(Slot(17), rsp);
            a.mov(al, 0);
            a.@out(0x10, al);
            a.sysretq();
            a.swapgs();
            a.mov(al, 1);
            a.@out(0x10, al);
            a.hlt();

            // Ring 0, the SYSCALL entry (LSTAR), on the ring-3 stack: SYSCALL does not switch stacks.
            var entry = a.CreateLabel();
            a.Label(ref entry);
            a.mov(Slot(8), rcx);
            a.mov(Slot(9), r11);
            SaveFlags(a, 10);
            SaveSelector(a, cs, 11);
            SaveSelector(a, ss, 12);
            a.mov(Slot(13), rsp);
            a.lea(rcx, __[afterSysret]);
            a.mov(r11, unchecked((long)SysretR11));
            a.sysretq();
        }, [new IdtVector(13, ResumeSkip: 3)]);
        Prepare(kvm, g, lstar: 0, sfmask: 0x4701);
        // Addresses in the assembled program: the entry's first store, SYSCALL; UD2, and SYSRET; SWAPGS at CPL 3.
        ulong entryAt = FindEntry(g);
        g.Vcpu.SetMsr(MsrLstar, entryAt);
        ulong afterSyscall = FindBytes(g, [0x0f, 0x05, 0x0f, 0x0b]) + 2;
        ulong sysretAt = FindBytes(g, [0x48, 0x0f, 0x07, 0x0f, 0x01, 0xf8]), swapgsAt = sysretAt + 3;

        if (HostDeviations.KvmPvmSyscallKeepsUserMode(ctx.Target.IsReal))
        {
            // IRETQ dropped IOPL; SYSCALL reached LSTAR (RCX, R11, SFMASK on the virtual IF) but CS/SS stay 0x33/0x2b and
            // SYSRET is #GP(0) as at CPL 3; the handler's IRETQ resumes past it, into zeroed memory (triple fault).
            var shutdown = g.Vcpu.Run();
            Assert.True(shutdown.Reason == KvmExitReason.KVM_EXIT_SHUTDOWN, shutdown.ToString());
            Assert.Equal((0x203UL, (ulong)UserCode, (ulong)UserData, 0UL, 0UL), (ReadSlot(g, 0), ReadSlot(g, 1), ReadSlot(g, 2), ReadSlot(g, 3), ReadSlot(g, 5)));
            Assert.Equal((afterSyscall, 0xED7UL, 0xAD6UL, (ulong)UserCode, (ulong)UserData),
                (ReadSlot(g, 8), ReadSlot(g, 9), ReadSlot(g, 10), ReadSlot(g, 11), ReadSlot(g, 12)));
            var gp = g.Deliveries[0];
            Assert.Equal((13UL, (ulong?)0, entryAt + 0x4d, (ulong)UserCode, (ulong)UserData, 0x108D6UL, Rsp0 - 6 * 8),
                (gp.Vector, gp.ErrorCode, gp.Rip, gp.Cs, gp.Ss, gp.Rflags, gp.HandlerRsp));
            return;
        }
        ExpectIo(g, 0, "OUT at CPL 3 after SYSRET");
        // After IRETQ: RFLAGS as pushed (IOPL 3, IF, CF), CS/SS RPL 3, DS and FS nulled, ES kept, GS null.
        Assert.Equal((0x3203UL, (ulong)UserCode, (ulong)UserData), (ReadSlot(g, 0), ReadSlot(g, 1), ReadSlot(g, 2)));
        Assert.Equal((0UL, (ulong)UserData, 0UL, 0UL), (ReadSlot(g, 3), ReadSlot(g, 4), ReadSlot(g, 5), ReadSlot(g, 6)));
        Assert.Equal(UserStackTop, ReadSlot(g, 7));
        // SYSCALL: RCX = the next instruction, R11 = RFLAGS, RFLAGS = 0x3ED7 & ~SFMASK, CS 0x08, SS 0x10, RSP kept.
        Assert.Equal(afterSyscall, ReadSlot(g, 8));
        Assert.Equal((0x3ED7UL, 0x3ED7UL & ~0x4701UL, (ulong)KernelCode, (ulong)KernelData, UserStackTop),
            (ReadSlot(g, 9), ReadSlot(g, 10), ReadSlot(g, 11), ReadSlot(g, 12), ReadSlot(g, 13)));
        // SYSRET: RFLAGS = R11 & 0x3C7FD7 | 2, CS 0x33, SS 0x2b.
        Assert.Equal(((SysretR11 & 0x3C_7FD7) | 2, (ulong)UserCode, (ulong)UserData, UserStackTop),
            (ReadSlot(g, 14), ReadSlot(g, 15), ReadSlot(g, 16), ReadSlot(g, 17)));
        var regs = g.Vcpu.GetRegs();
        var sregs = g.Vcpu.GetSregs();
        Assert.Equal((UserCode, UserData, (byte)3, (byte)3), (sregs.cs.selector, sregs.ss.selector, sregs.cs.dpl, sregs.ss.dpl));
        Assert.Equal((SysretR11 & 0x3C_7FD7) | 2, regs.rflags);

        ExpectIo(g, 1, "OUT after SYSRET and SWAPGS at CPL 3");
        var d = g.Deliveries;
        Assert.True(d.Count == 2, $"deliveries: {string.Join("; ", d)}");
        foreach (var (got, rip) in new[] { (d[0], sysretAt), (d[1], swapgsAt) })
            Assert.Equal((13UL, (ulong?)0, rip, (ulong)UserCode, (ulong)UserData, UserStackTop, Rsp0 - 6 * 8),
                (got.Vector, got.ErrorCode, got.Rip, got.Cs, got.Ss, got.Rsp, got.HandlerRsp));
    }

    [ConformanceCase("SDM Vol. 2B SYSCALL: IA32_EFER.SCE clear → #UD (RIP on the instruction); SWAPGS at CPL 0 exchanges GS.base and IA32_KERNEL_GS_BASE (RDMSR and KVM_GET_SREGS/KVM_GET_MSRS see it)")]
    public static void syscall_ud_without_sce_and_swapgs_at_cpl_0(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.syscall();
            a.swapgs();
            a.mov(ecx, MsrGsBase);
            a.rdmsr();
            a.mov(Slot(0), rax);
            a.mov(Slot(1), rdx);
            a.mov(ecx, MsrKernelGsBase);
            a.rdmsr();
            a.mov(Slot(2), rax);
            a.mov(Slot(3), rdx);
            a.mov(al, 0);
            a.@out(0x10, al);
            a.hlt();
        }, [new IdtVector(6, ResumeSkip: 2)]);
        Prepare(kvm, g, sce: false);
        var sregs = g.Vcpu.GetSregs();
        sregs.gs.@base = 0x1111_2222_3333;
        g.Vcpu.SetSregs(sregs);
        g.Vcpu.SetMsr(MsrKernelGsBase, 0x4444_5555_6666);
        ExpectIo(g, 0, "after SYSCALL and SWAPGS");
        var d = g.Single();
        Assert.Equal((6UL, (ulong?)null, LongModeGuest.CodeGpa, (ulong)KernelCode), (d.Vector, d.ErrorCode, d.Rip, d.Cs));
        Assert.Equal((0x5555_6666UL, 0x4444UL, 0x2222_3333UL, 0x1111UL), (ReadSlot(g, 0), ReadSlot(g, 1), ReadSlot(g, 2), ReadSlot(g, 3)));
        Assert.Equal(0x4444_5555_6666UL, g.Vcpu.GetSregs().gs.@base);
        Assert.Equal(0x1111_2222_3333UL, g.Vcpu.GetMsr(MsrKernelGsBase));
    }

    [ConformanceCase("SDM Vol. 2B RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE: with CR4.FSGSBASE they read and write FS.base and GS.base (KVM_GET_SREGS sees the writes, a 32-bit read zero-extends); without it #UD")]
    public static void fs_gs_base_instructions_follow_cr4_fsgsbase(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (bool enabled in new[] { true, false })
        {
            using var g = IdtGuest.Create(kvm, a =>
            {
                a.mov(rax, 0x7fff_1234_5000L);
                a.wrfsbase(rax);
                a.mov(rax, 0x10_2000L);
                a.wrgsbase(rax);
                a.rdfsbase(rbx);
                a.mov(Slot(0), rbx);
                a.mov(rcx, -1L);
                a.rdgsbase(ecx);
                a.mov(Slot(1), rcx);
                a.mov(al, 0);
                a.@out(0x10, al);
                a.hlt();
            }, [new IdtVector(6)]);
            Prepare(kvm, g);
            var sregs = g.Vcpu.GetSregs();
            sregs.cr4 = enabled ? sregs.cr4 | Cr4FsGsBase : sregs.cr4 & ~Cr4FsGsBase;
            g.Vcpu.SetSregs(sregs);
            if (!enabled && !HostDeviations.KvmPvmFsGsBaseWithoutCr4Bit(ctx.Target.IsReal))
            {
                var exit = g.Vcpu.Run();
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
                Assert.Equal(6UL, g.Single().Vector);
                continue;
            }
            ExpectIo(g, 0, "FS/GS base instructions");
            Assert.Empty(g.Deliveries);
            Assert.Equal((0x7fff_1234_5000UL, 0x10_2000UL), (ReadSlot(g, 0), ReadSlot(g, 1)));
            var after = g.Vcpu.GetSregs();
            Assert.Equal((0x7fff_1234_5000UL, 0x10_2000UL), (after.fs.@base, after.gs.@base));
        }
    }

    private static ulong FindEntry(IdtGuest g)
    {
        // mov [Slots + 64], rcx: 48 89 0C 25 <disp32>.
        uint disp = (uint)(Slots + 64);
        return FindBytes(g, [0x48, 0x89, 0x0c, 0x25, (byte)disp, (byte)(disp >> 8), (byte)(disp >> 16), (byte)(disp >> 24)]);
    }

    private static ulong FindBytes(IdtGuest g, byte[] pattern)
    {
        var code = new byte[0x1000];
        g.Guest.Memory.Read(LongModeGuest.CodeGpa, code);
        int at = code.AsSpan().IndexOf(pattern);
        Assert.True(at >= 0, "pattern not found in the guest code");
        return LongModeGuest.CodeGpa + (ulong)at;
    }
}
