// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// Guests that make one KVM hypercall: VMCALL (or VMMCALL) at the entry point, then HLT. The hypercall number and
/// arguments are put in RAX, RBX, RCX, RDX, RSI with KVM_SET_REGS (Documentation/virt/kvm/x86/hypercalls.rst), so the
/// instruction's address is the entry point and its length is known from the assembled bytes.
/// </summary>
public static class HypercallGuest
{
    /// <summary>VMCALL; HLT (or VMMCALL; HLT).</summary>
    public static Action<Assembler> Program(bool vmmcall = false) => a =>
    {
        if (vmmcall) a.vmmcall(); else a.vmcall();
        a.hlt();
    };

    /// <summary>The length of the hypercall instruction as Iced assembles it (3 in every mode).</summary>
    public static ulong InstructionLength(bool vmmcall = false) =>
        (ulong)LongModeGuest.Assemble(a => { if (vmmcall) a.vmmcall(); else a.vmcall(); }).Length;

    /// <summary>A 64-bit guest (<see cref="LongModeGuest"/>) about to make hypercall <paramref name="nr"/>.</summary>
    public static LongModeGuest LongMode(Kvm kvm, ulong nr, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, bool vmmcall = false)
    {
        var guest = LongModeGuest.Create(kvm, Program(vmmcall));
        try
        {
            SetArguments(guest.Vcpu, nr, a0, a1, a2, a3);
            return guest;
        }
        catch
        {
            guest.Dispose();
            throw;
        }
    }

    /// <summary>A real-mode guest (<see cref="RealModeGuest"/>, IP 0) about to make hypercall <paramref name="nr"/>.</summary>
    public static RealModeGuest RealMode(Kvm kvm, ulong nr, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0)
    {
        var guest = RealModeGuest.Create(kvm, Program());
        try
        {
            SetArguments(guest.Vcpu, nr, a0, a1, a2, a3);
            return guest;
        }
        catch
        {
            guest.Dispose();
            throw;
        }
    }

    private static void SetArguments(Vcpu vcpu, ulong nr, ulong a0, ulong a1, ulong a2, ulong a3)
    {
        kvm_regs regs = vcpu.GetRegs();
        regs.rax = nr;
        regs.rbx = a0;
        regs.rcx = a1;
        regs.rdx = a2;
        regs.rsi = a3;
        vcpu.SetRegs(regs);
    }
}
