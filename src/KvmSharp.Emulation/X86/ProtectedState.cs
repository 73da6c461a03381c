// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The register-state ioctls a VM with protected state refuses ("[PATCH v5 07/17] KVM: x86: add fields to struct
/// kvm_arch for CoCo features", Paolo Bonzini, 2024-04-04, merged for 6.10; arch/x86/kvm/x86.c as of 6.18):
/// <list type="bullet">
/// <item>kvm_arch_vcpu_ioctl_get_regs / set_regs, get_sregs / set_sregs, KVM_GET/SET_SREGS2,
/// kvm_vcpu_ioctl_x86_get/set_debugregs and get/set_xcrs: <c>if (vcpu-&gt;kvm-&gt;arch.has_protected_state &amp;&amp;
/// vcpu-&gt;arch.guest_state_protected) return -EINVAL;</c></item>
/// <item>kvm_arch_vcpu_ioctl_get_fpu / set_fpu and kvm_vcpu_ioctl_x86_get_xsave2 / set_xsave: <c>if
/// (fpstate_is_confidential(&amp;vcpu-&gt;arch.guest_fpu)) return vcpu-&gt;kvm-&gt;arch.has_protected_state ? -EINVAL : 0;</c></item>
/// </list>
/// When the flags become true (kept per vCPU in Arch/X86/CocoState.cs): TDX at vCPU creation (vmx/tdx.c
/// tdx_vcpu_create: fpstate_set_confidential, and <c>guest_state_protected = !(attributes &amp; TDX_TD_ATTR_DEBUG)</c>,
/// always true as KVM does not support debug TDs; Arch/X86/TdxLaunch.cs). SEV-ES at KVM_SEV_LAUNCH_UPDATE_VMSA
/// (svm/sev.c __sev_launch_update_vmsa: fpstate_set_confidential, guest_state_protected = true; the FPU part moved
/// there from svm_vcpu_create by "[PATCH v4 09/15] KVM: SEV: sync FPU and AVX state at LAUNCH_UPDATE_VMSA time", the
/// same 6.10 series). SNP at KVM_SEV_SNP_LAUNCH_FINISH (snp_launch_update_vmsa: guest_state_protected only — it
/// does not make the fpstate confidential, so the FPU/XSAVE requests keep answering). Before those commands a SEV-ES
/// or SNP vCPU's registers are set with KVM_SET_REGS/SREGS and copied into the VMSA, as QEMU does
/// (Arch/X86/SevLaunch.cs, SnpLaunch.cs).
/// <para>
/// The check comes where the kernel makes it: a GET fails before anything is copied out, while KVM_SET_REGS,
/// KVM_SET_SREGS, KVM_SET_FPU (kvm_vcpu_ioctl: memdup_user first), KVM_SET_DEBUGREGS, KVM_SET_XSAVE and
/// KVM_SET_XCRS (kvm_arch_vcpu_ioctl: copy_from_user / memdup_user first) answer EFAULT for unreadable memory
/// before EINVAL. Nothing is changed by a refused call. This host has only VM type 0: emulator-only, checked by the
/// ProtectedVcpuState conformance cases.
/// </para>
/// </summary>
internal static class ProtectedState
{
    /// <summary>vcpu-&gt;kvm-&gt;arch.has_protected_state &amp;&amp; vcpu-&gt;arch.guest_state_protected.</summary>
    public static bool GuestStateProtected(KvmVcpu vcpu) =>
        vcpu.Kvm.ArchState.HasProtectedState && Arch.CocoState.Vcpu(vcpu).GuestStateProtected;

    /// <summary>fpstate_is_confidential(&amp;vcpu-&gt;arch.guest_fpu) on a VM with protected state.</summary>
    public static bool FpstateConfidential(KvmVcpu vcpu) =>
        vcpu.Kvm.ArchState.HasProtectedState && Arch.CocoState.Vcpu(vcpu).FpstateConfidential;

    /// <summary>The errno a register-state request gets on this vCPU, or null when the request goes on.</summary>
    public static long? Refuse(KvmVcpu vcpu, uint request, IoctlArg arg)
    {
        bool state = request == KvmIoctls.KVM_GET_REGS || request == KvmIoctls.KVM_SET_REGS ||
            request == KvmIoctls.KVM_GET_SREGS || request == KvmIoctls.KVM_SET_SREGS ||
            request == KvmIoctls.KVM_GET_DEBUGREGS || request == KvmIoctls.KVM_SET_DEBUGREGS ||
            request == KvmIoctls.KVM_GET_XCRS || request == KvmIoctls.KVM_SET_XCRS;
        bool fpu = request == KvmIoctls.KVM_GET_FPU || request == KvmIoctls.KVM_SET_FPU ||
            request == KvmIoctls.KVM_GET_XSAVE || request == KvmIoctls.KVM_GET_XSAVE2 || request == KvmIoctls.KVM_SET_XSAVE;
        if (state ? !GuestStateProtected(vcpu) : !fpu || !FpstateConfidential(vcpu)) return null;
        if (CopiesInFirst(request) && !Readable(arg, request)) return Err.EFAULT;
        return Err.EINVAL;
    }

    /// <summary>The SET requests whose struct is copied in before the protected-state check.</summary>
    private static bool CopiesInFirst(uint request) =>
        request == KvmIoctls.KVM_SET_REGS || request == KvmIoctls.KVM_SET_SREGS || request == KvmIoctls.KVM_SET_FPU ||
        request == KvmIoctls.KVM_SET_DEBUGREGS || request == KvmIoctls.KVM_SET_XSAVE || request == KvmIoctls.KVM_SET_XCRS;

    /// <summary>copy_from_user of _IOC_SIZE(request) bytes would succeed.</summary>
    private static bool Readable(IoctlArg arg, uint request) =>
        arg.IsPointer && arg.Buffer.Length >= (int)((request >> 16) & 0x3fff);
}
