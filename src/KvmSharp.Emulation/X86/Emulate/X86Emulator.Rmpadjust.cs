// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Emulation.Arch;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SEV-SNP RMPADJUST (F3 0F 01 FE; AMD APM Vol. 3, RMPADJUST; Vol. 2, 15.36.7 "Virtual Machine Privilege Levels"):
/// RAX = the page's guest-virtual address, RCX[0] = page size (0 = 4 KiB, 1 = 2 MiB), RDX[7:0] = target VMPL,
/// RDX[15:8] = its permission mask, RDX[16] = VMSA (Linux: arch/x86/include/asm/sev.h rmpadjust(),
/// RMPADJUST_VMSA_PAGE_BIT; snp_set_vmsa / enforce_vmpl0 pass "attrs = 1 | RMPADJUST_VMSA_PAGE_BIT"). EAX = 0 success,
/// 1 FAIL_INPUT, 2 FAIL_PERMISSION, 6 FAIL_SIZEMISMATCH. KVM 6.18 runs every vCPU at VMPL0. The arithmetic flags are
/// left as they were (not modelled). The RMP part is <see cref="SnpRmpVmpl.Rmpadjust"/>.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The VMPL every vCPU runs at: KVM 6.18 has no way to start one at another (the VMSA's vmpl stays 0).</summary>
    private const int CurrentVmpl = 0;

    /// <summary>RMPADJUST; false for anything else.</summary>
    private bool TryRmpadjust(in Instruction i)
    {
        if (i.Mnemonic != Mnemonic.Rmpadjust) return false;
        Rmpadjust();
        return true;
    }

    private void Rmpadjust()
    {
        // APM Vol. 3 RMPADJUST, exceptions: #UD when the processor has no SEV-SNP or outside an SEV-SNP guest (the
        // instruction only exists for SNP guests; the host's RMPUPDATE / PSMASH are other instructions); #GP(0) at CPL > 0.
        if (!_kvm.Kernel.Config.VmTypes.Contains(Abi.KvmConstants.KVM_X86_SNP_VM) || !SnpRmp.IsSnpGuest(_kvm)) throw new GuestFault(UD_VECTOR);
        RequireCpl0();
        ulong va = _cpu.Gpr[X86Cpu.RAX];
        ulong size = _cpu.Gpr[X86Cpu.RCX];
        ulong attrs = _cpu.Gpr[X86Cpu.RDX];
        int target = (int)(attrs & 0xFF);
        byte perms = (byte)(attrs >> 8);
        bool vmsa = (attrs & (1UL << 16)) != 0;
        bool large = size == 1;
        // FAIL_INPUT: a page size other than 0/1, reserved RDX bits (63:17) or permission bits (7:5), a target VMPL
        // above 3, a 2 MiB form whose address has bits 20:12 set, or the VMSA bit on a 2 MiB page (a VMSA is one 4 KiB
        // page). Bits 11:0 name a byte in the page and are ignored: OVMF's SevSnpIsVmpl0 (MemEncryptSevLib
        // SnpPageStateChange / SecSnpSystemRamValidate.c) runs RMPADJUST on "STATIC UINT8 gVmpl0Data[4096]", which
        // nothing aligns (0xfffd6014 in Debian's OVMF 2025.02), and terminates the guest when it fails.
        ulong pageOffsetMask = large ? (2UL << 20) - 1 : (ulong)EmulatorConfig.PageSize - 1;
        if (size > 1 || (attrs >> 17) != 0 || (perms & ~SnpRmpVmpl.PermAll) != 0 || target > 3
            || (large && (va & pageOffsetMask & ~((ulong)EmulatorConfig.PageSize - 1)) != 0) || (vmsa && large))
        {
            WriteReg(Register.EAX, SnpRmpVmpl.RmpadjustFailInput);
            return;
        }
        // FAIL_PERMISSION: the target must be less privileged (numerically higher) than the current VMPL (the EDK2 /
        // Linux callers target VMPL1 so that a guest not at VMPL0 fails here).
        if (target <= CurrentVmpl)
        {
            WriteReg(Register.EAX, SnpRmpVmpl.RmpadjustFailPermission);
            return;
        }
        // The page as PVALIDATE finds it (X86Emulator.Pvalidate.cs OnSnpPrivatePage): the guest's translation, KVM's
        // fault-in, PSMASH of a 2 MiB entry for a 4 KiB RMPADJUST.
        va &= ~pageOffsetMask;
        int rc = OnSnpPrivatePage(va, large, (inode, index) => SnpRmpVmpl.Rmpadjust(inode, index, large, CurrentVmpl, target, perms, vmsa));
        WriteReg(Register.EAX, (ulong)rc);
    }
}
