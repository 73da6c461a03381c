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
/// = 1 when the interrupted code had IF clear), then moves the saved RIP past the instruction and IRETQs. Anything else
/// (another exit reason, string I/O, a TDCALL that failed) goes to the VMM's exception stub of vector 20: the call ends
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
    public const int ExitReasonHlt = 12, ExitReasonIo = 30;

    private const ulong Long64 = BootCode + 0x100, GdtrAt = BootCode + 0x800;

    private static readonly (byte[] Code, ulong Start, ulong Ve) Assembled = Assemble();
    private static readonly byte[] Table = BuildIdt();
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
        int savedRax = (saved.Length - 1) * sizeof(ulong);
        int frameRip = saved.Length * sizeof(ulong);
        int frameRflags = frameRip + 2 * sizeof(ulong);
        Label io = a.CreateLabel("io"), halt = a.CreateLabel("halt"), advance = a.CreateLabel("advance"), fail = a.CreateLabel("fail");
        Label word = a.CreateLabel(), dword = a.CreateLabel(), merged = a.CreateLabel();

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
        a.jmp(fail);

        // I/O (SDM Vol. 3C Table 28-5): bits 2:0 size - 1, bit 3 direction (1 = IN), bit 4 string, bits 31:16 port.
        a.Label(ref io);
        a.test(edi, 0x10);
        a.jnz(fail);                      // INS/OUTS: Linux's handle_io refuses them too (-EIO)
        a.mov(r12d, edi);
        a.and(r12d, 7);
        a.inc(r12d);                      // 1, 2 or 4
        a.mov(r13d, edi);
        a.shr(r13d, 3);
        a.and(r13d, 1);
        a.xor(r13d, 1);                   // TDVMCALL direction: 1 = write (OUT)
        a.mov(r14d, edi);
        a.shr(r14d, 16);                  // port
        a.mov(r15, __qword_ptr[rsp + savedRax]);
        a.mov(ecx, ExposeR10ToR15);
        a.xor(r10d, r10d);
        a.mov(r11d, ExitReasonIo);
        a.xor(eax, eax);                  // TDG.VP.VMCALL
        a.tdcall();
        a.test(rax, rax);
        a.jnz(fail);
        a.test(r10, r10);
        a.jnz(fail);                      // a TDVMCALL status other than SUCCESS
        a.test(edi, 8);
        a.jz(advance);                    // OUT: done
        // IN: the value in R11 goes to AL, AX (upper bits kept) or EAX (zero-extended), as the instruction would.
        a.mov(rax, __qword_ptr[rsp + savedRax]);
        a.and(edi, 7);
        a.cmp(edi, 1);
        a.je(word);
        a.ja(dword);
        a.mov(al, r11b);
        a.jmp(merged);
        a.Label(ref word);
        a.mov(ax, r11w);
        a.jmp(merged);
        a.Label(ref dword);
        a.mov(eax, r11d);
        a.Label(ref merged);
        a.mov(__qword_ptr[rsp + savedRax], rax);
        a.jmp(advance);

        // HLT: TDG.VP.VMCALL<Instruction.HLT>, R12 = "interrupts blocked" (the interrupted code's IF clear).
        a.Label(ref halt);
        a.mov(r12, __qword_ptr[rsp + frameRflags]);
        a.shr(r12, 9);
        a.and(r12d, 1);
        a.xor(r12d, 1);
        a.mov(ecx, ExposeR10ToR15);
        a.xor(r10d, r10d);
        a.mov(r11d, ExitReasonHlt);
        a.xor(eax, eax);
        a.tdcall();
        a.test(rax, rax);
        a.jnz(fail);

        a.Label(ref advance);
        a.add(__qword_ptr[rsp + frameRip], rsi);
        for (int i = saved.Length - 1; i >= 0; i--) a.pop(saved[i]);
        a.iretq();

        // Not served: the registers back and on to the VMM's stub of vector 20, which reports the frame.
        a.Label(ref fail);
        for (int i = saved.Length - 1; i >= 0; i--) a.pop(saved[i]);
        a.jmp(ExceptionHandlers.Stub(VirtualizationException));
    }

    private static byte[] BuildIdt()
    {
        var table = new byte[Idt.Vectors * 16];
        for (int vector = 0; vector < Idt.Vectors; vector++)
        {
            ulong target = vector == VirtualizationException ? VeHandler : ExceptionHandlers.Stub(vector);
            (ulong low, ulong high) = Idt.Gate(target, Gdt.CodeSelector, Idt.Ist);
            BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(vector * 16), low);
            BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(vector * 16 + 8), high);
        }
        return table;
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
