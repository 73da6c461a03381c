// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Kvm
{
    /// <summary>
    /// KVM_CHECK_EXTENSION(KVM_CAP_MCE): the most machine-check banks <see cref="Vcpu.SetupMce"/> accepts
    /// (KVM_MAX_MCE_BANKS, 32 on x86), 0 where the kernel has no machine-check emulation (arm64). A new vCPU starts
    /// with this many banks.
    /// </summary>
    /// <exception cref="KvmException">The query itself failed.</exception>
    public int MaxMceBanks => (int)CheckExtension(KvmCaps.KVM_CAP_MCE);

    /// <summary>
    /// KVM_X86_GET_MCE_CAP_SUPPORTED on /dev/kvm: the IA32_MCG_CAP capability bits <see cref="Vcpu.SetupMce"/> accepts
    /// besides the bank count and MCG_EXT_CNT (kvm_caps.supported_mce_cap: <see cref="X86.McgCap.CtlP"/> |
    /// <see cref="X86.McgCap.SerP"/> on AMD hosts, 0x1000100 here; Intel adds LMCE_P and CMCI_P).
    /// </summary>
    /// <exception cref="KvmCapabilityException">The kernel has no KVM_CAP_MCE (arm64: EINVAL).</exception>
    /// <exception cref="KvmException">Another error.</exception>
    public ulong GetSupportedMceCapabilities()
    {
        ulong value = 0;
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED, KvmCall.Bytes(ref value));
        if (KvmCall.IsError(rc)) ThrowMce(rc, "KVM_X86_GET_MCE_CAP_SUPPORTED", "/dev/kvm", CheckExtension(KvmCaps.KVM_CAP_MCE));
        return value;
    }

    /// <summary>A failed machine-check request: a capability error where KVM_CAP_MCE is 0, else the errno.</summary>
    internal static void ThrowMce(long rc, string operation, string request, long cap)
    {
        if (cap == 0) throw new KvmCapabilityException(operation, (int)-rc, request, nameof(KvmCaps.KVM_CAP_MCE), cap);
        KvmCall.ThrowKvm(rc, operation, request);
    }
}
