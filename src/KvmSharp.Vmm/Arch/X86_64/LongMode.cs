// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// Puts a vCPU straight into 64-bit long mode (no real-mode start-up code): paging on with <see cref="Layout.Pml4"/>,
/// PAE, LME|LMA, flat segments from <see cref="Gdt"/>. <see cref="Apply"/> leaves the IDT empty (limit 0: any exception
/// escalates to a triple fault, KVM_EXIT_SHUTDOWN), as the conformance guests want it; a micro-VM also calls
/// <see cref="ApplyExceptionTables"/>, so exceptions reach the VMM's handlers and are reported.
/// </summary>
public static class LongMode
{
    /// <summary>CR0.PE (bit 0): protected mode.</summary>
    public const ulong CR0_PE = 1UL << 0;
    /// <summary>CR0.MP (bit 1): monitor coprocessor (WAIT/FWAIT honour TS).</summary>
    public const ulong CR0_MP = 1UL << 1;
    /// <summary>CR0.ET (bit 4): extension type, always 1 on modern CPUs.</summary>
    public const ulong CR0_ET = 1UL << 4;
    /// <summary>CR0.NE (bit 5): x87 errors are reported as #MF, not through the legacy IRQ 13.</summary>
    public const ulong CR0_NE = 1UL << 5;
    /// <summary>CR0.WP (bit 16): read-only pages are read-only in ring 0 too.</summary>
    public const ulong CR0_WP = 1UL << 16;
    /// <summary>CR0.PG (bit 31): paging, through the tables at CR3.</summary>
    public const ulong CR0_PG = 1UL << 31;

    /// <summary>CR4.PAE (bit 5): 64-bit page-table entries, required for long mode.</summary>
    public const ulong CR4_PAE = 1UL << 5;
    /// <summary>OSFXSR and OSXMMEXCPT: compiled C may use SSE (memset, vectorised loops); without them that is #UD.</summary>
    public const ulong CR4_OSFXSR = 1UL << 9;
    /// <summary>CR4.OSXMMEXCPT (bit 10): unmasked SIMD floating-point exceptions raise #XM.</summary>
    public const ulong CR4_OSXMMEXCPT = 1UL << 10;

    /// <summary>EFER.LME (bit 8): long mode enabled.</summary>
    public const ulong EFER_LME = 1UL << 8;
    /// <summary>
    /// EFER.LMA (bit 10): long mode active; set directly because KVM_SET_SREGS loads the state as it is.
    /// </summary>
    public const ulong EFER_LMA = 1UL << 10;

    /// <summary>RFLAGS with only the always-one bit 1: interrupts off.</summary>
    public const ulong InitialRflags = 0x2;

    /// <summary>Applies long mode to <paramref name="sregs"/> (read from the vCPU first, to keep its APIC base and TR).</summary>
    public static void Apply(ref kvm_sregs sregs)
    {
        sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        sregs.cr3 = Layout.Pml4;
        sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
        sregs.efer = EFER_LME | EFER_LMA;
        sregs.gdt.@base = Layout.Gdt;
        sregs.gdt.limit = Gdt.Limit;
        sregs.idt.@base = 0;
        sregs.idt.limit = 0;
        sregs.cs = Gdt.Code;
        kvm_segment data = Gdt.Data;
        sregs.ds = data;
        sregs.es = data;
        sregs.fs = data;
        sregs.gs = data;
        sregs.ss = data;
    }

    /// <summary>
    /// Loads the VMM's IDT (<see cref="Idt"/>) and TR (the TSS of <see cref="Gdt.TaskState"/>, whose IST1 the gates use)
    /// into <paramref name="sregs"/>, after <see cref="Apply"/>. Their memory is written by <see cref="BootMemory"/>.
    /// </summary>
    public static void ApplyExceptionTables(ref kvm_sregs sregs)
    {
        sregs.idt.@base = Layout.Idt;
        sregs.idt.limit = Idt.Limit;
        sregs.tr = Gdt.TaskState;
    }

    /// <summary>Registers for entering a function at <paramref name="rip"/> with SysV arguments and a stack.</summary>
    public static kvm_regs EntryRegs(ulong rip, ulong rsp, ReadOnlySpan<ulong> args)
    {
        var regs = new kvm_regs { rip = rip, rsp = rsp, rflags = InitialRflags };
        // SysV AMD64 integer argument registers, in order.
        if (args.Length > 0) regs.rdi = args[0];
        if (args.Length > 1) regs.rsi = args[1];
        if (args.Length > 2) regs.rdx = args[2];
        if (args.Length > 3) regs.rcx = args[3];
        if (args.Length > 4) regs.r8 = args[4];
        if (args.Length > 5) regs.r9 = args[5];
        return regs;
    }
}
