// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// What ring-3 code of a 64-bit guest sees of its own state, and software interrupts through DPL-3 gates: MOV from CS
/// and SS (Intel SDM Vol. 2A MOV: "the segment selector in the segment register"), PUSHFQ (SDM Vol. 2A PUSHF: the
/// RFLAGS image, IF as IRETQ loaded it — IRET at CPL 0 restores IF from the image), and INT n / INT3 through a gate
/// whose DPL is 3 (SDM Vol. 3A 6.12.1.1: allowed at CPL 3; the handler runs at CPL 0 on TSS.RSP0 with the CPL-3
/// frame, RIP past the instruction). The guest enters ring 3 with IRETQ from CPL 0 (<see cref="IdtGuest.PrepareRing3"/>),
/// writes what it reads to a user page, then ends in UD2 (#UD through a halting handler).
/// </summary>
public static class UserModeObservations
{
    /// <summary>Linux's __USER_DS and __USER_CS (what kvm_pvm's ring 3 runs with), and the GDT entries 7/8 as DPL-3 data/code.</summary>
    private const ushort LinuxUserData = 0x28 | 3, LinuxUserCode = 0x30 | 3, OtherUserData = 0x38 | 3, OtherUserCode = 0x40 | 3;

    /// <summary>A user page (results), the ring-3 stack below <see cref="UserStackTop"/>, TSS.RSP0.</summary>
    private const ulong Slots = 0x8_9000, UserStackTop = 0x8_B000, Rsp0 = 0x2_0000;

    private const ulong If = 0x200;

    /// <summary>
    /// An INT n vector below 32 (IdtGuest's handlers cover the first 32 gates).
    /// </summary>
    private const int SoftVector = 0x1f;

    /// <summary>Linux's INT 0x80 (the fuzzer's ring vector): a gate whose handler is <see cref="SoftVector"/>'s.</summary>
    private const int LinuxSyscallVector = 0x80;

    private readonly record struct Outcome(KvmExitReason Exit, IReadOnlyList<Delivery> Deliveries, ulong Rip, ulong[] Slots, byte[] Code, string Where);

    /// <summary>
    /// IRETQ to <paramref name="userCode"/>:user (SS <paramref name="userData"/>, RSP <see cref="UserStackTop"/>,
    /// RFLAGS <paramref name="rflags"/>), then <paramref name="user"/> and UD2. Gates 3, 6, 13 and <see cref="SoftVector"/> halt; those in
    /// <paramref name="userGates"/> get DPL 3.
    /// </summary>
    private static Outcome Run(CaseContext ctx, ushort userCode, ushort userData, ulong rflags, Action<Assembler> user, params int[] userGates) =>
        Run(ctx, userCode, userData, rflags, user, false, userGates);

    private static Outcome Run(CaseContext ctx, ushort userCode, ushort userData, ulong rflags, Action<Assembler> user, bool trap3, params int[] userGates)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            IdtGuest.IretqToRing3(a, userCode, userData, UserStackTop, rflags);
            user(a);
            a.ud2();
        }, [new IdtVector(3, trap3 ? GateKind.Trap : GateKind.Interrupt), new IdtVector(6), new IdtVector(13), new IdtVector(SoftVector)], idtLimit: (LinuxSyscallVector + 1) * 16 - 1);
        // Gate 0x80 is a copy of gate SoftVector (IdtGuest's handlers cover the first 32 gates): its handler records SoftVector.
        var gate = new byte[16];
        g.Guest.Memory.Read(IdtGuest.IdtGpa + SoftVector * 16, gate);
        g.Guest.Memory.Write(IdtGuest.IdtGpa + LinuxSyscallVector * 16, gate);
        g.PrepareRing3(userCode, userData, Rsp0, Slots, UserStackTop - 0x1000);
        g.Guest.Memory.Fill(Slots, Layout.PageSize, 0);
        // The gate's type/attribute byte (SDM Vol. 3A Figure 6-8): DPL in bits 5–6.
        foreach (int v in userGates)
        {
            ulong attr = IdtGuest.IdtGpa + (ulong)v * 16 + 5;
            g.Guest.Memory.Write(attr, (byte)(g.Guest.Memory.Read<byte>(attr) | 0x60));
        }
        var exit = g.Vcpu.Run();
        var slots = new ulong[4];
        for (int n = 0; n < slots.Length; n++) slots[n] = g.Guest.Memory.Read<ulong>(Slots + (ulong)n * 8);
        var regs = g.Vcpu.GetRegs();
        var code = new byte[0x1000];
        g.Guest.Memory.Read(LongModeGuest.CodeGpa, code);
        return new Outcome(exit.Reason, g.Deliveries, regs.rip, slots, code,
            $"{exit.ToString()} at RIP 0x{regs.rip:X}, deliveries: {string.Join("; ", g.Deliveries)}");
    }

    /// <summary>The ring-3 code reaching its UD2: one #UD delivery, from the given CS.</summary>
    private static void AssertReachedUd2(Outcome o, ushort cs)
    {
        Assert.True(o.Exit == KvmExitReason.KVM_EXIT_HLT && o.Deliveries is [{ Vector: 6 } d] && d.Cs == cs, o.Where);
    }

    private static void ReadSelectors(Assembler a)
    {
        a.mov(eax, cs);
        a.mov(__dword_ptr[Slots], eax);
        a.mov(eax, ss);
        a.mov(__dword_ptr[Slots + 8], eax);
    }

    [ConformanceCase("Intel SDM Vol. 2A MOV (from a segment register): at CPL 3 after an IRETQ to CS 0x43 / SS 0x3b (DPL-3 code and data at GDT entries 8 and 7), MOV r32, CS and MOV r32, SS read 0x43 and 0x3b, zero-extended; with Linux's own user selectors 0x33 / 0x2b they read those")]
    public static void user_mode_mov_from_cs_and_ss_reads_the_loaded_selectors(CaseContext ctx)
    {
        var o = Run(ctx, OtherUserCode, OtherUserData, 2, ReadSelectors);
        if (HostDeviations.KvmPvmUserSelectorsReadAsLinux(ctx.Target.IsReal))
        {
            // kvm_pvm runs ring 3 in host user mode: MOV reads the host's __USER_CS / __USER_DS.
            Assert.True(o.Exit == KvmExitReason.KVM_EXIT_HLT && o.Deliveries is [{ Vector: 6 }], o.Where);
            Assert.Equal(((ulong)LinuxUserCode, (ulong)LinuxUserData), (o.Slots[0], o.Slots[1]));
        }
        else
        {
            AssertReachedUd2(o, OtherUserCode);
            Assert.Equal(((ulong)OtherUserCode, (ulong)OtherUserData), (o.Slots[0], o.Slots[1]));
        }
        o = Run(ctx, LinuxUserCode, LinuxUserData, 2, ReadSelectors);
        AssertReachedUd2(o, LinuxUserCode);
        Assert.Equal(((ulong)LinuxUserCode, (ulong)LinuxUserData), (o.Slots[0], o.Slots[1]));
    }

    [ConformanceCase("Intel SDM Vol. 2A IRET (IF restored from the image at CPL 0) and PUSHF: at CPL 3 after an IRETQ with RFLAGS 0x2, PUSHFQ reads IF = 0; with 0x202 it reads IF = 1")]
    public static void user_mode_pushfq_reads_the_if_the_iretq_image_set(CaseContext ctx)
    {
        static void ReadFlags(Assembler a)
        {
            a.pushfq();
            a.pop(rax);
            a.mov(__qword_ptr[Slots], rax);
        }
        var o = Run(ctx, LinuxUserCode, LinuxUserData, 2, ReadFlags);
        AssertReachedUd2(o, LinuxUserCode);
        ulong expected = HostDeviations.KvmPvmUserModeRunsWithIf(ctx.Target.IsReal) ? If : 0;
        Assert.True((o.Slots[0] & If) == expected, $"RFLAGS read at CPL 3: 0x{o.Slots[0]:X} ({o.Where})");
        o = Run(ctx, LinuxUserCode, LinuxUserData, 0x202, ReadFlags);
        AssertReachedUd2(o, LinuxUserCode);
        Assert.Equal(If, o.Slots[0] & If);
    }

    [ConformanceCase("Intel SDM Vol. 2A INT n/INT3, Vol. 3A 6.12.1.1 and 6.14.4: at CPL 3, INT 0x1f, INT 0x80 and INT3 through DPL-3 gates (interrupt gates; INT3 also a trap gate) are delivered to their handlers on TSS.RSP0 with the CPL-3 frame (RIP past the instruction, CS 0x33, SS 0x2b, RSP as it was)")]
    public static void user_mode_int_through_a_dpl_3_gate_reaches_its_handler(CaseContext ctx)
    {
        bool hostUd = HostDeviations.KvmPvmSoftwareInterruptAtCpl3IsUndefined(ctx.Target.IsReal);
        foreach (var (bytes, vector, trap) in new (byte[], int, bool)[]
                 { ([0xcd, SoftVector], SoftVector, false), ([0xcd, LinuxSyscallVector], LinuxSyscallVector, false), ([0xcc], 3, false), ([0xcc], 3, true) })
        {
            var o = Run(ctx, LinuxUserCode, LinuxUserData, 2, a => a.db(bytes), trap, vector);
            byte[] pattern = [.. bytes, 0x0f, 0x0b];
            int index = o.Code.AsSpan().LastIndexOf(pattern);
            Assert.True(index >= 0, "the INT is not in the guest code");
            ulong at = LongModeGuest.CodeGpa + (ulong)index;
            // Gate 0x80's handler is SoftVector's (Run).
            ulong recorded = vector == LinuxSyscallVector ? SoftVector : (ulong)vector, rip = at + (ulong)bytes.Length;
            // kvm_pvm: INT n at CPL 3 is #UD whatever the gate's DPL (RIP on the INT); INT3 is delivered as upstream.
            if (hostUd && vector != 3) (recorded, rip) = (6, at);
            Assert.True(o.Exit == KvmExitReason.KVM_EXIT_HLT && o.Deliveries is [{ ErrorCode: null } d] && d.Vector == recorded,
                $"INT 0x{vector:X}{(trap ? " (trap gate)" : "")}: {o.Where}");
            var frame = o.Deliveries[0];
            Assert.Equal((rip, (ulong)LinuxUserCode, (ulong)LinuxUserData, UserStackTop, Rsp0 - 40),
                (frame.Rip, frame.Cs, frame.Ss, frame.Rsp, frame.HandlerRsp));
        }
    }
}
