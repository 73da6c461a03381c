// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The confidential-VM launch uAPI on a kernel without a CoCo vendor module — this project's host (VM type 0 only, no
/// kvm_amd SEV, no TDX) and the emulator preset of it — where every launch command is refused the same way:
/// KVM_MEMORY_ENCRYPT_OP is ENOTTY on the VM and vCPU fds (arch/x86/kvm/x86.c kvm_arch_vm_ioctl /
/// kvm_arch_vcpu_ioctl: "if (!kvm_x86_ops.mem_enc_ioctl) goto out" with r = -ENOTTY, before the argument is read),
/// there is no /dev/sev, and KVM_RUN's sync-register check (kvm_arch_vcpu_ioctl_run) rejects unknown bits. Probed on
/// this host with a C program before writing them.
/// </summary>
public static class CocoLaunchRefusals
{
    private const string X86 = "arch/x86/kvm/x86.c";

    /// <summary>Skips on a kernel that has a CoCo vendor module: there the launch commands are answered, not refused.</summary>
    private static void RequireNoCocoVendor(Kvm kvm)
    {
        var coco = kvm.SupportedVmTypes.Where(t => t is VmType.Sev or VmType.SevEs or VmType.Snp or VmType.Tdx).ToList();
        if (coco.Count != 0)
            CaseContext.Skip($"this kernel creates {string.Join(", ", coco)} VMs: its vendor module answers KVM_MEMORY_ENCRYPT_OP");
    }

    [ConformanceCase(X86 + " kvm_arch_vm_ioctl / kvm_arch_vcpu_ioctl KVM_MEMORY_ENCRYPT_OP: ENOTTY without a vendor hook, for every SEV, SNP and TDX sub-command, a NULL or unreadable argument, on the VM fd and the vCPU fd")]
    public static void memory_encrypt_op_is_enotty_without_a_vendor_module(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireNoCocoVendor(kvm);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        uint op = KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP;
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, op, 0UL), "VM fd, NULL");
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, op, 8UL), "VM fd, unreadable pointer");
        uint[] sevIds =
        [
            KvmMemoryEncrypt.KVM_SEV_INIT, KvmMemoryEncrypt.KVM_SEV_ES_INIT, KvmMemoryEncrypt.KVM_SEV_INIT2,
            KvmMemoryEncrypt.KVM_SEV_LAUNCH_START, KvmMemoryEncrypt.KVM_SEV_LAUNCH_UPDATE_DATA,
            KvmMemoryEncrypt.KVM_SEV_LAUNCH_UPDATE_VMSA, KvmMemoryEncrypt.KVM_SEV_LAUNCH_MEASURE,
            KvmMemoryEncrypt.KVM_SEV_LAUNCH_FINISH, KvmMemoryEncrypt.KVM_SEV_GUEST_STATUS,
            KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE,
            KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_FINISH,
        ];
        foreach (uint id in sevIds)
        {
            var cmd = new kvm_sev_cmd { id = id, error = 0x5a5a };
            CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, op, CaseContext.Raw(ref cmd)), $"sev id {id}");
            Assert.Equal(0x5a5au, cmd.error);
        }
        for (uint id = KvmMemoryEncrypt.KVM_TDX_CAPABILITIES; id <= KvmMemoryEncrypt.KVM_TDX_GET_CPUID; id++)
        {
            var cmd = new kvm_tdx_cmd { id = id };
            CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, op, CaseContext.Raw(ref cmd)), $"tdx id {id}, VM fd");
            CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vcpu.Handle, op, CaseContext.Raw(ref cmd)), $"tdx id {id}, vCPU fd");
        }
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vcpu.Handle, op, 0UL), "vCPU fd, NULL");
    }

    [ConformanceCase(X86 + " KVM_MEMORY_ENCRYPT_OP through the SDK's launch classes: TdxLaunch and a raw SEV command surface the kernel's ENOTTY as TdxCommandException / SevCommandException (hw_error and firmware status 0: nothing ran); SevLaunch.Open and SnpLaunch.Open fail with ENOENT (no /dev/sev)")]
    public static void sdk_launch_api_reports_the_refusal(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        RequireNoCocoVendor(kvm);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var tdx = new TdxLaunch(vm);
        var e = Assert.Throws<TdxCommandException>(() => tdx.GetCapabilities());
        Assert.Equal((Errno.ENOTTY, 0UL, "KVM_TDX_CAPABILITIES"), (e.Errno, e.HardwareError, e.Operation));
        e = Assert.Throws<TdxCommandException>(() => tdx.InitVcpu(vcpu));
        Assert.Equal(Errno.ENOTTY, e.Errno);
        var open = Assert.Throws<KvmException>(() => SevLaunch.Open(vm));
        Assert.Equal(Errno.ENOENT, open.Errno);
        open = Assert.Throws<KvmException>(() => SnpLaunch.Open(vm));
        Assert.Equal(Errno.ENOENT, open.Errno);
    }

    [ConformanceCase(X86 + " kvm_arch_vcpu_ioctl_run: (kvm_valid_regs | kvm_dirty_regs) & ~kvm_sync_valid_fields(kvm) → EINVAL, checked before immediate_exit; KVM_SYNC_X86_VALID_FIELDS (REGS | SREGS | EVENTS, KVM_CAP_SYNC_REGS's answer) on a VM without protected state")]
    public static void kvm_run_refuses_unknown_sync_register_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        // KVM_CAP_SYNC_REGS: kvm_sync_valid_fields(kvm) = KVM_SYNC_X86_VALID_FIELDS on a VM without protected state.
        Assert.Equal(0x7, vm.CheckExtension(KvmCaps.KVM_CAP_SYNC_REGS));
        vcpu.ImmediateExit = true;
        Assert.True(vcpu.Run().Interrupted, "immediate_exit alone: EINTR");
        foreach (var (valid, dirty) in new[] { (8UL, 0UL), (0UL, 0x10UL), (1UL << 63, 0UL), (0x7UL, 0x8UL) })
        {
            vcpu.SyncValidRegisters = valid;
            vcpu.SyncDirtyRegisters = dirty;
            CaseContext.AssertErrno(Errno.EINVAL, () => { vcpu.Run(); });
        }
        vcpu.SyncValidRegisters = 0;
        vcpu.SyncDirtyRegisters = 0;
        Assert.True(vcpu.Run().Interrupted, "the bits cleared: EINTR again");
    }
}
