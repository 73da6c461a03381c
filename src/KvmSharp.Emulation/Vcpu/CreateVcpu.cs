// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>virt/kvm/kvm_main.c kvm_vm_ioctl_create_vcpu, checks in the kernel's order.</summary>
internal static class CreateVcpu
{
    public static long Ioctl(Kvm kvm, ulong id)
    {
        // if (id >= KVM_MAX_VCPU_IDS) return -EINVAL; (id is the unsigned long argument).
        if (id >= (ulong)kvm.Arch.MaxVcpuIds) return Err.EINVAL;
        // if (kvm->created_vcpus >= kvm->max_vcpus) return -EINVAL;
        if (kvm.Vcpus.Count >= kvm.Kernel.Config.MaxVcpus) return Err.EINVAL;
        // r = kvm_arch_vcpu_precreate(kvm, id) (arm64: EBUSY once the vGIC is initialized).
        long pre = kvm.Arch.VcpuPrecreate(kvm, (int)id);
        if (pre != 0) return pre;
        // kvm_arch_vcpu_create runs before the id lookup: vmx/tdx.c tdx_vcpu_create first "if (kvm_tdx->state !=
        // TD_STATE_INITIALIZED) return -EIO;" (between KVM_TDX_INIT_VM and KVM_TDX_FINALIZE_VM; Arch/X86/TdxLaunch.cs) …
        long tdx = Arch.TdxLaunch.VcpuCreate(kvm);
        if (tdx != 0) return tdx;
        // … then "if (!irqchip_split(vcpu->kvm)) return -EINVAL" — a TD's vCPU needs a split irqchip (KVM_CAP_SPLIT_IRQCHIP).
        if (kvm.Type == Abi.KvmConstants.KVM_X86_TDX_VM && kvm.Irqchip.Mode != X86.Irqchip.IrqchipMode.Split) return Err.EINVAL;
        // kvm_get_vcpu_by_id(kvm, id) → -EEXIST (observed: a second vCPU 0).
        if (kvm.Vcpus.Any(v => v.Id == (int)id)) return Err.EEXIST;
        if (!kvm.Kernel.HasFdRoom) return Err.EMFILE;
        long r = KvmVcpu.Create(kvm, (int)id, out var vcpu);
        if (r != 0) return r;
        // kvm_arch_vcpu_create: "if (irqchip_in_kernel(vcpu->kvm)) { r = kvm_create_lapic(vcpu); … }".
        // "if (!irqchip_in_kernel(vcpu->kvm) || kvm_vcpu_is_reset_bsp(vcpu)) mp_state = RUNNABLE; else UNINITIALIZED".
        if (kvm.Irqchip.InKernel)
        {
            var apic = new X86.Irqchip.Lapic((int)id, () => X86.Quirks.Has(kvm, Abi.KvmX86Quirks.KVM_X86_QUIRK_LINT0_REENABLED));
            vcpu!.Lapic = apic;
            vcpu.Cpu.State.HasLapic = true;
            vcpu.Emulator.InKernelApic = apic;
            var created = vcpu;
            apic.MapDirty = () => kvm.Irqchip.RecalculateApicMap(kvm.Irqchip.Online);
            apic.SendIpi = (low, high) => X86.Irqchip.ApicDelivery.SendIpi(created, low, high);
            apic.TimerModeMask = () => TimerModeMask(created);
            if (id != 0) vcpu.Cpu.State.MpState = Abi.KvmMpState.KVM_MP_STATE_UNINITIALIZED;
            // kvm_lapic_reset → kvm_recalculate_apic_map runs inside kvm_arch_vcpu_create, before the vCPU is online
            // (online_vcpus is incremented later): the map is rebuilt without it (probed, ApicMap / VmIrqchip).
            kvm.Irqchip.RecalculateApicMap(kvm.Irqchip.Online);
        }
        kvm.Vcpus.Add(vcpu!);
        kvm.Irqchip.Online = [.. kvm.Vcpus];
        // kvm_arch_vcpu_postcreate → kvm_synchronize_tsc(vcpu, NULL) once online_vcpus counts it (X86/TscSync.cs): TSC
        // 0 for the VM's first vCPU, the current generation's offset for later ones at the same rate.
        kvm.Clock.PostCreate(vcpu!.Id, vcpu.Cpu.Msrs);
        // create_vcpu_fd: the file holds a VM reference (kvm_get_kvm).
        kvm.Get();
        return kvm.Kernel.InstallFile(new KvmVcpuFile(vcpu!));
    }

    /// <summary>
    /// cpuid.c kvm_vcpu_after_set_cpuid: "apic->lapic_timer.timer_mode_mask = guest_cpu_cap_has(vcpu,
    /// X86_FEATURE_TSC_DEADLINE_TIMER) ? 3 &lt;&lt; 17 : 1 &lt;&lt; 17"; 0 before any KVM_SET_CPUID2 (an empty table counts as
    /// never set here).
    /// </summary>
    private static uint TimerModeMask(KvmVcpu vcpu)
    {
        var entries = vcpu.Cpu.Cpuid.Entries;
        if (entries.Length == 0) return 0;
        foreach (var e in entries)
            if (e.function == 1 && e.index == 0 && (e.ecx & (1u << 24)) != 0) return 3u << 17;
        return 1u << 17;
    }
}
