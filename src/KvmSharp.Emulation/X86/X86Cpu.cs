// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The architectural state of one emulated x86 vCPU (the parts of struct kvm_vcpu_arch that KVM_GET/SET_REGS and
/// KVM_GET/SET_SREGS expose). General registers are indexed like the ModRM encoding: RAX=0 … R15=15.
/// </summary>
internal sealed class X86Cpu
{
    public const int RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;

    public X86Cpu(X86CpuModel model) => Model = model;

    /// <summary>The host CPU this vCPU runs on (the emulated kernel's <see cref="EmulatorConfig.X86Cpu"/>).</summary>
    public X86CpuModel Model { get; }

    public ulong[] Gpr { get; } = new ulong[16];

    public ulong Rip { get; set; }

    public ulong Rflags { get; set; }

    /// <summary>Segments, descriptor tables, control registers, EFER and APIC base, as KVM_SET_SREGS stored them.</summary>
    public kvm_sregs Sregs;

    /// <summary>The guest CPUID table (KVM_SET_CPUID2) and whether the vCPU has run, which freezes it.</summary>
    public CpuidTable Cpuid { get; } = new();

    /// <summary>The MSRs that live outside <see cref="Sregs"/> (KVM_GET/SET_MSRS, RDMSR/WRMSR).</summary>
    public MsrState Msrs { get; } = new();

    /// <summary>FPU image, XCR0, event queues, MP state and debug registers (KVM_GET/SET_FPU, _XCRS, _VCPU_EVENTS, _MP_STATE, _DEBUGREGS).</summary>
    public VcpuState State { get; } = new();

    /// <summary>
    /// The four PAE PDPTEs as x86.c load_pdptrs last loaded them (MOV to CR0/CR3/CR4, KVM_SET_SREGS): the PAE walk
    /// starts here, not from memory (Mmu/PageWalkLegacy.cs).
    /// </summary>
    public ulong[] Pdptrs { get; } = new ulong[4];

    public bool LongModeActive => (Sregs.efer & X86Consts.EFER_LMA) != 0;

    public bool Paging => (Sregs.cr0 & X86Consts.CR0_PG) != 0;

    public bool ProtectedMode => (Sregs.cr0 & X86Consts.CR0_PE) != 0;

    /// <summary>Code size of the current mode: 64 (long mode, CS.L), 32 (CS.D) or 16 (real mode, CS.D clear).</summary>
    public int Bitness => LongModeActive && Sregs.cs.l != 0 ? 64 : ProtectedMode && Sregs.cs.db != 0 ? 32 : 16;

    /// <summary>CPL: SS.DPL (arch/x86/kvm/vmx/vmx.c vmx_get_cpl); 0 in real mode.</summary>
    public int Cpl => ProtectedMode ? Sregs.ss.dpl & 3 : 0;

    public kvm_regs GetRegs() => new()
    {
        rax = Gpr[RAX], rbx = Gpr[RBX], rcx = Gpr[RCX], rdx = Gpr[RDX],
        rsi = Gpr[RSI], rdi = Gpr[RDI], rsp = Gpr[RSP], rbp = Gpr[RBP],
        r8 = Gpr[8], r9 = Gpr[9], r10 = Gpr[10], r11 = Gpr[11],
        r12 = Gpr[12], r13 = Gpr[13], r14 = Gpr[14], r15 = Gpr[15],
        rip = Rip, rflags = Rflags,
    };

    /// <summary>arch/x86/kvm/x86.c __set_regs: every field is taken; RFLAGS gets the always-one bit 1.</summary>
    public void SetRegs(in kvm_regs r)
    {
        Gpr[RAX] = r.rax; Gpr[RBX] = r.rbx; Gpr[RCX] = r.rcx; Gpr[RDX] = r.rdx;
        Gpr[RSI] = r.rsi; Gpr[RDI] = r.rdi; Gpr[RSP] = r.rsp; Gpr[RBP] = r.rbp;
        Gpr[8] = r.r8; Gpr[9] = r.r9; Gpr[10] = r.r10; Gpr[11] = r.r11;
        Gpr[12] = r.r12; Gpr[13] = r.r13; Gpr[14] = r.r14; Gpr[15] = r.r15;
        Rip = r.rip;
        // kvm_set_rflags(vcpu, regs->rflags | X86_EFLAGS_FIXED).
        Rflags = r.rflags | X86Consts.RFLAGS_FIXED;
    }
}
