// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>Register state as the text two kernels' answers are compared by (every field, so nothing hides).</summary>
internal static class FuzzText
{
    public static string Regs(in kvm_regs r) => string.Create(CultureInfo.InvariantCulture,
        $"rax={r.rax:X} rbx={r.rbx:X} rcx={r.rcx:X} rdx={r.rdx:X} rsi={r.rsi:X} rdi={r.rdi:X} rsp={r.rsp:X} rbp={r.rbp:X} " +
        $"r8={r.r8:X} r9={r.r9:X} r10={r.r10:X} r11={r.r11:X} r12={r.r12:X} r13={r.r13:X} r14={r.r14:X} r15={r.r15:X} " +
        $"rip={r.rip:X} rflags={r.rflags:X}");

    public static string Sregs(in kvm_sregs s)
    {
        var b = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        Segment(b, "cs", s.cs);
        Segment(b, "ds", s.ds);
        Segment(b, "es", s.es);
        Segment(b, "fs", s.fs);
        Segment(b, "gs", s.gs);
        Segment(b, "ss", s.ss);
        Segment(b, "tr", s.tr);
        Segment(b, "ldt", s.ldt);
        b.Append(ci, $"gdt={s.gdt.@base:X}/{s.gdt.limit:X} idt={s.idt.@base:X}/{s.idt.limit:X} ");
        b.Append(ci, $"cr0={s.cr0:X} cr2={s.cr2:X} cr3={s.cr3:X} cr4={s.cr4:X} cr8={s.cr8:X} efer={s.efer:X} apic_base={s.apic_base:X} ");
        b.Append(ci, $"irq={s.interrupt_bitmap[0]:X},{s.interrupt_bitmap[1]:X},{s.interrupt_bitmap[2]:X},{s.interrupt_bitmap[3]:X}");
        return b.ToString();
    }

    /// <summary>One CPUID entry, padding included (KVM_GET_CPUID2 returns it as stored).</summary>
    public static string CpuidEntry(in kvm_cpuid_entry2 e) => string.Create(CultureInfo.InvariantCulture,
        $"{e.function:X}.{e.index:X}/{e.flags:X}:{e.eax:X},{e.ebx:X},{e.ecx:X},{e.edx:X}/{e.padding[0]:X},{e.padding[1]:X},{e.padding[2]:X}");

    private static void Segment(StringBuilder b, string name, in kvm_segment g) =>
        b.Append(CultureInfo.InvariantCulture,
            $"{name}={g.@base:X}/{g.limit:X}/{g.selector:X}/t{g.type}p{g.present}d{g.dpl}db{g.db}s{g.s}l{g.l}g{g.g}a{g.avl}u{g.unusable} ");
}
