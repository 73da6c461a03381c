// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The vCPU ioctls of the TPR-patching "vapic" interface (arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl, KVM_CAP_VAPIC):
/// KVM_TPR_ACCESS_REPORTING and KVM_SET_VAPIC_ADDR. QEMU's kvm-apic calls both at every vCPU reset (hw/i386/kvm/apic.c
/// kvm_apic_reset: reporting off, address 0) and aborts if either fails. What they turn on — KVM_EXIT_TPR_ACCESS exits
/// and the vapic page's mirroring of the TPR — is stored, not modelled (VcpuState.TprAccessReporting, Lapic.VapicAddr).
/// </summary>
internal static class VapicIoctls
{
    /// <summary>_IOWR(KVMIO, 0x92, struct kvm_tpr_access_ctl).</summary>
    public static readonly uint KVM_TPR_ACCESS_REPORTING =
        IoctlEncoding._IOWR(KvmIoctls.KVMIO, 0x92, (uint)Unsafe.SizeOf<kvm_tpr_access_ctl>());

    /// <summary>_IOW(KVMIO, 0x93, struct kvm_vapic_addr).</summary>
    public static readonly uint KVM_SET_VAPIC_ADDR = IoctlEncoding._IOW(KvmIoctls.KVMIO, 0x93, sizeof(ulong));

    public static bool IsRequest(uint request) => request == KVM_TPR_ACCESS_REPORTING || request == KVM_SET_VAPIC_ADDR;

    public static long Ioctl(KvmVcpu vcpu, uint request, IoctlArg arg) =>
        request == KVM_TPR_ACCESS_REPORTING ? TprAccessReporting(vcpu, arg) : SetVapicAddr(vcpu, arg);

    /// <summary>
    /// copy_from_user (EFAULT); vcpu_ioctl_tpr_access_reporting: "if (tac->flags) return -EINVAL;
    /// vcpu->arch.tpr_access_reporting = !!tac->enabled;"; then the struct is copied back unchanged (EFAULT).
    /// </summary>
    private static long TprAccessReporting(KvmVcpu vcpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_tpr_access_ctl tac)) return Err.EFAULT;
        if (tac.flags != 0) return Err.EINVAL;
        vcpu.Cpu.State.TprAccessReporting = tac.enabled != 0;
        return arg.CopyToUser(tac) ? 0 : Err.EFAULT;
    }

    /// <summary>
    /// "if (!lapic_in_kernel(vcpu)) goto out" (EINVAL) before the copy (EFAULT); kvm_lapic_set_vapic_addr: a non-zero
    /// address goes through kvm_gpc_activate(…, sizeof(u32)), which fails — EINVAL — when no memslot of address space 0
    /// holds its page (__kvm_gpc_refresh: gfn_to_hva_memslot gives an error hva); 0 deactivates. Probed on this host:
    /// without an irqchip EINVAL, an unreadable argument EFAULT, an address in a memslot 0 (also one whose four bytes
    /// cross into the next page), one outside every memslot EINVAL.
    /// </summary>
    private static long SetVapicAddr(KvmVcpu vcpu, IoctlArg arg)
    {
        if (vcpu.Lapic is not { } apic) return Err.EINVAL;
        if (!arg.CopyFromUser(out ulong addr)) return Err.EFAULT;
        if (addr != 0)
        {
            ulong gfn = addr >> EmulatorConfig.PageShift;
            if (!vcpu.Kvm.Memslots(0).Values.Any(s => gfn >= s.BaseGfn && gfn - s.BaseGfn < s.NPages)) return Err.EINVAL;
        }
        apic.VapicAddr = addr;
        return 0;
    }
}

/// <summary>x86 <c>struct kvm_tpr_access_ctl</c> (include/uapi/linux/kvm.h), 40 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_tpr_access_ctl
{
    public uint enabled;
    public uint flags;
    public TprReserved reserved;
}

[InlineArray(8)]
internal struct TprReserved
{
    private uint _element;
}
