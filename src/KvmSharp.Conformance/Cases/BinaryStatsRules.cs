// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Binary statistics (KVM_GET_STATS_FD, KVM_CAP_BINARY_STATS_FD): the file virt/kvm/binary_stats.c kvm_stats_read
/// serves — header, id string, descriptors, values — with the descriptor tables of arch/x86/kvm/x86.c
/// (kvm_vm_stats_desc, kvm_vcpu_stats_desc after include/linux/kvm_host.h KVM_GENERIC_VM_STATS /
/// KVM_GENERIC_VCPU_STATS), the file rules of virt/kvm/kvm_main.c kvm_vm_ioctl_get_stats_fd /
/// kvm_vcpu_ioctl_get_stats_fd, and the counters a tiny guest makes deterministic. Every expectation was read on
/// Linux 6.18 kvm_pvm in C first; the tables below are that host's, written out by hand, not taken from the emulator.
/// </summary>
public static class BinaryStatsRules
{
    private const string Main = "virt/kvm/kvm_main.c";
    private const string Stats = "virt/kvm/binary_stats.c kvm_stats_read";

    /// <summary>One descriptor: name, flags, exponent, size, offset, bucket_size.</summary>
    private readonly record struct Row(string Name, uint Flags, short Exponent, ushort Size, uint Offset, uint Bucket)
    {
        public static implicit operator Row((string Name, uint Flags, short Exponent, ushort Size, uint Offset, uint Bucket) t) =>
            new(t.Name, t.Flags, t.Exponent, t.Size, t.Offset, t.Bucket);
    }

    // As this host lists them; flags 0x1 instant, 0x2 peak, 0x20 seconds, 0x24 log histogram of seconds, 0x41
    // instant boolean.
    private static readonly Row[] s_x86Vm =
    [
        ("remote_tlb_flush", 0, 0, 1, 0, 0), ("remote_tlb_flush_requests", 0, 0, 1, 8, 0),
        ("mmu_shadow_zapped", 0, 0, 1, 16, 0), ("mmu_pte_write", 0, 0, 1, 24, 0), ("mmu_pde_zapped", 0, 0, 1, 32, 0),
        ("mmu_flooded", 0, 0, 1, 40, 0), ("mmu_recycled", 0, 0, 1, 48, 0), ("mmu_cache_miss", 0, 0, 1, 56, 0),
        ("mmu_unsync", 1, 0, 1, 64, 0), ("pages_4k", 1, 0, 1, 72, 0), ("pages_2m", 1, 0, 1, 80, 0),
        ("pages_1g", 1, 0, 1, 88, 0), ("nx_lpage_splits", 1, 0, 1, 96, 0), ("max_mmu_rmap_size", 2, 0, 1, 112, 0),
        ("max_mmu_page_hash_collisions", 2, 0, 1, 104, 0),
    ];

    private static readonly string[] s_x86VcpuCounters =
    [
        "pf_taken", "pf_fixed", "pf_emulate", "pf_spurious", "pf_fast", "pf_mmio_spte_created", "pf_guest", "tlb_flush",
        "invlpg", "exits", "io_exits", "mmio_exits", "signal_exits", "irq_window_exits", "nmi_window_exits", "l1d_flush",
        "halt_exits", "request_irq_exits", "irq_exits", "host_state_reload", "fpu_reload", "insn_emulation",
        "insn_emulation_fail", "hypercalls", "irq_injections", "nmi_injections", "req_event", "nested_run",
        "directed_yield_attempted", "directed_yield_successful", "preemption_reported", "preemption_other",
        "guest_mode", "notify_window_exits",
    ];

    private static IEnumerable<Row> X86Vcpu()
    {
        yield return ("halt_successful_poll", 0, 0, 1, 0, 0);
        yield return ("halt_attempted_poll", 0, 0, 1, 8, 0);
        yield return ("halt_poll_invalid", 0, 0, 1, 16, 0);
        yield return ("halt_wakeup", 0, 0, 1, 24, 0);
        yield return ("halt_poll_success_ns", 0x20, -9, 1, 32, 0);
        yield return ("halt_poll_fail_ns", 0x20, -9, 1, 40, 0);
        yield return ("halt_wait_ns", 0x20, -9, 1, 48, 0);
        yield return ("halt_poll_success_hist", 0x24, -9, 32, 56, 0);
        yield return ("halt_poll_fail_hist", 0x24, -9, 32, 312, 0);
        yield return ("halt_wait_hist", 0x24, -9, 32, 568, 0);
        yield return ("blocking", 0x41, 0, 1, 824, 0);
        uint offset = 832;
        foreach (string name in s_x86VcpuCounters)
        {
            yield return new Row(name, name == "guest_mode" ? 0x41u : 0u, 0, 1, offset, 0);
            offset += 8;
        }
    }

    /// <summary>
    /// kvm_pvm's statistics after upstream's (VM: mmu_kicks_spared; vCPU: pf_parked, pf_park_timeouts): on the real
    /// kernel when kvm_pvm is loaded, on the emulator because the LikeThisHost preset reproduces this host.
    /// </summary>
    private static bool HostExtras(CaseContext ctx) => !ctx.Target.IsReal || Directory.Exists("/sys/module/kvm_pvm");

    private static void AssertTable(KvmStatistics stats, IEnumerable<Row> expected)
    {
        var want = expected.ToArray();
        var h = stats.Header;
        Assert.Equal((0u, 48u, (uint)want.Length, 24u, 72u), (h.flags, h.name_size, h.num_desc, h.id_offset, h.desc_offset));
        Assert.Equal(72u + (uint)want.Length * (16 + 48), h.data_offset);
        var got = stats.Descriptors.Select(d => new Row(d.Name, d.Flags, d.Exponent, (ushort)d.Size, d.Offset, d.BucketSize)).ToArray();
        Assert.Equal(want, got);
    }

    [ConformanceCase(Main + " kvm_vm_ioctl_get_stats_fd / kvm_vcpu_ioctl_get_stats_fd + arch/x86/kvm/x86.c kvm_vm_stats_desc, kvm_vcpu_stats_desc (6.18): the header (name_size 48, id at 24, descriptors at 72, values after them) and every descriptor's name, flags, exponent, size, offset and bucket size; this host lists kvm_pvm's counters after upstream's")]
    public static void header_and_descriptor_tables_are_the_kernels(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_BINARY_STATS_FD));
        using var vm = kvm.CreateVm();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_BINARY_STATS_FD));
        using var vcpu = vm.CreateVcpu(0);
        bool extras = HostExtras(ctx);
        using (var stats = vm.OpenStatistics())
        {
            var table = s_x86Vm.AsEnumerable();
            if (extras) table = table.Append(new Row("mmu_kicks_spared", 0, 0, 1, 120, 0));
            AssertTable(stats, table);
            Assert.Equal(extras ? 16 : 15, stats.ValueCount);
        }
        using (var stats = vcpu.OpenStatistics())
        {
            var table = X86Vcpu();
            if (extras) table = table.Append(new Row("pf_parked", 0, 0, 1, 1104, 0)).Append(new Row("pf_park_timeouts", 0, 0, 1, 1112, 0));
            AssertTable(stats, table);
            Assert.Equal(extras ? 140 : 138, stats.ValueCount);
            Assert.Equal(KvmStatisticKind.LogHistogram, stats.GetDescriptor("halt_wait_hist").Kind);
            Assert.Equal((KvmStatisticKind.Instant, KvmStatisticUnit.Boolean), (stats.GetDescriptor("blocking").Kind, stats.GetDescriptor("blocking").Unit));
            // A new vCPU's values are all 0.
            Assert.All(stats.Read().Values.ToArray(), v => Assert.Equal(0UL, v));
        }
    }

    [ConformanceCase(Main + " kvm_create_vm / kvm_vcpu_init: the id is \"kvm-%d\" / \"kvm-%d/vcpu-%d\" of task_pid_nr(current), the thread that created the VM or vCPU, fixed from then on")]
    public static void id_names_the_creating_thread(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        int tid = ctx.Kernel.GetTid();
        using (var vm = kvm.CreateVm())
        using (var vcpu = vm.CreateVcpu(7))
        using (var vmStats = vm.OpenStatistics())
        using (var vcpuStats = vcpu.OpenStatistics())
        {
            Assert.Equal($"kvm-{tid}", vmStats.Id);
            Assert.Equal($"kvm-{tid}/vcpu-7", vcpuStats.Id);
        }
        // A VM created on another thread carries that thread's id; a vCPU created here, this thread's.
        int other = 0;
        Vm? created = null;
        var thread = new Thread(() =>
        {
            other = ctx.Kernel.GetTid();
            created = kvm.CreateVm();
        });
        thread.Start();
        thread.Join();
        using (created)
        {
            Assert.NotEqual(tid, other);
            using var vcpu = created!.CreateVcpu(3);
            using var vmStats = created.OpenStatistics();
            using var vcpuStats = vcpu.OpenStatistics();
            Assert.Equal($"kvm-{other}", vmStats.Id);
            Assert.Equal($"kvm-{tid}/vcpu-3", vcpuStats.Id);
        }
    }

    [ConformanceCase(Stats + " and kvm_vm_stats_fops (read, noop_llseek; O_RDONLY | FMODE_PREAD): read(2) reads at f_pos and advances it, lseek(2) answers f_pos and moves nothing, pread(2) leaves f_pos, reads stop at the end (0 beyond it), pread at a negative offset EINVAL; write EBADF, pwrite ESPIPE, ioctl ENOTTY, mmap ENODEV (EACCES shared writable), fallocate EBADF, ftruncate EINVAL; /dev/kvm refuses the request with EINVAL; the fd pins the VM")]
    public static void stats_file_rules(CaseContext ctx)
    {
        var k = ctx.Kernel;
        using var kvm = ctx.OpenKvm();
        CaseContext.AssertErrno(Errno.EINVAL, k.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_STATS_FD, 0UL), "KVM_GET_STATS_FD on /dev/kvm");
        var vm = kvm.CreateVm();
        var vcpu = vm.CreateVcpu(0);
        long rc = k.Ioctl(vm.Handle, KvmIoctls.KVM_GET_STATS_FD, 1234UL);
        Assert.True(rc >= 0, $"KVM_GET_STATS_FD ignores its argument: {rc}");
        using var fd = k.Adopt((int)rc);
        kvm_stats_header h = default;
        Assert.Equal(24, k.Pread(fd, KvmSharpBytes(ref h), 0));
        long end;
        using (var parsed = vm.OpenStatistics()) end = h.data_offset + 8L * parsed.ValueCount; // the values end the file

        Span<byte> buf = stackalloc byte[4096];
        // read(2) at f_pos: 10 then 6 bytes; lseek answers 16 whatever it is asked and moves nothing.
        Assert.Equal(10, k.Read(fd, buf[..10]));
        Assert.Equal(6, k.Read(fd, buf[..6]));
        Assert.Equal(16, k.Lseek(fd, 0, LinuxConstants.SEEK_CUR));
        Assert.Equal(16, k.Lseek(fd, 100, LinuxConstants.SEEK_SET));
        Assert.Equal(16, k.Lseek(fd, 0, LinuxConstants.SEEK_END));
        CaseContext.AssertErrno(Errno.EINVAL, k.Lseek(fd, 0, 7), "lseek whence 7");
        Assert.Equal(8, k.Read(fd, buf[..8]));
        Assert.Equal(h.desc_offset, BitConverter.ToUInt32(buf[..4])); // bytes 16..23 of the header: desc_offset, data_offset
        // pread does not move f_pos.
        Assert.Equal(8, k.Pread(fd, buf[..8], 0));
        Assert.Equal(24, k.Lseek(fd, 0, LinuxConstants.SEEK_CUR));
        // Reading on to the end gives the whole file and leaves f_pos there.
        long total = 24;
        long n;
        while ((n = k.Read(fd, buf[..1000])) > 0) total += n;
        Assert.Equal(0, n);
        Assert.Equal(end, total);
        Assert.Equal(end, k.Lseek(fd, 0, LinuxConstants.SEEK_CUR));
        // pread: a short read at the end, nothing beyond it, EINVAL before the start; 0 bytes asked, 0 read.
        Assert.Equal(8, k.Pread(fd, buf[..100], end - 8));
        Assert.Equal(0, k.Pread(fd, buf[..100], end));
        Assert.Equal(0, k.Pread(fd, buf[..8], end + 1_000_000));
        Assert.Equal(0, k.Pread(fd, buf[..0], 0));
        CaseContext.AssertErrno(Errno.EINVAL, k.Pread(fd, buf[..8], -1), "pread at -1");
        Assert.Equal(4, k.Pread(fd, buf[..4], 2));
        Assert.Equal(h.name_size << 16, BitConverter.ToUInt32(buf[..4])); // flags' high half, name_size's low half
        // What an O_RDONLY anon file without write, ioctl or mmap answers.
        CaseContext.AssertErrno(Errno.EBADF, k.Write(fd, buf[..4]), "write");
        CaseContext.AssertErrno(Errno.ESPIPE, k.Pwrite(fd, buf[..4], 0), "pwrite");
        CaseContext.AssertErrno(Errno.ENOTTY, k.Ioctl(fd, KvmIoctls.KVM_GET_STATS_FD, 0UL), "KVM_GET_STATS_FD on the stats fd");
        CaseContext.AssertErrno(Errno.ENOTTY, k.Ioctl(fd, KvmIoctls.KVM_CHECK_EXTENSION, 0UL), "KVM_CHECK_EXTENSION on the stats fd");
        CaseContext.AssertErrno(Errno.ENODEV, k.Mmap(0, 4096, LinuxConstants.PROT_READ, LinuxConstants.MAP_SHARED, fd, 0, out _), "mmap shared read-only");
        CaseContext.AssertErrno(Errno.ENODEV, k.Mmap(0, 4096, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_PRIVATE, fd, 0, out _), "mmap private writable");
        CaseContext.AssertErrno(Errno.EACCES, k.Mmap(0, 4096, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, fd, 0, out _), "mmap shared writable");
        CaseContext.AssertErrno(Errno.EBADF, k.Fallocate(fd, 0, 0, 4096), "fallocate");
        CaseContext.AssertErrno(Errno.EINVAL, k.Ftruncate(fd, 0), "ftruncate");
        Assert.Equal(0, k.Fstat(fd, out var st));
        Assert.Equal((0x180u, 0L), (st.Mode, st.Size));
        // The file holds a VM reference: with the VM and vCPU fds closed it still reads, and so does a vCPU stats fd.
        using var vcpuStats = vcpu.OpenStatistics();
        vcpu.Dispose();
        vm.Dispose();
        Assert.Equal(24, k.Pread(fd, KvmSharpBytes(ref h), 0));
        Assert.Equal(0u, h.flags);
        Assert.Equal(0UL, vcpuStats.ReadValue("halt_exits"));
    }

    /// <summary>
    /// Three OUTs (port 0x80), two byte writes to GPA 0x30000 (no memslot: MMIO), then HLT, in real mode.
    /// </summary>
    private static RealModeGuest ExitGuest(Kvm kvm) => RealModeGuest.Create(kvm, a =>
    {
        a.mov(al, 0x41);
        a.@out(0x80, al);
        a.@out(0x80, al);
        a.@out(0x80, al);
        a.mov(bx, 0x3000);
        a.mov(ds, bx);
        a.mov(__byte_ptr[0], al);
        a.mov(__byte_ptr[4], al);
        a.hlt();
    });

    [ConformanceCase("arch/x86/kvm/x86.c / svm.c vCPU counters after a real-mode guest's 3 port writes, 2 MMIO writes and a HLT: halt_exits 1 (__kvm_emulate_halt), mmio_exits 2 (x86_emulate_instruction), io_exits 3 (io_interception; 0 on kvm_pvm: KvmPvmIoExitsNotCounted), exits 6 (at least 6 on hardware), fpu_reload one per KVM_RUN (kvm_put_guest_fpu; immediate_exit too, a run refused for its argument not)")]
    public static void exit_counters_after_a_tiny_guest(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = ExitGuest(kvm);
        using var stats = g.Vcpu.OpenStatistics();
        var before = stats.Read();
        int runs = 0;
        var reasons = new List<KvmExitReason>();
        while (true)
        {
            var reason = g.Vcpu.Run().Reason;
            runs++;
            reasons.Add(reason);
            if (reason is not (KvmExitReason.KVM_EXIT_IO or KvmExitReason.KVM_EXIT_MMIO) || runs > 10) break;
        }
        Assert.Equal(new[] { KvmExitReason.KVM_EXIT_IO, KvmExitReason.KVM_EXIT_IO, KvmExitReason.KVM_EXIT_IO,
            KvmExitReason.KVM_EXIT_MMIO, KvmExitReason.KVM_EXIT_MMIO, KvmExitReason.KVM_EXIT_HLT }, reasons);
        var after = stats.Read();
        Assert.Equal(0UL, before["exits"]);
        Assert.Equal(1UL, after["halt_exits"]);
        Assert.Equal(2UL, after["mmio_exits"]);
        Assert.Equal(HostDeviations.KvmPvmIoExitsNotCounted(ctx.Target.IsReal) ? 0UL : 3UL, after["io_exits"]);
        if (ctx.Target.IsReal) Assert.True(after["exits"] >= 6, $"exits {after["exits"]}");
        else Assert.Equal(6UL, after["exits"]);
        Assert.Equal(6UL, after["fpu_reload"]);
        Assert.Equal((0UL, 0UL), (after["irq_injections"], after["nmi_injections"]));

        // immediate_exit: EINTR before entering the guest, still one fpu_reload and no exit.
        g.Vcpu.ImmediateExit = true;
        CaseContext.AssertErrno(Errno.EINTR, ctx.Kernel.Ioctl(g.Vcpu.Handle, KvmIoctls.KVM_RUN, 0UL), "KVM_RUN with immediate_exit");
        g.Vcpu.ImmediateExit = false;
        // KVM_RUN with a non-zero argument: EINVAL in kvm_vcpu_ioctl, before kvm_arch_vcpu_ioctl_run.
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(g.Vcpu.Handle, KvmIoctls.KVM_RUN, 1UL), "KVM_RUN with argument 1");
        stats.ReadInto(after);
        Assert.Equal(7UL, after["fpu_reload"]);
        Assert.Equal(1UL, after["halt_exits"]);
        if (!ctx.Target.IsReal) Assert.Equal(6UL, after["exits"]);
        Assert.Equal(0UL, after["signal_exits"]);
    }

    [ConformanceCase("arch/x86/kvm/svm/svm.c svm_inject_nmi / svm_inject_irq: nmi_injections and irq_injections count a KVM_NMI and a KVM_INTERRUPT as they are handed to the CPU — once when delivery needs no exit (the second round, its pages already mapped), again for each re-injection after a delivery that exited (shadow paging faulting the IDT or stack in: the first round on this host counts 2)")]
    public static void injection_counters(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.hlt();
            a.jmp(loop);
        }, [new IdtVector(2, ResumeSkip: 0), new IdtVector(0x20, ResumeSkip: 0)], idtLimit: 0x21 * 16 - 1);
        using var stats = g.Vcpu.OpenStatistics();
        var s = stats.Read();
        ulong nmis = 0, irqs = 0;
        for (int round = 0; round < 2; round++)
        {
            g.Vcpu.InjectNmi();
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            g.Vcpu.InjectInterrupt(0x20);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            stats.ReadInto(s);
            ulong dn = s["nmi_injections"] - nmis, di = s["irq_injections"] - irqs;
            (nmis, irqs) = (s["nmi_injections"], s["irq_injections"]);
            // The emulator never exits during delivery: once each, every round. The real kernel counts an event again
            // when a host interrupt ends the entry that was delivering it (seen in round 0, and in round 1 under load).
            if (!ctx.Target.IsReal) Assert.Equal((1UL, 1UL), (dn, di));
            else Assert.True(dn >= 1 && di >= 1, $"round {round}: nmi_injections +{dn}, irq_injections +{di}");
        }
        Assert.Equal(new[] { 2UL, 0x20UL, 2UL, 0x20UL }, g.Deliveries.Select(d => d.Vector));
        Assert.Equal(4UL, s["halt_exits"]);
    }

    private static Span<byte> KvmSharpBytes(ref kvm_stats_header h) =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref h, 1));
}
