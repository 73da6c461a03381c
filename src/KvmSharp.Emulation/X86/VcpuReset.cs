// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c kvm_vcpu_reset(init_event=false) + vmx_vcpu_reset / init_vmcb: the power-on state KVM_GET_REGS
/// and KVM_GET_SREGS report for a fresh vCPU (compared with this host's kernel in a differential test).
/// </summary>
internal static class VcpuReset
{
    /// <summary>MSR_IA32_APICBASE at reset: APIC_DEFAULT_PHYS_BASE | ENABLE | BSP (vCPU 0 is the BSP).</summary>
    public const ulong DefaultApicBase = 0xfee0_0000UL | (1UL << 11) | (1UL << 8);

    public static void Apply(X86Cpu cpu)
    {
        Array.Clear(cpu.Gpr);
        // "RDX holds CPUID.0x1.EAX at RESET": no CPUID was set, so the fallback 0x600.
        cpu.Gpr[X86Cpu.RDX] = 0x600;
        cpu.Rip = 0xfff0;
        cpu.Rflags = X86Consts.RFLAGS_FIXED;

        var s = default(kvm_sregs);
        // CS: selector 0xf000, base 0xffff0000 (the reset vector is 0xfffffff0), code execute/read accessed.
        s.cs = Segment(0xffff0000, 0xf000, type: 11, system: 1);
        s.ds = s.es = s.fs = s.gs = s.ss = Segment(0, 0, type: 3, system: 1);
        // TR: busy 16-bit TSS (type 11); LDTR: type 2; both "system" descriptors (S = 0).
        s.tr = Segment(0, 0, type: 11, system: 0);
        s.ldt = Segment(0, 0, type: 2, system: 0);
        s.gdt.limit = 0xffff;
        s.idt.limit = 0xffff;
        // CR0 = X86_CR0_NW | X86_CR0_CD | X86_CR0_ET.
        s.cr0 = X86Consts.CR0_NW | X86Consts.CR0_CD | X86Consts.CR0_ET;
        s.apic_base = DefaultApicBase;
        cpu.Sregs = s;
    }

    private static kvm_segment Segment(ulong @base, ushort selector, byte type, byte system) => new()
    {
        @base = @base, limit = 0xffff, selector = selector, type = type, present = 1, s = system,
    };
}
