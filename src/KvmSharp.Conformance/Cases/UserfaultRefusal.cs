// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// How a kernel without KVM userfault refuses KVM_MEM_USERFAULT (1 &lt;&lt; 3 of "[PATCH v3 04/15] KVM: Add common
/// infrastructure for KVM Userfaults", unmerged): check_memory_region_flags answers EINVAL for every request that
/// carries the bit — creation with or without a bitmap, toggling it on, deleting with it — and KVM_SET_USER_MEMORY_REGION
/// refuses it as a non-v1 flag; a userfault_bitmap without the flag is padding the kernel does not read. Probed on this
/// host (Linux 6.18.44 kvm_pvm, /tmp C probe: KVM_CHECK_EXTENSION(243) = 0 on /dev/kvm and the VM, every call above
/// EINVAL, the plain slot created). The SDK names the missing capability instead of a bare EINVAL. Runs on both
/// kernels; a kernel with the series skips it.
/// </summary>
public static class UserfaultRefusal
{
    private const ulong DataGpa = HostMemoryGuest.CodeGpa + 0x1000;
    private const uint DataSlot = 1;

    [ConformanceCase("virt/kvm/kvm_main.c check_memory_region_flags (6.18): KVM_MEM_USERFAULT is not a valid flag → EINVAL; " +
                     "kvm_vm_ioctl KVM_SET_USER_MEMORY_REGION: flags outside LOG_DIRTY_PAGES|READONLY → EINVAL")]
    public static void userfault_flag_is_refused_without_the_series(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        if (vm.SupportsUserfault) Skip($"this kernel has KVM userfault (KVM_CAP_USERFAULT {kvm.Proposals.UserfaultCap} = 1): UserfaultRules covers it");
        Assert.Equal(0, ctx.SystemCapability(kvm.Proposals.UserfaultCap));
        if (vm.CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY2) == 0) Skip("KVM_SET_USER_MEMORY_REGION2 is missing (before 6.8)");
        ulong size = 4 * (ulong)PageSize;
        using var memory = vm.AllocateMemory(size);
        using var bitmap = UserfaultBitmap.ForSlotSize(size, allSet: true);
        var region = new kvm_userspace_memory_region2
        {
            slot = DataSlot, flags = KvmConstants.KVM_MEM_USERFAULT, guest_phys_addr = DataGpa, memory_size = size,
            userspace_addr = (ulong)memory.Address, userfault_bitmap = bitmap.Address,
        };
        long Set2(kvm_userspace_memory_region2 r) => ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Raw(ref r));

        AssertErrno(Errno.EINVAL, Set2(region), "creating a slot with KVM_MEM_USERFAULT and a bitmap");
        AssertErrno(Errno.EINVAL, Set2(region with { userfault_bitmap = 0 }), "creating a slot with KVM_MEM_USERFAULT and a NULL bitmap");
        AssertErrno(Errno.EINVAL, Set2(region with { userfault_bitmap = 0xffff_ffff_ffff_0000 }), "creating a slot with KVM_MEM_USERFAULT and a kernel-half bitmap");
        var v1 = new kvm_userspace_memory_region
        {
            slot = DataSlot, flags = KvmConstants.KVM_MEM_USERFAULT, guest_phys_addr = DataGpa, memory_size = size,
            userspace_addr = (ulong)memory.Address,
        };
        AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, Raw(ref v1)), "KVM_MEM_USERFAULT through KVM_SET_USER_MEMORY_REGION");
        AssertErrno(Errno.EINVAL, Set2(region with { flags = KvmConstants.KVM_MEM_USERFAULT | KvmConstants.KVM_MEM_LOG_DIRTY_PAGES }), "USERFAULT | LOG_DIRTY_PAGES");

        // The bitmap field alone is padding to this kernel: the slot is created.
        Assert.Equal(0, Set2(region with { flags = 0 }));
        AssertErrno(Errno.EINVAL, Set2(region), "toggling KVM_MEM_USERFAULT on an existing slot");
        AssertErrno(Errno.EINVAL, Set2(region with { memory_size = 0 }), "deleting the slot with KVM_MEM_USERFAULT in flags");
        // None of the refused calls changed the slot: a second creation overlaps it, a plain deletion removes it.
        AssertErrno(Errno.EEXIST, Set2(region with { flags = 0, slot = DataSlot + 1 }), "the slot is still there");
        Assert.Equal(0, Set2(region with { flags = 0, memory_size = 0 }));

        // The SDK says which capability is missing.
        using var slot = vm.AddMemorySlot(DataSlot, DataGpa, memory);
        var e = Assert.Throws<KvmCapabilityException>(() => slot.EnableUserfault(bitmap));
        Assert.Equal(nameof(KvmCaps.KVM_CAP_USERFAULT), e.Capability);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.False(slot.HasUserfault);
        Assert.Null(slot.Userfault);
    }
}
