// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>XGETBV and XSETBV over <see cref="VcpuState.Xcr0"/>, the XCR0 KVM_GET/SET_XCRS exchange.</summary>
internal sealed partial class X86Emulator
{
    /// <summary>
    /// XGETBV (Intel SDM Vol. 2C XGETBV; not intercepted by VMX/SVM, the CPU answers from the guest's XCR0):
    /// CR4.OSXSAVE = 0 → #UD; ECX = 0 → EDX:EAX = XCR0 (RAX/RDX upper halves cleared); ECX = 1 is XINUSE, which the
    /// emulator does not track: an emulation failure when the guest CPUID offers XGETBV_ECX_1, else #GP(0) like any
    /// other ECX. (This host's kvm_pvm ends every XGETBV in KVM_EXIT_INTERNAL_ERROR: KVM's emulator lacks it.)
    /// </summary>
    private void GetExtendedControlRegister()
    {
        if ((_cpu.Sregs.cr4 & CR4_OSXSAVE) == 0) throw new GuestFault(UD_VECTOR);
        uint ecx = (uint)_cpu.Gpr[X86Cpu.RCX];
        if (ecx == 1 && GuestFeatures.XgetbvEcx1(_cpu))
            throw new EmulationFailure("XGETBV ECX=1 (XINUSE) is not emulated", haveInstructionBytes: true);
        if (ecx != 0) throw new GuestFault(GP_VECTOR);
        ulong xcr0 = Vec.Xcr0;
        WriteReg(Register.EAX, xcr0 & 0xffff_ffff);
        WriteReg(Register.EDX, xcr0 >> 32);
    }

    /// <summary>
    /// XSETBV: CR4.OSXSAVE = 0 → #UD (the CPU checks it before the VM exit); CPL ≠ 0, ECX ≠ 0 (XCR_XFEATURE_ENABLED_MASK)
    /// or a value __kvm_set_xcr refuses → #GP(0) (arch/x86/kvm/x86.c kvm_emulate_xsetbv / __kvm_set_xcr: bit 0 set, AVX
    /// needs SSE, only bits of the guest's CPUID.0xD — all in <see cref="VcpuStateRules.SetXcr0"/>, shared with
    /// KVM_SET_XCRS). Observed here: 7 with the supported CPUID table is taken; 7 without a table, 5, or ECX = 1 are
    /// #GP(0) with RIP on the XSETBV; without CR4.OSXSAVE #UD.
    /// </summary>
    private void SetExtendedControlRegister()
    {
        if ((_cpu.Sregs.cr4 & CR4_OSXSAVE) == 0) throw new GuestFault(UD_VECTOR);
        RequireCpl0();
        if ((uint)_cpu.Gpr[X86Cpu.RCX] != 0) throw new GuestFault(GP_VECTOR);
        ulong value = (_cpu.Gpr[X86Cpu.RDX] << 32) | (uint)_cpu.Gpr[X86Cpu.RAX];
        if (!VcpuStateRules.SetXcr0(_cpu, value)) throw new GuestFault(GP_VECTOR);
    }
}
