// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_X86_SETUP_MCE: sets the vCPU's IA32_MCG_CAP to <paramref name="mcgCap"/> — bits 7:0 the number of
    /// machine-check banks (1 … <see cref="Kvm.MaxMceBanks"/>), bits 23:16 MCG_EXT_CNT, and capability bits within
    /// <see cref="Kvm.GetSupportedMceCapabilities"/> — and enables the banks: IA32_MCi_CTL of each bank and, with
    /// <see cref="X86.McgCap.CtlP"/>, IA32_MCG_CTL become all ones (MCi_STATUS/ADDR/MISC keep their values). A new vCPU
    /// has 32 banks (128 bank MSRs a VMM must save); <c>SetupMce(1)</c> leaves one bank and no extras (4). Accepted
    /// before the first KVM_RUN and again after it. A refused call changes nothing.
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel has no KVM_CAP_MCE (arm64: EINVAL).</exception>
    /// <exception cref="KvmException">EINVAL: no banks, more than <see cref="Kvm.MaxMceBanks"/>, or a capability bit
    /// the kernel does not support.</exception>
    public void SetupMce(ulong mcgCap)
    {
        ulong value = mcgCap;
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_X86_SETUP_MCE, KvmCall.Bytes(ref value));
        if (KvmCall.IsError(rc))
            Kvm.ThrowMce(rc, "KVM_X86_SETUP_MCE", $"vcpu={Id} mcg_cap=0x{mcgCap:X}", Vm.CheckExtension(KvmCaps.KVM_CAP_MCE));
    }

    /// <summary>
    /// KVM_X86_SET_MCE: reports a machine-check error in bank <paramref name="bank"/> as the hardware would
    /// (x86.c kvm_vcpu_ioctl_x86_set_mce). <paramref name="status"/> is the new IA32_MCi_STATUS (VAL, bit 63, required;
    /// UC, bit 61, for an uncorrected error; PCC 57, S 56, AR 55). A corrected error, or an uncorrected one without
    /// S/AR/PCC and with <paramref name="mcgStatus"/> 0 (UCNA), only fills the bank. Any other uncorrected error also
    /// sets IA32_MCG_STATUS to <paramref name="mcgStatus"/> (RIPV 0, EIPV 1, MCIP 2) and queues #MC for the next
    /// <see cref="Run"/> — unless MCG_CTL or the bank's MCi_CTL is not all ones (the error is dropped: call
    /// <see cref="SetupMce"/> first, a new vCPU's MCi_CTL is 0), or MCG_STATUS.MCIP is already set or CR4.MCE is clear
    /// (the next Run ends in <see cref="KvmExitReason.KVM_EXIT_SHUTDOWN"/>, a triple fault). A bank that already held
    /// an error gets OVER (bit 62). A refused call changes nothing.
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel has no KVM_CAP_MCE (arm64: EINVAL).</exception>
    /// <exception cref="KvmException">EINVAL: <paramref name="bank"/> at or beyond the vCPU's MCG_CAP bank count, or
    /// no VAL in <paramref name="status"/>.</exception>
    public void InjectMachineCheck(byte bank, ulong status, ulong address = 0, ulong misc = 0, ulong mcgStatus = 0)
    {
        var mce = new kvm_x86_mce { bank = bank, status = status, addr = address, misc = misc, mcg_status = mcgStatus };
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_X86_SET_MCE, KvmCall.Bytes(ref mce));
        if (KvmCall.IsError(rc))
            Kvm.ThrowMce(rc, "KVM_X86_SET_MCE", $"vcpu={Id} bank={bank} status=0x{status:X} mcg_status=0x{mcgStatus:X}",
                Vm.CheckExtension(KvmCaps.KVM_CAP_MCE));
    }
}
