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
}
