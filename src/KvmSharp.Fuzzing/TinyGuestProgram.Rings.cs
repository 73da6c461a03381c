// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

/// <summary>Where a ring-changing program's ring-0 entry stubs are, and the SFMASK its run programs.</summary>
/// <param name="Handler">The INT 0x80 / INT3 handler (the IDT's gates 0x80 and 3, DPL 3).</param>
/// <param name="GpHandler">The #GP handler (gate 13): resumes past the 1-byte HLT that raised it.</param>
/// <param name="PfHandler">The #PF handler (gate 14): resumes past the 7-byte load or store that raised it.</param>
/// <param name="SyscallEntry">The SYSCALL entry (LSTAR).</param>
/// <param name="SyscallMask">IA32_FMASK.</param>
internal sealed record RingEntries(ulong Handler, ulong GpHandler, ulong PfHandler, ulong SyscallEntry, ulong SyscallMask);

internal static partial class TinyGuestProgram
{
    /// <summary>
    /// Ring-3 selectors of the ring runs' GDT (TinyGuestRun.Rings.cs): data 0x28, 64-bit code 0x30, RPL 3 — Linux's
    /// __USER_DS and __USER_CS, which MOV from CS/SS reads at CPL 3 on kvm_pvm whatever the guest loaded (its ring 3
    /// runs in host user mode), so the fuzzer uses the same ones.
    /// </summary>
    public const ushort UserDataSelector = 0x28 | 3, UserCodeSelector = 0x30 | 3;

    /// <summary>Where the #PF return path loads or stores at CPL 3: MMIO page + 2 MiB, mapped without U/S (TinyGuestRun.Rings.cs).</summary>
    public const int SupervisorOffset = 0x20_0000;

    /// <summary>The interrupt vector the ring-3 code returns through (a DPL-3 interrupt gate; vector 3 is a DPL-3 trap gate).</summary>
    public const byte RingVector = 0x80;

    /// <summary>The ring stream of a seed, or null for the two seeds in three that change no rings.</summary>
    public static Random? RingStream(ulong seed)
    {
        // Mixed first: Random's first draw follows its seed, so neighbouring seeds would all decide alike.
        var x = new Random(unchecked((int)(seed * 0x9E37_79B9_7F4A_7C15 >> 32) ^ 0x3E3));
        return x.Next(3) == 0 ? x : null;
    }

    /// <summary>
    /// To ring 3 and back: IRETQ from a frame the program pushes (SS 0x23, RSP as it is, RFLAGS drawn, CS 0x2B, RIP of
    /// the next instruction; SDM Vol. 2A IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL": DS/ES/FS/GS with DPL &lt; 3 become null)
    /// or SYSRETQ (RCX = the next instruction, R11 = RFLAGS; CS = STAR[63:48] + 16, SS = + 8), then one to five
    /// instructions at CPL 3 on the user-accessible pages (data page, MMIO page, stack; never port I/O: IOPL stays 0),
    /// then back to ring 0 through an exception: HLT, #GP(0) at CPL 3 (SDM Vol. 2A HLT), or a load or store to a
    /// supervisor page, #PF with error code U | P (| W) (SDM Vol. 3A 5.6, 6.15). The CPU switches to TSS.RSP0 (SDM
    /// Vol. 3A 6.14.4) and the handler (<see cref="RingEntries"/>) IRETQs past the instruction at CPL 0 with the ring-3
    /// RSP, leaving the frame for the run to compare. With <paramref name="withReported"/> also INT3 / INT 0x80 through
    /// DPL-3 gates (kvm_pvm: KVM_EXIT_SHUTDOWN; HostDeviations.KvmPvmSoftwareInterruptsFail is the CPL-0 side), SYSCALL
    /// back (LSTAR jumps to RCX) and IOPL 3 in the IRETQ image (kvm_pvm keeps CPL 3 after SYSCALL and drops IOPL:
    /// HostDeviations.KvmPvmSyscallKeepsUserMode).
    /// </summary>
    private static void RingChange(Assembler a, Random x, bool withReported)
    {
        int r = x.Next(s_r64.Length);
        var user = a.CreateLabel();
        // Arithmetic flags and IF (kvm_pvm's ring 3 runs with IF set whatever the image says: PUSHFQ there reads it);
        // never TF (a #DB), NT (IRETQ #GP in 64-bit mode), DF or AC.
        long flags = 0x202 | (x.Next() & 0x8D5) | (withReported && x.Next(3) == 0 ? 0x3000 : 0);
        if (x.Next(4) == 0)
        {
            a.lea(rcx, __[user]);
            a.mov(r11, flags);
            a.sysretq();
        }
        else
        {
            a.mov(s_r64[r], rsp);
            a.push((int)UserDataSelector);
            a.push(s_r64[r]);
            a.push((int)flags);
            a.push((int)UserCodeSelector);
            a.lea(s_r64[r], __[user]);
            a.push(s_r64[r]);
            a.iretq();
        }
        a.Label(ref user);
        int steps = x.Next(1, 6);
        for (int i = 0; i < steps; i++) Ring3Step(a, x);
        switch (withReported ? x.Next(6) : x.Next(3))
        {
            case 0:
            {
                // 7 bytes whatever the register: REX, opcode, ModRM, disp32 (the #PF handler skips them).
                int r2 = x.Next(s_r32.Length);
                var at = __dword_ptr[r14 + SupervisorOffset + x.Next(0, 0x1000 - 4)];
                if (x.Next(2) == 0) a.mov(s_r32[r2], at); else a.mov(at, s_r32[r2]);
                break;
            }
            case 3: a.int3(); break;
            case 4: a.@int(RingVector); break;
            case 5: a.syscall(); break;
            default: a.hlt(); break;
        }
    }

    /// <summary>One instruction at CPL 3: a register move or arithmetic, a load or store (data page or MMIO), a push or pop, or a read of RFLAGS, CS or SS.</summary>
    private static void Ring3Step(Assembler a, Random x)
    {
        int r = x.Next(s_r64.Length);
        int s = x.Next(s_r64.Length);
        int size = 1 << x.Next(4);
        int off = x.Next(0, 0x1000 - size + 1);
        switch (x.Next(9))
        {
            case 0: a.mov(s_r64[r], (ulong)x.NextInt64()); break;
            case 1: a.add(s_r64[r], s_r64[s]); break;
            case 2: a.xor(s_r32[r], s_r32[s]); FixFlags64(a); break;
            case 3: Load64(a, x, r, size, r15 + off); break;
            case 4: Store64(a, x, r, size, r15 + off); break;
            case 5: if (x.Next(2) == 0) Load64(a, x, r, size, r14 + off); else Store64(a, x, r, size, r14 + off); break;
            case 6: if (x.Next(2) == 0) a.push(s_r64[r]); else a.pop(s_r64[r]); break;
            case 7:
                // RFLAGS as ring 3 sees it (IOPL, IF).
                a.pushfq();
                a.pop(s_r64[r]);
                break;
            default:
                if (x.Next(2) == 0) a.mov(s_r32[r], cs); else a.mov(s_r32[r], ss);
                break;
        }
    }

    /// <summary>
    /// The ring-0 stubs after the program: the gate handler builds an IRETQ frame below the CPU's (SS 0x10, the frame's
    /// RSP and RFLAGS, CS 0x08, the frame's RIP) and returns through it; the SYSCALL entry jumps to RCX. Encoded with
    /// their addresses.
    /// </summary>
    private static byte[] EncodeWithRingEntries(Assembler a, ulong codeGpa, Random ring, out RingEntries? entries)
    {
        var handler = a.CreateLabel();
        var gpHandler = a.CreateLabel();
        var pfHandler = a.CreateLabel();
        var syscallEntry = a.CreateLabel();
        a.Label(ref handler);
        ReturnToRing0(a, errorCode: false, skip: 0);
        a.Label(ref gpHandler);
        ReturnToRing0(a, errorCode: true, skip: 1);
        a.Label(ref pfHandler);
        ReturnToRing0(a, errorCode: true, skip: 7);
        a.Label(ref syscallEntry);
        a.jmp(rcx);
        using var stream = new MemoryStream();
        var result = a.Assemble(new StreamCodeWriter(stream), codeGpa, BlockEncoderOptions.ReturnNewInstructionOffsets);
        ulong mask = ring.Next(3) switch { 0 => 0, 1 => 0x4700, _ => 0x25_7FD5 };
        entries = new RingEntries(result.GetLabelRIP(handler), result.GetLabelRIP(gpHandler), result.GetLabelRIP(pfHandler),
            result.GetLabelRIP(syscallEntry), mask);
        return stream.ToArray();
    }

    /// <summary>
    /// A new IRETQ frame below the CPU's: SS 0x10, the frame's RSP and RFLAGS, CS 0x08, the frame's RIP plus
    /// <paramref name="skip"/>. The CPU's frame (RIP, CS, RFLAGS, RSP, SS, after the error code if any) stays for the
    /// run to compare; each push moves the next field to the same displacement.
    /// </summary>
    private static void ReturnToRing0(Assembler a, bool errorCode, int skip)
    {
        int d = errorCode ? 40 : 32;
        a.push(0x10);
        a.push(__qword_ptr[rsp + d]);
        a.push(__qword_ptr[rsp + d]);
        a.push((int)CodeSelector);
        a.push(__qword_ptr[rsp + d]);
        if (skip != 0) a.add(__qword_ptr[rsp], skip);
        a.iretq();
    }
}
