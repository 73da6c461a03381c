// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Which fault wins when a return to ring 3 has both a bad stack segment and a non-canonical RIP — emulator only:
/// kvm_pvm's far RET to an outer ring ends in an emulation failure and its IRETQ skips the RIP check
/// (HostDeviations.KvmPvmFarReturnToOuterRingFails, KvmPvmIretqSkipsCsTypeAndRipChecks). Far RET follows Intel SDM
/// Vol. 2A RET "IA-32E-MODE-RETURN-OUTER-PRIVILEGE-LEVEL": SS checks, then the return RIP. IRETQ follows SDM Vol. 2A
/// IRET "IA-32e-MODE-RETURN", whose first test lists "return RIP is non-canonical" with a null CS as #GP(0), before the
/// CS descriptor and before RETURN-TO-OUTER-PRIVILEGE-LEVEL's SS checks.
/// </summary>
public sealed class OuterReturnCheckOrderTests
{
    private const ulong Gdt = 0x5000, Idt = 0x6000, GpHandler = 0x7000, SsHandler = 0x7100, NpHandler = 0x7200;
    private const ushort UserData = 0x28 | 3, UserCode = 0x30 | 3, UserDataAbsent = 0x38 | 3;
    private const ulong NonCanonical = 0x8000_0000_0000;

    /// <summary>
    /// A RawGuest in long mode at CPL 0 with GDT: 0x08 code, 0x10 data (DPL 0), 0x28 data and 0x30 64-bit code (DPL 3),
    /// 0x38 DPL-3 data not present; #GP, #SS and #NP handlers that pop the error code into RCX, put the vector in RDX
    /// and halt.
    /// </summary>
    private static RawGuest Guest(EmulatedKernel k, Action<Iced.Intel.Assembler> program)
    {
        var g = new RawGuest(k);
        g.LongMode(program);
        g.Write64(Gdt + 0x08, 0x00af_9b00_0000_ffffUL); // code: P, DPL 0, L
        g.Write64(Gdt + 0x10, 0x00cf_9300_0000_ffffUL); // data: P, DPL 0, writable
        g.Write64(Gdt + 0x28, 0x00cf_f300_0000_ffffUL); // data: P, DPL 3, writable
        g.Write64(Gdt + 0x30, 0x00af_fb00_0000_ffffUL); // code: P, DPL 3, L
        g.Write64(Gdt + 0x38, 0x00cf_7300_0000_ffffUL); // data: not present, DPL 3
        foreach (var (vector, handler) in new[] { (13UL, GpHandler), (12UL, SsHandler), (11UL, NpHandler) })
        {
            g.Write(handler, RawGuest.Assemble(64, handler, h =>
            {
                h.pop(rcx);
                h.mov(edx, (uint)vector);
                h.hlt();
            }));
            g.Write64(Idt + vector * 16, (handler & 0xffff) | (8UL << 16) | (0x8eUL << 40) | (((handler >> 16) & 0xffff) << 48));
            g.Write64(Idt + vector * 16 + 8, handler >> 32);
        }
        var s = g.Sregs;
        s.gdt = new kvm_dtable { @base = Gdt, limit = 0x3f };
        s.idt = new kvm_dtable { @base = Idt, limit = 32 * 16 - 1 };
        g.Sregs = s;
        return g;
    }

    /// <summary>Pushes the frame (SS, RSP, [RFLAGS,] CS, RIP) and runs IRETQ or REX.W far RET; returns (vector, error code).</summary>
    private static (ulong Vector, ulong Error) Return(bool iretq, ulong rip, ushort cs, ushort ss)
    {
        using var k = new EmulatedKernel();
        using var g = Guest(k, a =>
        {
            a.mov(rax, (long)ss);
            a.push(rax);
            a.mov(rax, 0x20_0000);
            a.push(rax);
            if (iretq) a.push(2);
            a.mov(rax, (long)cs);
            a.push(rax);
            a.mov(rax, unchecked((long)rip));
            a.push(rax);
            if (iretq) a.iretq();
            else a.db(0x48, 0xcb);
        });
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        return (g.Regs.rdx, g.Regs.rcx);
    }

    [Fact]
    public void Far_return_to_ring_3_checks_ss_before_a_non_canonical_rip()
    {
        // SDM Vol. 2A RET, IA-32E-MODE-RETURN-OUTER-PRIVILEGE-LEVEL: SS RPL/DPL ≠ RPL(CS) → #GP(selector) and SS not
        // present → #SS(selector) come before "IF the return instruction pointer is not within canonical address space".
        Assert.Equal((13UL, (ulong)(UserData & 0xfffc)), Return(iretq: false, NonCanonical, UserCode, UserData & 0xfffc));
        Assert.Equal((12UL, (ulong)(UserDataAbsent & 0xfffc)), Return(iretq: false, NonCanonical, UserCode, UserDataAbsent));
        // A good SS: the RIP's #GP(0).
        Assert.Equal((13UL, 0UL), Return(iretq: false, NonCanonical, UserCode, UserData));
        // The CS checks still come first: a data segment as CS is #GP(CS).
        Assert.Equal((13UL, (ulong)(UserData & 0xfffc)), Return(iretq: false, NonCanonical, UserData, UserDataAbsent));
    }

    [Fact]
    public void Iretq_to_ring_3_checks_a_non_canonical_rip_before_ss()
    {
        // SDM Vol. 2A IRET, IA-32e-MODE-RETURN: "return RIP is non-canonical" → #GP(0) among the first checks.
        Assert.Equal((13UL, 0UL), Return(iretq: true, NonCanonical, UserCode, UserData & 0xfffc));
        Assert.Equal((13UL, 0UL), Return(iretq: true, NonCanonical, UserCode, UserDataAbsent));
        // With a canonical RIP the SS checks decide.
        Assert.Equal((13UL, (ulong)(UserData & 0xfffc)), Return(iretq: true, 0x20_0000, UserCode, UserData & 0xfffc));
        Assert.Equal((12UL, (ulong)(UserDataAbsent & 0xfffc)), Return(iretq: true, 0x20_0000, UserCode, UserDataAbsent));
    }
}
