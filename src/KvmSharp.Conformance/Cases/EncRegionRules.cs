// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_MEMORY_ENCRYPT_REG_REGION / UNREG_REGION on a VM that is not an SEV guest (VM type 0, the only type this
/// project's host creates): arch/x86/kvm/x86.c kvm_arch_vm_ioctl copies the kvm_enc_region first (EFAULT), then
/// answers ENOTTY without a vendor hook (kvm_intel, kvm_pvm, no kvm_amd SEV) or from sev_mem_enc_register_region's
/// "if (!sev_guest(kvm)) return -ENOTTY". Probed on this host (Linux 6.18, kvm_pvm) with a C program before writing.
/// </summary>
public static class EncRegionRules
{
    private const string X86 = "arch/x86/kvm/x86.c";

    private static long Ioctl(CaseContext ctx, KernelFd fd, uint request, ulong addr, ulong size)
    {
        var region = new kvm_enc_region { addr = addr, size = size };
        return ctx.Kernel.Ioctl(fd, request, CaseContext.Raw(ref region));
    }

    [ConformanceCase(X86 + " kvm_arch_vm_ioctl KVM_MEMORY_ENCRYPT_REG_REGION / UNREG_REGION on VM type 0: EFAULT for a NULL or unreadable argument (copied first), else ENOTTY whatever the range; EINVAL on the vCPU fd (kvm_arch_vcpu_ioctl's default) and on /dev/kvm (kvm_arch_dev_ioctl's default); ENOTTY with the wrong direction bits")]
    public static void enc_region_ioctls_on_a_plain_vm(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        using var memory = AnonymousMemory.Allocate(ctx.Kernel, 0x10000);
        ulong addr = (ulong)memory.Address;
        foreach (uint request in new[] { KvmIoctls.KVM_MEMORY_ENCRYPT_REG_REGION, KvmIoctls.KVM_MEMORY_ENCRYPT_UNREG_REGION })
        {
            string name = KvmIoctls.NameOf(request);
            CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, request, 0UL), $"{name}, NULL");
            CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, request, 8UL), $"{name}, unreadable pointer");
            // The region itself is never looked at: mapped memory, size 0, a wrapping range — all ENOTTY.
            CaseContext.AssertErrno(Errno.ENOTTY, Ioctl(ctx, vm.Handle, request, addr, 0x10000), $"{name}, mapped range");
            CaseContext.AssertErrno(Errno.ENOTTY, Ioctl(ctx, vm.Handle, request, 0, 0), $"{name}, empty range");
            CaseContext.AssertErrno(Errno.ENOTTY, Ioctl(ctx, vm.Handle, request, ulong.MaxValue, 2), $"{name}, wrapping range");
            CaseContext.AssertErrno(Errno.EINVAL, Ioctl(ctx, vcpu.Handle, request, addr, 0x10000), $"{name}, vCPU fd");
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, request, 0UL), $"{name}, vCPU fd, NULL");
            CaseContext.AssertErrno(Errno.EINVAL, Ioctl(ctx, kvm.Handle, request, addr, 0x10000), $"{name}, /dev/kvm");
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, request, 0UL), $"{name}, /dev/kvm, NULL");
            // _IOW / _IO with the same number are other requests: kvm_arch_vm_ioctl's default (ENOTTY).
            uint nr = request & 0xff;
            CaseContext.AssertErrno(Errno.ENOTTY, Ioctl(ctx, vm.Handle, IoctlEncoding._IOW(KvmIoctls.KVMIO, nr, 16), addr, 0x10000), $"{name} as _IOW");
            CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, IoctlEncoding._IO(KvmIoctls.KVMIO, nr), 0UL), $"{name} as _IO");
        }
    }

    [ConformanceCase(X86 + " KVM_MEMORY_ENCRYPT_REG_REGION / UNREG_REGION through Vm.RegisterEncryptedRegion / UnregisterEncryptedRegion on VM type 0: KvmException with ENOTTY, naming the request")]
    public static void sdk_enc_region_methods_report_enotty(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var memory = AnonymousMemory.Allocate(ctx.Kernel, 0x10000);
        var e = Assert.Throws<KvmException>(() => vm.RegisterEncryptedRegion((ulong)memory.Address, 0x10000));
        Assert.Equal((Errno.ENOTTY, "KVM_MEMORY_ENCRYPT_REG_REGION"), (e.Errno, e.Operation));
        e = Assert.Throws<KvmException>(() => vm.UnregisterEncryptedRegion((ulong)memory.Address, 0x10000));
        Assert.Equal((Errno.ENOTTY, "KVM_MEMORY_ENCRYPT_UNREG_REGION"), (e.Errno, e.Operation));
    }
}
