// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The guest code of a TD micro-VM (<see cref="Confidential.TdBoot"/>, which explains the design), assembled with Iced:
/// <list type="bullet">
/// <item>The <b>boot stub</b> in the top page below 4 GiB (<see cref="BootCode"/>, a second small private guest_memfd
/// slot with the page directory that maps it, <see cref="BootDirectory"/>), where the TDX module starts the vCPU (32-bit
/// protected mode, paging off, RIP = <see cref="ResetVector"/>; EFER.LME is set in a TD): it loads the micro-VM's GDT
/// (<see cref="Layout.Gdt"/>), sets CR4.PAE|OSFXSR|OSXMMEXCPT, CR3 = <see cref="Layout.Pml4"/> and CR0.PG|MP|WP,
/// far-jumps to 64-bit code, loads the data segments and jumps to <see cref="Start"/>. As TdGuest does it
/// (src/KvmSharp.Conformance/Guests/TdGuest.cs BootStub).</item>
/// <item><see cref="Start"/>, in the private trampoline page after the <see cref="SnpDispatcher"/> (whose trampoline
/// and dispatch loop a TD uses unchanged): loads TR with the micro-VM's TSS (LTR needs it available, so the busy bit
/// <see cref="Gdt.TaskState"/> carries for KVM_SET_SREGS is cleared first), loads the TD's IDT (<see cref="IdtBytes"/>),
/// unmaps the boot page (PDPT entry 3, which only the boot needed) and enters the dispatcher.</item>
/// <item>The <b>#VE handler</b> (<see cref="VeHandler"/>, IDT vector 20). In a TD, IN, OUT and HLT are not executed: the
/// TDX module raises a virtualization exception and the guest asks the VMM itself (arch/x86/coco/tdx/tdx.c
/// virt_exception_kernel, handle_io, handle_halt). The handler saves every general register, asks
/// TDG.VP.VEINFO.GET (TDCALL leaf 3: RCX = exit reason, RDX = exit qualification, R10[31:0] = instruction length);
/// for EXIT_REASON_IO_INSTRUCTION (30) — not string I/O — it issues TDG.VP.VMCALL&lt;Instruction.IO&gt; (RAX = 0,
/// RCX = 0xFC00 exposing R10–R15, R10 = 0, R11 = 30, R12 = size, R13 = 1 for OUT, R14 = port, R15 = the value; an IN's
/// value comes back in R11 and goes to AL/AX/EAX), for EXIT_REASON_HLT (12) TDG.VP.VMCALL&lt;Instruction.HLT&gt; (R12
/// = 1 when the interrupted code had IF clear), then moves the saved RIP past the instruction and IRETQs.
/// <list type="bullet">
/// <item>String I/O (qualification bit 4: INS/OUTS, bit 5 REP): Linux TD guests never execute it (the kernel unrolls
/// it, CC_ATTR_GUEST_UNROLL_STRING_IO, and handle_io refuses it with -EIO), and KVM's TDVMCALL&lt;Instruction.IO&gt;
/// moves one element. So the handler unrolls it, as the kernel's unrolled ins/outs loops do: one
/// TDG.VP.VMCALL&lt;Instruction.IO&gt; per element (REP: RCX of them, none for RCX = 0), the element read from [RSI]
/// (OUTS) or written to [RDI] (INS), RSI/RDI stepping by the size (down with the interrupted code's DF) and RCX (REP)
/// dropping by one after each, so that a failure part-way leaves the registers of the elements done. 64-bit addresses
/// only: a 0x67 address-size prefix or an FS/GS override among the instruction's prefixes is not served. A REP OUTSB
/// of n bytes thus costs n exits in a TD (the guest SDK's kvms_write uses it on every micro-VM all the same).</item>
/// <item>EXIT_REASON_CPUID (10): tdx.c handle_cpuid — a leaf in [<see cref="HypervisorLeafFirst"/>,
/// <see cref="HypervisorLeafLast"/>] through TDG.VP.VMCALL&lt;Instruction.CPUID&gt; (R11 = 10, R12 = EAX, R13 = ECX;
/// EAX..EDX from R12..R15, zero-extended), any other leaf all zeros without asking.</item>
/// <item>EXIT_REASON_MSR_READ (31) / EXIT_REASON_MSR_WRITE (32): tdx.c read_msr / write_msr —
/// TDG.VP.VMCALL&lt;Instruction.RDMSR&gt; (R12 = ECX; R11 = the value, split into EDX:EAX) and
/// &lt;Instruction.WRMSR&gt; (R12 = ECX, R13 = EDX:EAX). A TDVMCALL status other than SUCCESS (KVM refuses the MSR:
/// TDVMCALL_STATUS_INVALID_OPERAND) is the guest's #GP(0) at the instruction — Linux's ve_raise_fault makes a failed
/// #VE a #GP — which the VMM's stub of vector 13 reports.</item>
/// </list>
/// Anything else (another exit reason, a TDCALL that failed, an I/O or CPUID TDVMCALL that returned an error) goes to the VMM's exception stub of vector 20: the call ends
/// as <see cref="GuestOutcome.Exception"/> with vector 20 at the instruction.</item>
/// </list>
/// The IDT's gates use IST1 (<see cref="Idt.Ist"/>) as every micro-VM's do, from the TSS <see cref="Start"/> loads: KVM
/// cannot set a TD's TR, so the TD loads it itself, and a stack overflow onto the guard page is a reported #PF.
/// </summary>
public static class TdRuntime
{
    /// <summary>Where the TD code starts in the trampoline page (the SNP dispatcher fills the part below).</summary>
    public const ulong Base = Layout.Trampoline + 0x800;

    /// <summary>The boot slot: two pages below 4 GiB, the page directory that maps the boot page, and the boot page.</summary>
    public const ulong BootSlot = 0xFFFF_E000;

    /// <summary>The boot slot's size (its guest_memfd's size).</summary>
    public const ulong BootSlotSize = 2 * Layout.PageSize;

    /// <summary>The page directory of the boot page (PDPT entry 3: 3–4 GiB; its entry 511 maps the top 2 MiB).</summary>
    public const ulong BootDirectory = BootSlot;

    /// <summary>The boot page: 32-bit code at its start, the GDTR it loads, and the reset vector's jump.</summary>
    public const ulong BootCode = BootSlot + Layout.PageSize;

    /// <summary>Where the TDX module starts a TD's vCPU (Intel TDX Module ABI, "Initial State of Guest TD VCPU").</summary>
    public const ulong ResetVector = 0xFFFF_FFF0;

    /// <summary>The #VE vector (SDM Vol. 3A Table 6-1: virtualization exception, no error code).</summary>
    public const int VirtualizationException = 20;

    /// <summary>TDCALL leaf TDG.VP.VMCALL.</summary>
    public const int TdgVpVmcall = 0;

    /// <summary>TDCALL leaf TDG.VP.VEINFO.GET.</summary>
    public const int TdgVpVeinfoGet = 3;

    /// <summary>RCX of a TDG.VP.VMCALL: R10–R15 exposed to the VMM (bits 10–15), as Linux's TDVMCALLs do.</summary>
    public const int ExposeR10ToR15 = 0xFC00;

    /// <summary>VMX exit reasons (SDM Vol. 3C Appendix C) the handler serves.</summary>
    public const int ExitReasonCpuid = 10, ExitReasonHlt = 12, ExitReasonIo = 30, ExitReasonMsrRead = 31, ExitReasonMsrWrite = 32;

    /// <summary>
    /// The CPUID leaves the #VE handler asks the VMM about (Linux tdx.c handle_cpuid: "Only allow VMM to control range
    /// reserved for hypervisor communication"): 0x4000_0000 to 0x4FFF_FFFF. Any other leaf that raises #VE reads all
    /// zeros, as the CPU answers a leaf it does not support.
    /// </summary>
    public const uint HypervisorLeafFirst = 0x4000_0000, HypervisorLeafLast = 0x4FFF_FFFF;

    private const ulong Long64 = BootCode + 0x100, GdtrAt = BootCode + 0x800;

    private static readonly (byte[] Code, ulong Start, ulong Ve) Assembled = Assemble();
    private static readonly byte[] Table = Idt.WithHandler(VirtualizationException, VeHandler);
    private static readonly byte[] Boot = BuildBootSlot();

    /// <summary>The TD code, as placed at <see cref="Base"/>.</summary>
    public static ReadOnlySpan<byte> Bytes => Assembled.Code;

    /// <summary>The 64-bit entry the boot stub jumps to: loads TR and the IDT, unmaps the boot page, enters the dispatcher.</summary>
    public static ulong Start => Assembled.Start;

    /// <summary>The #VE handler (IDT vector 20).</summary>
    public static ulong VeHandler => Assembled.Ve;

    /// <summary>
    /// The TD's IDT (at <see cref="Layout.Idt"/>): the exception stubs of <see cref="ExceptionHandlers"/> on IST1, and
    /// vector 20 to <see cref="VeHandler"/>.
    /// </summary>
    public static ReadOnlySpan<byte> IdtBytes => Table;

    /// <summary>The two pages of the boot slot: <see cref="BootDirectory"/> and <see cref="BootCode"/>.</summary>
    public static ReadOnlySpan<byte> BootSlotBytes => Boot;

    /// <summary>
    /// Writes the TD's part of the VMM pages into <paramref name="memory"/> after <see cref="BootMemory"/> wrote the
    /// rest: the dispatcher (<see cref="SnpDispatcher.Write"/>), the TD code at <see cref="Base"/>, the TD's IDT, and
    /// PDPT entry 3 to the boot directory.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        SnpDispatcher.Write(memory);
        memory.Write(Base, Assembled.Code);
        memory.Write(Layout.Idt, Table);
        memory.Write(Layout.Pdpt + 3 * sizeof(ulong), BootDirectory | PageTables.Present | PageTables.Writable);
    }

    private static (byte[], ulong, ulong) Assemble()
    {
        if ((ulong)SnpDispatcher.Bytes.Length > Base - Layout.Trampoline)
            throw new InvalidOperationException($"the dispatcher takes {SnpDispatcher.Bytes.Length} bytes, more than 0x{Base - Layout.Trampoline:X}");
        var a = new Assembler(64);
        Label start = a.CreateLabel("start"), ve = a.CreateLabel("ve"), idtr = a.CreateLabel("idtr");

        // Start: TR (the descriptor's busy bit, type bit 1 in byte 5, cleared: LTR takes an available TSS and sets it),
        // the IDT, the boot page unmapped (a TLB flush by reloading CR3), then the dispatcher, which sets RSP.
        a.Label(ref start);
        a.and(__byte_ptr[Layout.Gdt + Gdt.TssSelector + 5], unchecked((sbyte)~2));
        a.mov(ax, Gdt.TssSelector);
        a.ltr(ax);
        a.lidt(__[idtr]);
        a.mov(rax, Layout.Pdpt + 3 * sizeof(ulong));
        a.mov(__qword_ptr[rax], 0);
        a.mov(rax, cr3);
        a.mov(cr3, rax);
        a.mov(rax, SnpDispatcher.Dispatch);
        a.jmp(rax);

        AssembleVeHandler(a, ref ve);

        a.Label(ref idtr);
        var descriptor = new byte[10];
        BinaryPrimitives.WriteUInt16LittleEndian(descriptor, Idt.Limit);
        BinaryPrimitives.WriteUInt64LittleEndian(descriptor.AsSpan(2), Layout.Idt);
        a.db(descriptor);

        using var stream = new MemoryStream();
        var result = a.Assemble(new StreamCodeWriter(stream), Base, BlockEncoderOptions.ReturnNewInstructionOffsets);
        byte[] code = stream.ToArray();
        if ((ulong)code.Length > SnpDispatcher.EntryLimit - Base) throw new InvalidOperationException($"the TD runtime takes {code.Length} bytes, more than its part of the page");
        return (code, result.GetLabelRIP(start), result.GetLabelRIP(ve));
    }

    /// <summary>
    /// The #VE handler (arch/x86/coco/tdx/tdx.c tdx_get_ve_info, virt_exception_kernel, handle_io, handle_halt).
    /// Frame on entry (no error code): RIP, CS, RFLAGS, RSP, SS.
    /// </summary>
    private static void AssembleVeHandler(Assembler a, ref Label ve)
    {
        AssemblerRegister64[] saved = [rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15];
        int Saved(AssemblerRegister64 r) => (saved.Length - 1 - Array.IndexOf(saved, r)) * sizeof(ulong);
        int savedRax = Saved(rax);
        int frameRip = saved.Length * sizeof(ulong);
        int frameRflags = frameRip + 2 * sizeof(ulong);
        Label io = a.CreateLabel("io"), halt = a.CreateLabel("halt"), advance = a.CreateLabel("advance"), fail = a.CreateLabel("fail");
        Label stringIo = a.CreateLabel("string_io"), cpuid = a.CreateLabel("cpuid"), rdmsr = a.CreateLabel("rdmsr");
        Label wrmsr = a.CreateLabel("wrmsr"), generalProtection = a.CreateLabel("gp");

        a.Label(ref ve);
        foreach (var r in saved) a.push(r);
        // TDG.VP.VEINFO.GET: RCX = exit reason, RDX = exit qualification, R10[31:0] = instruction length.
        a.mov(eax, TdgVpVeinfoGet);
        a.tdcall();
        a.test(rax, rax);
        a.jnz(fail);
        a.mov(esi, r10d);                 // the instruction length, kept in a register no TDVMCALL exposes
        a.mov(rdi, rdx);                  // the exit qualification, likewise
        a.cmp(ecx, ExitReasonIo);
        a.je(io);
        a.cmp(ecx, ExitReasonHlt);
        a.je(halt);
        a.cmp(ecx, ExitReasonCpuid);
        a.je(cpuid);
        a.cmp(ecx, ExitReasonMsrRead);
        a.je(rdmsr);
        a.cmp(ecx, ExitReasonMsrWrite);
        a.je(wrmsr);
        a.jmp(fail);

        // I/O (SDM Vol. 3C Table 28-5): bits 2:0 size - 1, bit 3 direction (1 = IN), bit 4 string, bits 31:16 port.
        a.Label(ref io);
        a.test(edi, 0x10);
        a.jnz(stringIo);                  // INS/OUTS: unrolled (Linux's handle_io refuses them: its kernel unrolls them)
        a.mov(r12d, edi);
        a.and(r12d, 7);
        a.inc(r12d);                      // 1, 2 or 4
        IoDirectionAndPort(a);
        a.mov(r15, __qword_ptr[rsp + savedRax]);
        VpVmcall(a, ExitReasonIo, fail, refused: fail);
        a.test(edi, 8);
        a.jz(advance);                    // OUT: done
        // IN: the value in R11 goes to AL, AX (upper bits kept) or EAX (zero-extended), as the instruction would.
        a.mov(rax, __qword_ptr[rsp + savedRax]);
        a.and(edi, 7);
        a.cmp(edi, 1);
        Label merged = a.CreateLabel();
        BySize(a, () => a.mov(al, r11b), () => a.mov(ax, r11w), () => a.mov(eax, r11d), merged);
        a.Label(ref merged);
        a.mov(__qword_ptr[rsp + savedRax], rax);
        a.jmp(advance);

        // HLT: TDG.VP.VMCALL<Instruction.HLT>, R12 = "interrupts blocked" (the interrupted code's IF clear).
        a.Label(ref halt);
        a.mov(r12, __qword_ptr[rsp + frameRflags]);
        a.shr(r12, 9);
        a.and(r12d, 1);
        a.xor(r12d, 1);
        VpVmcall(a, ExitReasonHlt, fail, refused: null);

        AssembleStringIo(a, stringIo, advance, fail, Saved, frameRip, frameRflags);
        AssembleCpuidAndMsrs(a, cpuid, rdmsr, wrmsr, advance, fail, generalProtection, Saved);

        a.Label(ref advance);
        a.add(__qword_ptr[rsp + frameRip], rsi);
        for (int i = saved.Length - 1; i >= 0; i--) a.pop(saved[i]);
        a.iretq();

        // A failed RDMSR/WRMSR: the guest's #GP(0) at the instruction (the stub of vector 13 takes an error code).
        a.Label(ref generalProtection);
        for (int i = saved.Length - 1; i >= 0; i--) a.pop(saved[i]);
        a.push(0);
        a.jmp(ExceptionHandlers.Stub(13));

        // Not served: the registers back and on to the VMM's stub of vector 20, which reports the frame.
        a.Label(ref fail);
        for (int i = saved.Length - 1; i >= 0; i--) a.pop(saved[i]);
        a.jmp(ExceptionHandlers.Stub(VirtualizationException));
    }

    /// <summary>
    /// INS/OUTS unrolled into one TDG.VP.VMCALL&lt;Instruction.IO&gt; per element. On entry RSI = the instruction's
    /// length, RDI = the exit qualification. RBX, RBP, R8 and R9 (which no TDVMCALL exposes) hold the elements left, the
    /// stride, the size and the opcode's address.
    /// </summary>
    private static void AssembleStringIo(Assembler a, Label stringIo, Label advance, Label fail,
        Func<AssemblerRegister64, int> saved, int frameRip, int frameRflags)
    {
        Label scan = a.CreateLabel(), scanned = a.CreateLabel(), counted = a.CreateLabel();
        Label element = a.CreateLabel(), loaded = a.CreateLabel(), written = a.CreateLabel();
        a.Label(ref stringIo);
        // The prefixes (every byte before the one-byte opcode): 0x67 (ESI/EDI/ECX) and FS/GS (a base) are not served.
        a.mov(r9, __qword_ptr[rsp + frameRip]);
        a.lea(rbx, __[r9 + rsi - 1]);
        a.Label(ref scan);
        a.cmp(r9, rbx);
        a.jae(scanned);
        a.movzx(eax, __byte_ptr[r9]);
        a.cmp(al, 0x67);
        a.je(fail);
        a.cmp(al, 0x64);
        a.je(fail);
        a.cmp(al, 0x65);
        a.je(fail);
        a.inc(r9);
        a.jmp(scan);
        a.Label(ref scanned);
        // R8 = the size; RBX = the elements (REP: RCX, else 1); RBP = the stride (-size with DF).
        a.mov(r8d, edi);
        a.and(r8d, 7);
        a.inc(r8d);
        a.mov(ebx, 1);
        a.test(edi, 0x20);
        a.jz(counted);
        a.mov(rbx, __qword_ptr[rsp + saved(rcx)]);
        a.Label(ref counted);
        a.mov(rbp, r8);
        a.bt(__dword_ptr[rsp + frameRflags], 10);
        a.jnc(element);
        a.neg(rbp);

        a.Label(ref element);
        a.test(rbx, rbx);
        a.jz(advance);
        // OUTS: R15 = the element at [RSI].
        a.xor(r15d, r15d);
        a.test(edi, 8);
        a.jnz(loaded);
        a.mov(r9, __qword_ptr[rsp + saved(rsi)]);
        a.cmp(r8d, 2);
        BySize(a, () => a.movzx(r15d, __byte_ptr[r9]), () => a.movzx(r15d, __word_ptr[r9]), () => a.mov(r15d, __dword_ptr[r9]), loaded);
        a.Label(ref loaded);
        a.mov(r12, r8);
        IoDirectionAndPort(a);
        VpVmcall(a, ExitReasonIo, fail, refused: fail);
        // INS: R11's element to [RDI]; then RDI (INS) or RSI (OUTS) by the stride, RCX (REP) by one.
        a.test(edi, 8);
        a.jz(written);
        a.mov(r9, __qword_ptr[rsp + saved(rdi)]);
        a.cmp(r8d, 2);
        BySize(a, () => a.mov(__byte_ptr[r9], r11b), () => a.mov(__word_ptr[r9], r11w), () => a.mov(__dword_ptr[r9], r11d), written);
        a.Label(ref written);
        StringIoEmit.AdvanceIndexRegister(a, edi, 8, rbp, saved);
        a.dec(rbx);
        a.test(edi, 0x20);
        a.jz(element);
        a.dec(__qword_ptr[rsp + saved(rcx)]);
        a.jmp(element);
    }

    /// <summary>
    /// CPUID, RDMSR and WRMSR (tdx.c handle_cpuid, read_msr, write_msr). On entry RSI = the instruction's length.
    /// </summary>
    private static void AssembleCpuidAndMsrs(Assembler a, Label cpuid, Label rdmsr, Label wrmsr, Label advance, Label fail,
        Label generalProtection, Func<AssemblerRegister64, int> saved)
    {
        Label zeros = a.CreateLabel(), msrCall = a.CreateLabel();
        // CPUID: EAX in the hypervisor range → TDVMCALL<Instruction.CPUID>(R12 = EAX, R13 = ECX) → R12..R15.
        a.Label(ref cpuid);
        a.mov(eax, __dword_ptr[rsp + saved(rax)]);
        a.lea(edx, __[rax - unchecked((int)HypervisorLeafFirst)]);
        a.cmp(edx, (int)(HypervisorLeafLast - HypervisorLeafFirst));
        a.ja(zeros);
        a.mov(r12d, eax);
        a.mov(r13d, __dword_ptr[rsp + saved(rcx)]);
        VpVmcall(a, ExitReasonCpuid, fail, refused: fail);
        foreach ((AssemblerRegister64 r, AssemblerRegister32 from) in new[] { (rax, r12d), (rbx, r13d), (rcx, r14d), (rdx, r15d) })
        {
            a.mov(eax, from);
            a.mov(__qword_ptr[rsp + saved(r)], rax);
        }
        a.jmp(advance);
        a.Label(ref zeros);
        foreach (var r in new[] { rax, rbx, rcx, rdx }) a.mov(__qword_ptr[rsp + saved(r)], 0);
        a.jmp(advance);

        // RDMSR: R12 = ECX; WRMSR: R12 = ECX, R13 = EDX:EAX.
        a.Label(ref rdmsr);
        a.mov(r11d, ExitReasonMsrRead);
        a.jmp(msrCall);
        a.Label(ref wrmsr);
        a.mov(r13d, __dword_ptr[rsp + saved(rdx)]);
        a.shl(r13, 32);
        a.mov(eax, __dword_ptr[rsp + saved(rax)]);
        a.or(r13, rax);
        a.mov(r11d, ExitReasonMsrWrite);
        a.Label(ref msrCall);
        a.mov(r12d, __dword_ptr[rsp + saved(rcx)]);
        a.mov(r9d, r11d);                 // which of the two, kept where no TDVMCALL exposes it
        VpVmcall(a, subFunction: null, fail, refused: generalProtection); // KVM refused the MSR: ve_raise_fault → #GP
        a.cmp(r9d, ExitReasonMsrWrite);
        a.je(advance);
        a.mov(eax, r11d);
        a.mov(__qword_ptr[rsp + saved(rax)], rax);
        a.mov(rax, r11);
        a.shr(rax, 32);
        a.mov(__qword_ptr[rsp + saved(rdx)], rax);
        a.jmp(advance);
    }

    /// <summary>
    /// TDG.VP.VMCALL (TDCALL leaf 0) with R10–R15 exposed, R10 = 0 (a standard TDVMCALL) and R11 = <paramref name="subFunction"/>
    /// (null: the caller set R11). A failed TDCALL goes to <paramref name="fail"/>; a TDVMCALL status other than SUCCESS
    /// (R10) goes to <paramref name="refused"/>, or is not looked at when null (HLT). Every exit the #VE handler serves
    /// asks the VMM this way (tdx.c __tdx_hypercall).
    /// </summary>
    private static void VpVmcall(Assembler a, int? subFunction, Label fail, Label? refused)
    {
        a.mov(ecx, ExposeR10ToR15);
        a.xor(r10d, r10d);
        if (subFunction is int leaf) a.mov(r11d, leaf);
        a.xor(eax, eax);
        a.tdcall();
        a.test(rax, rax);
        a.jnz(fail);
        if (refused is Label status)
        {
            a.test(r10, r10);
            a.jnz(status);
        }
    }

    /// <summary>
    /// The I/O exit qualification in EDI to TDG.VP.VMCALL&lt;Instruction.IO&gt;'s R13 = 1 for a write (OUT/OUTS; bit 3
    /// is 1 for IN) and R14 = the port (bits 31:16); IN/OUT and INS/OUTS decode it alike.
    /// </summary>
    private static void IoDirectionAndPort(Assembler a)
    {
        a.mov(r13d, edi);
        a.shr(r13d, 3);
        a.and(r13d, 1);
        a.xor(r13d, 1);
        a.mov(r14d, edi);
        a.shr(r14d, 16);
    }

    /// <summary>
    /// After a compare of the access size with 2-byte (flags set by the caller: below = 1 byte, equal = 2, above = 4),
    /// emits the one of <paramref name="byteForm"/>, <paramref name="wordForm"/>, <paramref name="dwordForm"/> that
    /// matches: the #VE handler moves an I/O value of 1, 2 or 4 bytes in three places (IN into RAX, OUTS from memory,
    /// INS to memory). Each form then goes to <paramref name="done"/>, which the caller places right after (Iced allows
    /// one label per instruction, and the callers' own labels stand there).
    /// </summary>
    private static void BySize(Assembler a, Action byteForm, Action wordForm, Action dwordForm, Label done)
    {
        Label word = a.CreateLabel(), dword = a.CreateLabel();
        a.je(word);
        a.ja(dword);
        byteForm();
        a.jmp(done);
        a.Label(ref word);
        wordForm();
        a.jmp(done);
        a.Label(ref dword);
        dwordForm();
    }

    private static byte[] BuildBootSlot()
    {
        var slot = new byte[BootSlotSize];
        // The boot directory: entry 511 maps the top 2 MiB below 4 GiB (present, writable, 2 MiB page).
        BinaryPrimitives.WriteUInt64LittleEndian(slot.AsSpan(511 * sizeof(ulong)),
            0xFFE0_0000UL | PageTables.Present | PageTables.Writable | PageTables.LargePage);
        Span<byte> page = slot.AsSpan((int)Layout.PageSize);
        // The GDTR the stub loads: the micro-VM's GDT.
        BinaryPrimitives.WriteUInt16LittleEndian(page[(int)(GdtrAt - BootCode)..], Gdt.Limit);
        BinaryPrimitives.WriteUInt32LittleEndian(page[(int)(GdtrAt - BootCode + 2)..], (uint)Layout.Gdt);

        GuestCode.Assemble(a =>
        {
            a.lgdt(__[(uint)GdtrAt]);
            a.mov(eax, cr4);
            a.or(eax, (int)(LongMode.CR4_PAE | LongMode.CR4_OSFXSR | LongMode.CR4_OSXMMEXCPT));
            a.mov(cr4, eax);
            a.mov(eax, (uint)Layout.Pml4);
            a.mov(cr3, eax);
            a.mov(eax, cr0);
            a.or(eax, unchecked((int)(LongMode.CR0_PG | LongMode.CR0_MP | LongMode.CR0_WP)));
            a.mov(cr0, eax);
            a.jmp(Gdt.CodeSelector, (uint)Long64);
        }, 32, BootCode).CopyTo(page);
        GuestCode.Assemble(a =>
        {
            a.mov(ax, Gdt.DataSelector);
            a.mov(ds, ax);
            a.mov(es, ax);
            a.mov(fs, ax);
            a.mov(gs, ax);
            a.mov(ss, ax);
            a.mov(rax, Start);
            a.jmp(rax);
        }, 64, Long64).CopyTo(page[(int)(Long64 - BootCode)..]);
        GuestCode.Assemble(a => a.jmp(BootCode), 32, ResetVector).CopyTo(page[(int)(ResetVector - BootCode)..]);
        return slot;
    }
}
