// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Guest memory in anonymous mappings made through the emulated kernel is used directly by the interpreter (cached
/// like a mapped pfn); its munmap is the MMU notifier: it invalidates the cached pages and waits for running vCPUs, so
/// a guest can never touch memory that is gone — it faults like on the real kernel, and the process survives.
/// </summary>
public sealed class DirectHostMemoryTests
{
    private const ulong Data = 0x40_0000;

    [Fact]
    public async Task Unmapping_guest_memory_under_a_running_vcpu_ends_its_run_with_efault()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false));
        using var g = new RawGuest(kernel);
        g.LongMode(a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.inc(__qword_ptr[(long)Data]);
            a.jmp(loop);
        });
        var run = Task.Run(g.RunOnce);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (g.Read64(Data) < 10_000)
        {
            Assert.True(DateTime.UtcNow < deadline, "the guest did not start counting");
            Thread.Yield();
        }
        // The guest is inside KVM_RUN writing through a cached page: take its memory away (munmap).
        g.Memory.Dispose();
        long rc = await run.WaitAsync(TimeSpan.FromSeconds(20));
        // The next access re-faults, finds no mapping behind userspace_addr: -EFAULT (kvm_handle_error_pfn).
        Assert.Equal(-(long)Errno.EFAULT, rc);
    }

    [Fact]
    public void A_dirty_logged_slot_in_directly_used_memory_still_logs_every_write()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false));
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        ulong ps = (ulong)Environment.SystemPageSize;
        using var code = vm.AllocateMemory(ps);
        using var data = vm.AllocateMemory(4 * ps);
        code.Write(0, RawGuest.Assemble(16, 0, a =>
        {
            // Write page 0 twice around an exit, so the second write hits a page the vCPU has cached.
            a.mov(__byte_ptr[0x1000], 1);
            a.@out(0x10, al);
            a.mov(__byte_ptr[0x1000 + 2 * (int)ps], 2);
            a.@out(0x10, al);
            a.mov(__byte_ptr[0x1000 + 8], 3);
            a.hlt();
        }));
        using var codeSlot = vm.AddMemorySlot(0, 0x10000, code);
        using var dataSlot = vm.AddMemorySlot(1, 0x11000, data, MemorySlotFlags.LogDirtyPages);
        using var vcpu = vm.CreateVcpu();
        var sregs = vcpu.GetSregs();
        sregs.cs.@base = sregs.ds.@base = 0x10000;
        sregs.cs.selector = sregs.ds.selector = 0x1000;
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });

        Assert.Equal(KvmExitReason.KVM_EXIT_IO, vcpu.RunBounded().Reason);
        Assert.Equal([0UL], dataSlot.GetDirtyLog().DirtyPages);
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, vcpu.RunBounded().Reason);
        Assert.Equal([2UL], dataSlot.GetDirtyLog().DirtyPages);
        // Page 0 again, after the log was read and cleared: logged again, not lost to the cache.
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.RunBounded().Reason);
        Assert.Equal([0UL], dataSlot.GetDirtyLog().DirtyPages);
        Assert.Equal(3, data.Read<byte>(8));
    }
}

/// <summary>
/// The page walker sets Accessed on every entry it used and Dirty on the leaf of a write (paging_tmpl.h
/// FNAME(update_accessed_dirty_bits)); the differential fuzzer compares the resulting dirty logs with the real kernel.
/// </summary>
public sealed class AccessedDirtyBitTests
{
    private const ulong Accessed = 1UL << 5, Dirty = 1UL << 6;

    [Fact]
    public void A_read_sets_accessed_and_a_write_sets_dirty_on_the_leaf_only()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false));
        using var g = new RawGuest(kernel);
        g.LongMode(a =>
        {
            a.mov(rax, __qword_ptr[0x40_0000]);
            a.hlt();
            a.mov(__qword_ptr[0x40_0000], rax);
            a.hlt();
        });
        ulong Pde(int i) => g.Read64(RawGuest.Pd + (ulong)i * 8);
        Assert.Equal(0UL, g.Read64(RawGuest.Pml4) & (Accessed | Dirty));
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(Accessed, g.Read64(RawGuest.Pml4) & (Accessed | Dirty));
        Assert.Equal(Accessed, g.Read64(RawGuest.Pdpt) & (Accessed | Dirty));
        Assert.Equal(Accessed, Pde(1) & (Accessed | Dirty)); // the code's 2 MiB page: fetched, never written
        Assert.Equal(Accessed, Pde(2) & (Accessed | Dirty)); // the data page: read
        Assert.Equal(0UL, Pde(0) & (Accessed | Dirty));      // not used
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(Accessed | Dirty, Pde(2) & (Accessed | Dirty));
        Assert.Equal(Accessed, g.Read64(RawGuest.Pml4) & (Accessed | Dirty));
    }
}
