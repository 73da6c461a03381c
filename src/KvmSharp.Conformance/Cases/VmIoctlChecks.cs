// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// VM- and system-level argument rules a VMM meets before any guest runs (virt/kvm/kvm_main.c kvm_dev_ioctl,
/// kvm_vm_ioctl, kvm_vm_ioctl_create_vcpu, kvm_set_memory_region; arch/x86/kvm/x86.c kvm_arch_vm_ioctl): which check
/// comes first when the argument is unreadable and the VM lacks what the request needs, the vCPU id limits, the
/// address-space bits of a slot id and the vCPU mapping size.
/// </summary>
public static class VmIoctlChecks
{
    private const string KvmMain = "virt/kvm/kvm_main.c";
    private const string X86 = "arch/x86/kvm/x86.c";

    [ConformanceCase(KvmMain + " kvm_vm_ioctl (KVM_IRQ_LINE(_STATUS), KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI, KVM_IRQFD, KVM_IOEVENTFD, KVM_ENABLE_CAP, " +
                     "KVM_SET_USER_MEMORY_REGION(2), KVM_CLEAR_DIRTY_LOG) and " + X86 + " kvm_arch_vm_ioctl (KVM_GET/SET_IRQCHIP, KVM_GET/SET_PIT, KVM_SET_PIT2, " +
                     "KVM_REINJECT_CONTROL): copy_from_user comes first, so an unreadable argument is EFAULT on a VM without irqchip or PIT; KVM_GET_PIT2 checks the PIT first (ENXIO)")]
    public static void vm_requests_copy_their_argument_before_checking_the_vm(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var requests = new List<uint>
        {
            KvmIoctls.KVM_IRQ_LINE, KvmIoctls.KVM_IRQ_LINE_STATUS, KvmIoctls.KVM_SET_GSI_ROUTING, KvmIoctls.KVM_SIGNAL_MSI,
            KvmIoctls.KVM_IRQFD, KvmIoctls.KVM_IOEVENTFD, KvmIoctls.KVM_ENABLE_CAP, KvmIoctls.KVM_SET_USER_MEMORY_REGION,
            KvmIoctls.KVM_CLEAR_DIRTY_LOG, KvmIoctls.KVM_GET_IRQCHIP, KvmIoctls.KVM_SET_IRQCHIP,
            KvmIoctls.KVM_GET_PIT, KvmIoctls.KVM_SET_PIT, KvmIoctls.KVM_SET_PIT2, KvmIoctls.KVM_REINJECT_CONTROL,
        };
        // KVM_SET_USER_MEMORY_REGION2 exists from 6.8 (KVM_CAP_USER_MEMORY2).
        if (vm.CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY2) > 0) requests.Add(KvmIoctls.KVM_SET_USER_MEMORY_REGION2);
        foreach (uint request in requests)
        {
            CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, request, 8UL), $"{KvmIoctls.NameOf(request)} at address 8");
        }
        CaseContext.AssertErrno(Errno.ENXIO, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_PIT2, 8UL), "KVM_GET_PIT2 at address 8 without a PIT");
        // Readable arguments: the VM's own checks answer.
        var pit = new byte[512];
        CaseContext.AssertErrno(Errno.ENXIO, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_PIT, pit), "KVM_GET_PIT without a PIT");
        CaseContext.AssertErrno(Errno.ENXIO, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_PIT2, pit), "KVM_SET_PIT2 without a PIT");
        CaseContext.AssertErrno(Errno.ENXIO, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_REINJECT_CONTROL, pit), "KVM_REINJECT_CONTROL without a PIT");
    }

    [ConformanceCase(KvmMain + " kvm_vm_ioctl_create_vcpu: id >= KVM_MAX_VCPU_IDS (4096, unless KVM_CAP_MAX_VCPU_ID lowered it) → EINVAL, " +
                     "an id in use → EEXIST, the highest id is fine; KVM_CREATE_VCPU on /dev/kvm or a vCPU is not known there (EINVAL)")]
    public static void create_vcpu_id_limits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var first = vm.CreateVcpu(0);
        CaseContext.AssertErrno(Errno.EEXIST, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_VCPU, 0UL), "id 0 twice");
        foreach (ulong id in new ulong[] { 4096, 0xffff_ffff, 1UL << 32 })
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_VCPU, id), $"id 0x{id:X}");
        using (var last = vm.CreateVcpu(4095)) Assert.NotNull(last);
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_CREATE_VCPU, 1UL), "on /dev/kvm");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(first.Handle, KvmIoctls.KVM_CREATE_VCPU, 1UL), "on a vCPU");
    }

    [ConformanceCase(KvmMain + " kvm_dev_ioctl: KVM_GET_API_VERSION is 12 and KVM_GET_VCPU_MMAP_SIZE the kvm_run page + the PIO data page + the " +
                     "coalesced MMIO page (x86), both EINVAL with a non-zero argument; a VM fd does not know them (kvm_arch_vm_ioctl: ENOTTY), a vCPU fd neither (EINVAL)")]
    public static void api_version_and_vcpu_mmap_size(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Equal(12, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_API_VERSION, 0UL));
        Assert.Equal(3L * CaseContext.PageSize, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL));
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_API_VERSION, 1UL), "API version, arg 1");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 1UL), "mmap size, arg 1");
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL), "mmap size on a VM");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL), "mmap size on a vCPU");
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_API_VERSION, 0UL), "API version on a VM");
    }

    [ConformanceCase(KvmMain + " kvm_set_memory_region: as_id = slot >> 16 must be below KVM_ADDRESS_SPACE_NUM (KVM_CAP_MULTI_ADDRESS_SPACE: 2 with CONFIG_KVM_SMM, else 0 and one space) " +
                     "→ EINVAL; each address space has its own slots, so the same id and GPA in address space 1 do not collide with space 0")]
    public static void slot_address_space_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        // kvm_vm_ioctl_check_extension_generic answers only when KVM_MAX_NR_ADDRESS_SPACES > 1 (CONFIG_KVM_SMM); 0 means one space.
        long cap = vm.CheckExtension(KvmCaps.KVM_CAP_MULTI_ADDRESS_SPACE);
        Assert.True(cap is 0 or 2, $"KVM_CAP_MULTI_ADDRESS_SPACE on a default VM: {cap}");
        long spaces = Math.Max(1, cap);
        ulong ps = (ulong)CaseContext.PageSize;
        using var memory = vm.AllocateMemory(2 * ps);
        var region = new kvm_userspace_memory_region { slot = 1, guest_phys_addr = 0x10_0000, memory_size = ps, userspace_addr = (ulong)memory.Address };
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, CaseContext.Raw(ref region)));
        var beyond = region with { slot = ((uint)spaces << 16) | 1 };
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, CaseContext.Raw(ref beyond)), $"as_id {spaces}");
        var far = region with { slot = 0xffff_0001 };
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, CaseContext.Raw(ref far)), "as_id 0xffff");
        if (spaces >= 2)
        {
            var smm = region with { slot = (1u << 16) | 1, userspace_addr = region.userspace_addr + ps };
            Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, CaseContext.Raw(ref smm)));
            var gone = smm with { memory_size = 0 };
            Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, CaseContext.Raw(ref gone)));
        }
        var delete = region with { memory_size = 0 };
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, CaseContext.Raw(ref delete)));
    }

    [ConformanceCase(X86 + " kvm_arch_vm_ioctl KVM_SET_IDENTITY_MAP_ADDR: EINVAL once a vCPU was created (checked before the copy), else " +
                     "copy_from_user (EFAULT) and the vendor's set_identity_map_addr (0 on SVM and VMX)")]
    public static void identity_map_addr_before_and_after_vcpus(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong addr = 0xfffb_c000;
        var bytes = BitConverter.GetBytes(addr);
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR, 8UL), "at address 8");
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR, bytes));
        using var vcpu = vm.CreateVcpu();
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR, bytes), "after a vCPU");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR, 8UL), "after a vCPU, at address 8");
    }

    [ConformanceCase(X86 + " kvm_vm_ioctl_set_tss_addr: an address above (unsigned int)(-3 * PAGE_SIZE) (three pages below 4 GiB) is EINVAL, " +
                     "the highest one is fine, also after a vCPU exists; the argument is the address itself, not a pointer")]
    public static void tss_addr_must_leave_three_pages_below_4_gib(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong highest = 0x1_0000_0000UL - 3 * (ulong)CaseContext.PageSize;
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_TSS_ADDR, 0xfffb_d000UL));
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_TSS_ADDR, highest));
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_TSS_ADDR, highest + 1), "one byte higher");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_TSS_ADDR, 1UL << 32), "4 GiB");
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_TSS_ADDR, 0UL));
    }
    [ConformanceCase(KvmMain + " kvm_dev_ioctl / kvm_vm_ioctl / kvm_vcpu_ioctl: a request the file does not know falls to the arch handler — EINVAL on " +
                     "/dev/kvm and a vCPU (kvm_arch_dev_ioctl, kvm_arch_vcpu_ioctl), ENOTTY on a VM (kvm_arch_vm_ioctl); KVM_RUN with a non-zero argument is EINVAL")]
    public static void unknown_requests_by_file_kind(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        uint unused = IoctlEncoding._IO(KvmIoctls.KVMIO, 0xfe);
        foreach (uint request in new[] { unused, 0x1234u })
        {
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, request, 0UL), $"0x{request:X} on /dev/kvm");
            CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, request, 0UL), $"0x{request:X} on a VM");
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, request, 0UL), $"0x{request:X} on a vCPU");
        }
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_RUN, 1UL), "KVM_RUN with argument 1");
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_RUN, 0UL), "KVM_RUN on a VM");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_RUN, 0UL), "KVM_RUN on /dev/kvm");
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_VM, 0UL), "KVM_CREATE_VM on a VM");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)KvmCaps.KVM_CAP_NR_MEMSLOTS), "KVM_CHECK_EXTENSION on a vCPU");
    }
}
