// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>vCPU creation, register ioctls, bad input, stopping (immediate_exit, kick), pre-fault, madvise, fd leaks.</summary>
public sealed class VcpuTests
{
    [Fact]
    public void Create_vcpu_ids_limits_and_duplicates_answer_like_the_host()
    {
        using var k = new EmulatedKernel();
        using (var sys = Raw.OpenKvm(k))
        using (var vm = Raw.CreateVm(k, sys))
        {
            var fds = new List<KernelFd>();
            foreach (ulong id in new ulong[] { 0, 1, 1023, 4095 })
            {
                long rc = k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, id);
                Assert.True(rc > 2, $"id {id}: {rc}");
                fds.Add(k.Adopt((int)rc));
            }
            Assert.Equal(Raw.EEXIST, k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL));
            Assert.Equal(Raw.EINVAL, k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 4096UL));
            Assert.Equal(Raw.EINVAL, k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, ulong.MaxValue));
            Assert.Equal(Raw.EINVAL, k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 1UL << 32));
            // The id stays taken after its fd is closed: the vCPU lives until the VM is destroyed.
            fds[0].Dispose();
            Assert.Equal(Raw.EEXIST, k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL));
            foreach (var fd in fds) fd.Dispose();
        }
        Assert.Equal(0, k.OpenFdCount);
        Assert.Equal(0, k.LiveVmCount);
    }

    [Fact]
    public void A_vcpu_fd_keeps_its_vm_alive_and_closing_everything_leaks_nothing()
    {
        using var k = new EmulatedKernel();
        var sys = Raw.OpenKvm(k);
        var vm = Raw.CreateVm(k, sys);
        var vcpu = k.Adopt((int)k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL));
        Assert.Equal(0, MappedRegion.Map(k, vcpu, 3 * (ulong)Raw.Page, PROT_READ | PROT_WRITE, MAP_SHARED, 0, out var run));
        vm.Dispose();
        vcpu.Dispose();
        Assert.Equal(1, k.LiveVmCount); // the mapping holds the vCPU file, which holds the VM
        run!.Dispose();
        sys.Dispose();
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(0, k.OpenFdCount);
        Assert.Equal(0, k.MappingCount);
    }

    [Fact]
    public void Bad_requests_and_bad_arguments_get_the_kernels_errno_and_change_nothing()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        var before = g.Sregs;
        Assert.Equal(Raw.EINVAL, k.Ioctl(g.Vcpu, IoctlEncoding._IO(0xAE, 0x77), 0UL));
        Assert.Equal(Raw.EINVAL, k.Ioctl(g.Vcpu, 0x1234, 0UL));
        Assert.Equal(Raw.EINVAL, k.Ioctl(g.Vcpu, KvmIoctls.KVM_CHECK_EXTENSION, 0UL));
        Assert.Equal(Raw.EINVAL, k.Ioctl(g.Vcpu, KvmIoctls.KVM_RUN, 1UL));
        Assert.Equal(Raw.EFAULT, k.Ioctl(g.Vcpu, KvmIoctls.KVM_GET_REGS, 0UL));
        Assert.Equal(Raw.EFAULT, k.Ioctl(g.Vcpu, KvmIoctls.KVM_SET_SREGS, new byte[10]));
        foreach (var bad in BadSregs(before))
        {
            var s = bad;
            Assert.Equal(Raw.EINVAL, k.Ioctl(g.Vcpu, KvmIoctls.KVM_SET_SREGS, Raw.Bytes(ref s)));
            Assert.Equal(before.cr0, g.Sregs.cr0);
            Assert.Equal(before.efer, g.Sregs.efer);
        }
        var regs = new kvm_regs { rax = 1, r15 = 2, rip = 3, rflags = 0 };
        g.Regs = regs;
        Assert.Equal(2UL, g.Regs.rflags); // the fixed bit is forced on
        Assert.Equal(2UL, g.Regs.r15);
        g.Vcpu.Dispose();
        Assert.Equal(Raw.EBADF, k.Ioctl(g.Vcpu, KvmIoctls.KVM_RUN, 0UL));
    }

    private static IEnumerable<kvm_sregs> BadSregs(kvm_sregs s)
    {
        yield return s with { cr0 = 0x8000_0000 };                 // PG without PE
        yield return s with { cr0 = 1UL << 32 };                   // reserved high bits
        yield return s with { cr0 = 0x2000_0011 };                 // NW without CD
        yield return s with { cr4 = 1UL << 12 };                   // LA57: reserved without CPUID (observed)
        yield return s with { efer = 0x400 };                      // LMA without paging
        yield return s with { cr0 = 0x8000_0011, efer = 0x100 };   // LME+PG without PAE/LMA
        yield return s with { apic_base = 0xfee0_0c00 };           // x2APIC bit (reserved without x2APIC)
    }

    [Fact]
    public void Kvm_run_before_any_memslot_is_ENOSPC_on_a_shadow_mmu_host_and_not_with_tdp()
    {
        using (var k = new EmulatedKernel())
        using (var g = new RawGuest(k, slot: false))
            Assert.Equal(-28, g.RunOnce());
        using (var k = new EmulatedKernel(EmulatorConfig.X86_64()))
        using (var g = new RawGuest(k, slot: false))
        {
            // Reset vector 0xfffffff0 has no memory: the fetch cannot be emulated.
            g.RunExpect(KvmExitReason.KVM_EXIT_INTERNAL_ERROR);
        }
    }

    [Fact]
    public void Immediate_exit_returns_EINTR_without_running_and_leaves_exit_reason()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => a.hlt());
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        g.Regs = g.Regs with { rip = RawGuest.CodeGpa };
        g.ImmediateExit = true;
        Assert.Equal(-4, g.RunOnce());
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.ExitReason);
        Assert.Equal(RawGuest.CodeGpa, g.Regs.rip);
        g.ImmediateExit = false;
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
    }

    [Fact]
    public void A_pending_in_completes_even_when_immediate_exit_is_set()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => { a.@in(al, 0x20); a.hlt(); });
        g.RunExpect(KvmExitReason.KVM_EXIT_IO);
        g.IoData[0] = 0x77;
        g.ImmediateExit = true;
        Assert.Equal(-4, g.RunOnce());
        Assert.Equal(0x77UL, g.Regs.rax & 0xff);
        Assert.Equal(RawGuest.CodeGpa + 2, g.Regs.rip);
    }

    [Fact]
    public void A_kick_stops_an_endless_guest_with_EINTR_and_KVM_EXIT_INTR()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            var self = a.CreateLabel();
            a.Label(ref self);
            a.inc(rcx);
            a.jmp(self);
        });
        int tid = 0;
        long rc = 0;
        var runner = new Thread(() =>
        {
            Volatile.Write(ref tid, k.GetTid());
            rc = g.RunOnce();
        });
        runner.Start();
        // Kick until the run ends: the first kick may land before the thread entered KVM_RUN (and is then lost,
        // like a signal handled outside KVM_RUN).
        while (!runner.Join(20))
        {
            if (Volatile.Read(ref tid) != 0) Assert.Equal(0, k.KickThread(tid));
        }
        Assert.Equal(-4, rc);
        Assert.Equal(KvmExitReason.KVM_EXIT_INTR, g.ExitReason);
        Assert.True(g.Regs.rcx > 0, "the guest ran before the kick");
        // The signal is consumed: the next run is not interrupted by it.
        g.LongMode(a => a.hlt());
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
    }

    [Fact]
    public void Pre_fault_memory_checks_arguments_and_updates_the_range_in_place_with_tdp()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var g = new RawGuest(k, slot: false);
        ulong page = (ulong)Raw.Page;
        long Call(ref kvm_pre_fault_memory r) => k.Ioctl(g.Vcpu, KvmIoctls.KVM_PRE_FAULT_MEMORY, Raw.Bytes(ref r));
        Assert.Equal(0, Raw.Region1(k, g.Vm, 0, 0, 0x10_0000, 4 * page, (ulong)g.Memory.Address));
        var bad = new kvm_pre_fault_memory { gpa = 0x10_0000, size = page, flags = 1 };
        Assert.Equal(Raw.EINVAL, Call(ref bad));
        bad = new kvm_pre_fault_memory { gpa = 0x10_0000, size = 0 };
        Assert.Equal(Raw.EINVAL, Call(ref bad));
        bad = new kvm_pre_fault_memory { gpa = 0x10_0001, size = page };
        Assert.Equal(Raw.EINVAL, Call(ref bad));
        bad = new kvm_pre_fault_memory { gpa = ulong.MaxValue - page + 1, size = 2 * page };
        Assert.Equal(Raw.EINVAL, Call(ref bad));

        var all = new kvm_pre_fault_memory { gpa = 0x10_0000, size = 4 * page };
        Assert.Equal(0, Call(ref all));
        Assert.Equal(0x10_0000 + 4 * page, all.gpa);
        Assert.Equal(0UL, all.size);

        // Runs past the slot: the mapped part succeeds, the rest is left in the struct.
        var partial = new kvm_pre_fault_memory { gpa = 0x10_0000 + 2 * page, size = 4 * page };
        Assert.Equal(0, Call(ref partial));
        Assert.Equal(0x10_0000 + 4 * page, partial.gpa);
        Assert.Equal(2 * page, partial.size);

        // Nothing mapped at all: the arch error (no memslot → RET_PF_EMULATE → ENOENT).
        var none = new kvm_pre_fault_memory { gpa = 0x80_0000, size = page };
        Assert.Equal(Raw.ENOENT, Call(ref none));
        Assert.Equal(page, none.size);
    }

    [Fact]
    public void Pre_fault_memory_without_tdp_is_EOPNOTSUPP_like_this_host()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        var r = new kvm_pre_fault_memory { gpa = 0x10_0000, size = (ulong)Raw.Page };
        Assert.Equal(Raw.EOPNOTSUPP, k.Ioctl(g.Vcpu, KvmIoctls.KVM_PRE_FAULT_MEMORY, Raw.Bytes(ref r)));
        Assert.Equal((ulong)Raw.Page, r.size);
    }

    [Fact]
    public void Madvise_on_a_guest_memfd_mapping_accepts_hugepage_and_dontneed_and_refuses_collapse()
    {
        using var k = new EmulatedKernel();
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        const ulong Pmd = 2UL << 20;
        using var gmem = Raw.CreateGmem(k, vm, Pmd, KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED);
        Assert.Equal(0, MappedRegion.Map(k, null, 2 * Pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, 0, out var reserved));
        using (reserved)
        {
            nint aligned = (nint)(((ulong)reserved!.Address + Pmd - 1) & ~(Pmd - 1));
            Assert.Equal(0, MappedRegion.Map(k, gmem, Pmd, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_SHARED, 0, out var mem, aligned));
            using (mem)
            {
                Assert.Equal(aligned, mem!.Address);
                mem.GetSpan(0, 1)[0] = 9;
                Assert.Equal(0, mem.Advise(0, Pmd, MADV_HUGEPAGE));
                Assert.Equal(Raw.EINVAL, mem.Advise(0, Pmd, MADV_COLLAPSE));
                Assert.Equal(0, mem.Advise(0, Pmd, MADV_DONTNEED));
                Assert.Equal(9, mem.GetSpan(0, 1)[0]);
            }
            Assert.Equal(Raw.EINVAL, k.Madvise(reserved.Address + 1, 4096, MADV_DONTNEED));
        }
    }
}
