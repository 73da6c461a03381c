// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// KVM_GET_DEVICE_ATTR / KVM_HAS_DEVICE_ATTR on /dev/kvm (x86.c kvm_arch_dev_ioctl → kvm_x86_dev_get_attr,
/// kvm_x86_dev_has_attr, __kvm_x86_dev_get_attr; since 5.17): group KVM_X86_GRP_SYSTEM has
/// KVM_X86_XCOMP_GUEST_SUPP = kvm_caps.supported_xcr0 (how a VMM learns which XSAVE features it may offer); any other
/// group goes to the vendor module's dev_get_attr (svm.c sev_dev_get_attr: KVM_X86_GRP_SEV /
/// KVM_X86_SEV_VMSA_FEATURES), or ENXIO without one. There is no KVM_SET_DEVICE_ATTR on /dev/kvm (EINVAL).
/// </summary>
internal static class SystemAttributes
{
    public static bool IsRequest(uint request) =>
        request == KvmIoctls.KVM_HAS_DEVICE_ATTR || request == KvmIoctls.KVM_GET_DEVICE_ATTR;

    public static long Ioctl(EmulatorConfig config, uint request, IoctlArg arg)
    {
        // r = -EFAULT; if (copy_from_user(&attr, argp, sizeof(attr))) break; attr.flags is not looked at.
        if (!arg.CopyFromUser(out kvm_device_attr attr)) return Err.EFAULT;
        long r = Get(config, attr, out ulong value);
        if (r < 0 || request == KvmIoctls.KVM_HAS_DEVICE_ATTR) return r;
        // kvm_x86_dev_get_attr: put_user(val, uaddr) → -EFAULT (HAS never touches addr: observed with addr 0).
        return UserMemory.CopyToUser(config, attr.addr, value) ? 0 : Err.EFAULT;
    }

    private static long Get(EmulatorConfig config, in kvm_device_attr attr, out ulong value)
    {
        value = 0;
        if (attr.group != KvmConstants.KVM_X86_GRP_SYSTEM)
        {
            // kvm_x86_ops.dev_get_attr is SVM's sev_dev_get_attr (a host that offers SEV VM types is an SVM host):
            // KVM_X86_SEV_VMSA_FEATURES = sev_supported_vmsa_features (Arch/X86/SevLaunch.cs: SECURE_TSC with SNP, no
            // DebugSwap modelled). Without SEV the emulator is a host without the hook, as this one (group 1: ENXIO,
            // observed on 6.18 kvm_pvm).
            bool sev = config.VmTypes.Contains(KvmConstants.KVM_X86_SEV_VM) || config.VmTypes.Contains(KvmConstants.KVM_X86_SEV_ES_VM) ||
                       config.VmTypes.Contains(KvmConstants.KVM_X86_SNP_VM);
            // KVM_X86_SEV_SNP_REQ_CERTS ([PATCH v7 2/2], after 6.18): "*val = sev_snp_enabled ? 1 : 0".
            if (sev && attr.group == KvmConstants.KVM_X86_GRP_SEV && attr.attr == KvmConstants.KVM_X86_SEV_SNP_REQ_CERTS &&
                config.SnpReqCertsExit is not null)
            {
                value = config.VmTypes.Contains(KvmConstants.KVM_X86_SNP_VM) ? 1UL : 0;
                return 0;
            }
            if (!sev || attr.group != KvmConstants.KVM_X86_GRP_SEV || attr.attr != KvmConstants.KVM_X86_SEV_VMSA_FEATURES) return Err.ENXIO;
            value = Arch.SevLaunch.SupportedVmsaFeatures(config);
            return 0;
        }
        if (attr.attr != KvmConstants.KVM_X86_XCOMP_GUEST_SUPP) return Err.ENXIO;
        value = config.X86Cpu.SupportedXcr0; // kvm_caps.supported_xcr0 (observed: 0x207 on Milan, 0xe7 on Genoa)
        return 0;
    }
}
