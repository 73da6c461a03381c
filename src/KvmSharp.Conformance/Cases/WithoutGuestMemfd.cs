// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// A kernel built without CONFIG_KVM_GUEST_MEMFD (this project's Linux 6.18 kvm_pvm hosts since Dec 2026): the
/// guest_memfd uAPI is compiled out of virt/kvm/kvm_main.c — KVM_CAP_GUEST_MEMFD and _FLAGS fall through to 0,
/// KVM_CREATE_GUEST_MEMFD to kvm_arch_vm_ioctl's -ENOTTY, KVM_MEM_GUEST_MEMFD is no valid memslot flag — while
/// everything else, plain memory slots and guests in them included, works as before. Run on the real kernel when it
/// lacks guest_memfd (skipped with the reason when it has it) and always on the emulator built the same way.
/// Every expectation was first observed on such a host.
/// </summary>
[ConformanceGroup(Requires = KernelRequirement.NoGuestMemfd)]
public static class WithoutGuestMemfd
{
    private const ulong Gpa = 0x100000;
    private const byte ReportPort = 0x10;

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl_check_extension_generic: GUEST_MEMFD and GUEST_MEMFD_FLAGS only #ifdef CONFIG_KVM_GUEST_MEMFD -> 0",
        Profile = EmulatedProfile.LikeThisHostWithoutGuestMemfd)]
    public static void guest_memfd_capabilities_read_zero_on_dev_kvm_and_every_vm(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        foreach (int cap in new[] { KvmCaps.KVM_CAP_GUEST_MEMFD, KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS })
        {
            Assert.Equal(0, kvm.CheckExtension(cap));
            Assert.Equal(0, vm.CheckExtension(cap));
        }
        Assert.Equal(GuestMemfdFlags.None, kvm.SupportedGuestMemfdFlags);
        Assert.Equal(GuestMemfdFlags.None, vm.SupportedGuestMemfdFlags);
        // KVM_SET_USER_MEMORY_REGION2 itself is not guest_memfd's: it stays.
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY2));
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY2));
        // What a VMM sees: no guest_memfd backing, and why; host memory instead.
        Assert.Contains("KVM_CAP_GUEST_MEMFD = 0", GuestMemory.GuestMemfdUnavailableReason(vm), StringComparison.Ordinal);
        Assert.Equal(GuestMemoryBacking.HostMemory, GuestMemory.BestBacking(vm));
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl: case KVM_CREATE_GUEST_MEMFD only #ifdef CONFIG_KVM_GUEST_MEMFD; default -> kvm_arch_vm_ioctl -> -ENOTTY, before copy_from_user",
        Profile = EmulatedProfile.LikeThisHostWithoutGuestMemfd)]
    public static void create_guest_memfd_is_enotty_before_any_argument_check(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        long Create(ulong size, ulong flags, ulong reserved = 0)
        {
            var args = new kvm_create_guest_memfd { size = size, flags = flags };
            for (int i = 0; i < 6; i++) args.reserved[i] = reserved;
            return ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref args, 1)));
        }
        ulong ps = (ulong)PageSize;
        // Arguments a guest_memfd kernel accepts ...
        AssertErrno(Errno.ENOTTY, Create(ps, 0), "KVM_CREATE_GUEST_MEMFD(one page)");
        AssertErrno(Errno.ENOTTY, Create(4 * ps, KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED), "KVM_CREATE_GUEST_MEMFD(MMAP|INIT_SHARED)");
        // ... and ones it refuses with EINVAL (size, flags) or EFAULT (the argument is not copied at all).
        AssertErrno(Errno.ENOTTY, Create(0, 0), "KVM_CREATE_GUEST_MEMFD(size 0)");
        AssertErrno(Errno.ENOTTY, Create(ps + 1, ulong.MaxValue, ulong.MaxValue), "KVM_CREATE_GUEST_MEMFD(garbage)");
        AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, Span<byte>.Empty), "KVM_CREATE_GUEST_MEMFD(NULL)");
        AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, 1UL), "KVM_CREATE_GUEST_MEMFD((void *)1)");
        // A request that is still compiled in copies its argument first: NULL is EFAULT there.
        AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Span<byte>.Empty), "KVM_SET_USER_MEMORY_REGION2(NULL)");
        // Not a /dev/kvm or vCPU request in any build: kvm_arch_dev_ioctl and kvm_arch_vcpu_ioctl answer EINVAL.
        using var vcpu = vm.CreateVcpu(0);
        var one = new kvm_create_guest_memfd { size = ps };
        AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref one, 1))), "KVM_CREATE_GUEST_MEMFD on /dev/kvm");
        AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref one, 1))), "KVM_CREATE_GUEST_MEMFD on a vCPU");
        // The SDK says what is missing.
        var ex = AssertErrno(Errno.ENOTTY, () => vm.CreateGuestMemfd(ps).Dispose());
        Assert.Contains("this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0", ex.Message, StringComparison.Ordinal);
    }

    [ConformanceCase("virt/kvm/kvm_main.c check_memory_region_flags: KVM_MEM_GUEST_MEMFD is valid only #ifdef CONFIG_KVM_GUEST_MEMFD -> EINVAL, before the fd is looked up",
        Profile = EmulatedProfile.LikeThisHostWithoutGuestMemfd)]
    public static void guest_memfd_memory_slots_are_einval_before_the_descriptor_is_looked_up(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)PageSize;
        using var memory = vm.AllocateMemory(2 * ps);
        var region = new kvm_userspace_memory_region2
        {
            slot = 1, flags = KvmConstants.KVM_MEM_GUEST_MEMFD, guest_phys_addr = Gpa, memory_size = ps,
            userspace_addr = (ulong)memory.Address, guest_memfd = (uint)kvm.Handle.Number,
        };
        // Not a guest_memfd (EINVAL from kvm_gmem_bind on a guest_memfd kernel) ...
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region));
        // ... no descriptor at all (EBADF there): the flag check comes first.
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region with { guest_memfd = 0x7fff0000 }));
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region with { flags = region.flags | KvmConstants.KVM_MEM_READONLY }));
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region with { flags = region.flags | KvmConstants.KVM_MEM_LOG_DIRTY_PAGES }));
        // The legacy ioctl never took the flag.
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion(new kvm_userspace_memory_region
        {
            slot = 1, flags = KvmConstants.KVM_MEM_GUEST_MEMFD, guest_phys_addr = Gpa, memory_size = ps, userspace_addr = (ulong)memory.Address,
        }));

        // The same region as a plain slot binds; even a delete (size 0) carrying the flag is refused and the slot stays.
        using var slot = vm.AddMemorySlot(1, Gpa, memory, 0, ps);
        Assert.False(slot.HasGuestMemfd);
        AssertErrno(Errno.EINVAL, () => vm.SetUserMemoryRegion2(region with { memory_size = 0 }));
        AssertErrno(Errno.EEXIST, () => vm.AddMemorySlot(2, Gpa, memory, ps, ps).Dispose());
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memory_region + arch/x86/kvm/mmu/mmu.c __kvm_faultin_pfn: plain slots need no guest_memfd",
        Profile = EmulatedProfile.LikeThisHostWithoutGuestMemfd)]
    public static void a_long_mode_guest_runs_in_host_memory(CaseContext ctx)
    {
        // The micro-VM's layout in ordinary host memory (GuestMemoryBacking.HostMemory), the way a VMM runs guests on
        // such a kernel: the guest writes its memory, reports through a port and halts; the host sees the write.
        const ulong Data = LongModeGuest.CodeGpa + 0x800;
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, GuestMemoryBacking.HostMemory, a =>
        {
            a.mov(rax, 0x1122_3344_5566_7788L);
            a.mov(__qword_ptr[(long)Data], rax);
            a.mov(al, __byte_ptr[(long)Data + 8]);
            a.@out(ReportPort, al);
            a.hlt();
        });
        Assert.Equal(GuestMemoryBacking.HostMemory, guest.Memory.Backing);
        Assert.Null(guest.Memory.Memfd);
        guest.Memory.Write<byte>(Data + 8, 0xa5);

        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"expected the report port, got {exit.ToString()}");
        Assert.Equal(ReportPort, exit.IoPort);
        Assert.Equal(0xa5, exit.IoData[0]);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        Assert.Equal(0x1122_3344_5566_7788UL, guest.Memory.Read<ulong>(Data));

        // Asking for guest_memfd memory names the missing capability instead of failing with a bare ENOTTY.
        using var vm = kvm.CreateVm();
        var ex = Assert.Throws<MicroVmException>(() => GuestMemory.Create(vm, LongModeGuest.MemorySize, GuestMemoryBacking.GuestMemfd).Dispose());
        Assert.Contains("KVM_CAP_GUEST_MEMFD = 0", ex.Message, StringComparison.Ordinal);
    }
}
