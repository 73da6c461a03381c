// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.X86;
using KvmSharp.Emulation.X86.Emulate;

namespace KvmSharp.Emulation.Vcpu;

/// <summary>
/// <c>struct kvm_vcpu</c>: id, the kvm_run area, the x86 register state and the emulated "hardware" that runs it.
/// Lives until the VM is destroyed (kvm_destroy_vcpus), not just while its fd is open, so its id stays taken.
/// </summary>
internal sealed class KvmVcpu : IDisposable
{
    private KvmVcpu(Kvm kvm, int id, KvmRunPage run)
    {
        Kvm = kvm;
        Cpu = new X86Cpu(kvm.Kernel.Config.X86Cpu);
        Id = id;
        Run = run;
        VcpuReset.Apply(Cpu);
        Quirks.StuffFeatureMsrs(kvm, Cpu.Msrs);
        // kvm_vcpu_reset(init_event = false) sets MISC_ENABLE only here, at creation (EmulatorConfig.X86MiscEnableAtCreation).
        Cpu.Msrs.MiscEnable = kvm.Kernel.Config.X86MiscEnableAtCreation;
        Cpu.Msrs.IndexList = MsrLists.IndexList(kvm.Kernel.Config);
        Cpu.Msrs.FeatureList = MsrLists.FeatureList(kvm.Kernel.Config);
        // kvm_lapic_reset / kvm_vcpu_is_reset_bsp: MSR_IA32_APICBASE_BSP only on the vCPU whose id is
        // kvm->arch.bsp_vcpu_id (0 unless KVM_SET_BOOT_CPU_ID). VcpuReset sets it for every vCPU; the differential fuzzer
        // found apic_base 0xfee00900 on vCPU 1 where the kernel reports 0xfee00800 (tests/KvmSharp.Fuzzing.Tests/FoundDivergenceTests.cs).
        if (id != 0) Cpu.Sregs.apic_base &= ~BspBit;
        Memory = new GuestPhysicalMemory(kvm);
        Emulator = new X86Emulator(this, Cpu, Memory, run);
        // kvm_vcpu_init: snprintf(vcpu->stats_id, …, "kvm-%d/vcpu-%d", task_pid_nr(current), id).
        Stats = KvmMain.BinaryStats.KvmStats.ForVcpu(kvm.Kernel.Config, kvm.Kernel.GetTid(), id);
        Emulator.Stats = Stats;
        SynchronizeTsc = data => Kvm.Clock.HostWriteTsc(Id, Cpu.Msrs, data);
    }

    /// <summary>kvm_synchronize_tsc(vcpu, &amp;data): a host write of IA32_TSC (X86/TscSync.cs).</summary>
    public Action<ulong> SynchronizeTsc { get; }

    /// <summary>MSR_IA32_APICBASE_BSP.</summary>
    private const ulong BspBit = 1UL << 8;

    public Kvm Kvm { get; }

    public int Id { get; }

    public KvmRunPage Run { get; }

    /// <summary>vcpu->stat and vcpu->stats_id (KVM_GET_STATS_FD on the vCPU fd).</summary>
    public KvmMain.BinaryStats.KvmStats Stats { get; }

    public X86Cpu Cpu { get; }

    public GuestPhysicalMemory Memory { get; }

    public X86Emulator Emulator { get; }

    /// <summary>vcpu->mutex: every vCPU ioctl runs under it; KVM_RUN holds it for the whole run.</summary>
    public Lock Mutex { get; } = new();

    /// <summary>A signal arrived for the thread inside KVM_RUN (IKernel.KickThread).</summary>
    public volatile bool SignalPending;

    /// <summary>
    /// vcpu-&gt;sigset_active / vcpu-&gt;sigset (KVM_SET_SIGNAL_MASK): the signal mask of the thread inside KVM_RUN,
    /// or null for the thread's own. Replaced whole, so a kick on another thread reads one consistent value.
    /// </summary>
    public volatile KvmSigset? RunSignalMask;

    /// <summary>
    /// The wait queue a blocked vCPU (kvm_vcpu_block / kvm_vcpu_halt) sleeps on (vcpu-&gt;wait): a futex word that
    /// <see cref="Kick"/> advances, so a sleep ends at a due time to the microsecond and a kick ends it at once.
    /// </summary>
    private readonly KvmSharp.Kernel.FutexEvent _wake = new();

    /// <summary>The kick count the vCPU's last wait saw: a kick made since then ends the next wait at once.</summary>
    private int _seenKicks;

    /// <summary>
    /// kvm_vcpu_kick / kvm_vcpu_wake_up: a vCPU waiting in KVM_RUN looks at its wake conditions again (an interrupt,
    /// INIT/SIPI, a signal). Harmless when it is not waiting; cheap and safe from any thread (a syscall only while the
    /// vCPU sleeps).
    /// </summary>
    public void Kick() => _wake.Signal();

    /// <summary>
    /// Sleeps until <see cref="Kick"/> or the Stopwatch timestamp <paramref name="due"/> (long.MaxValue: none), but
    /// never longer than <paramref name="maxMilliseconds"/> (the caller looks at its wake conditions again). A kick
    /// made since the previous wait ended ends this one at once (the caller published the condition before it kicked).
    /// The sleep is a futex wait with an absolute CLOCK_MONOTONIC deadline (<see cref="KvmSharp.Kernel.FutexEvent"/>),
    /// like the kernel's hrtimer for the vCPU's timers (lapic.c apic_timer_fn, an HRTIMER_MODE_ABS_HARD timer without
    /// slack): toward a due time the thread's timer slack is 1 ns for the sleep. While asleep, the vCPU counts as
    /// quiesced (<see cref="Quiesce"/>).
    /// </summary>
    public void WaitForKick(long due, int maxMilliseconds)
    {
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        if (due <= now) return;
        if (due != long.MaxValue) TimedWaits++;
        int kicks = _wake.Sequence;
        if (kicks != _seenKicks)
        {
            _seenKicks = kicks;
            return;
        }
        long cap = now + (long)maxMilliseconds * System.Diagnostics.Stopwatch.Frequency / 1000;
        bool toDue = due <= cap;
        // The vCPU is between two instructions here: from now until it is awake again it uses no cached translation.
        Interlocked.Exchange(ref _asleep, 1);
        try
        {
            _wake.Wait(kicks, toDue ? due : cap, precise: toDue);
        }
        finally
        {
            Interlocked.Exchange(ref _asleep, 0);
        }
        _seenKicks = _wake.Sequence;
    }

    /// <summary>
    /// How many <see cref="WaitForKick"/> calls of this vCPU's thread slept toward a due time (a timer), for tests: that
    /// a halt's sleep is bounded by its timer is a count, its latency a measurement (docs/STATUS.md session 24).
    /// </summary>
    internal ulong TimedWaits;

    /// <summary>
    /// True while the vCPU's thread sleeps in <see cref="WaitForKick"/>, for tests: kvm_vcpu_block's <c>blocking</c>
    /// stat is 1 from before its first kvm_vcpu_check_block, so a wake-up sent when a test sees it may find the vCPU
    /// still awake (no halt_wakeup, no halt_wait_ns: the kernel's race too); once this is true it has checked and slept.
    /// </summary>
    internal bool Asleep => Volatile.Read(ref _asleep) != 0;

    /// <summary>vcpu-&gt;halt_poll_ns (KvmMain/HaltPolling.cs, the one place that reads or writes it); 0 for a new vCPU.</summary>
    public uint HaltPollNs;

    // The MMU-notifier handshake for host memory the vCPU may use directly (EmulatedKernel.QuiesceVcpus): inside
    // KVM_RUN, the vCPU acknowledges a request between two instructions, after which it re-validates every cached page.
    private int _inRun;
    private int _asleep;
    private int _quiesceRequested;
    private long _quiesceAcks;

    public void EnterRun() => Interlocked.Exchange(ref _inRun, 1);

    public void LeaveRun() => Volatile.Write(ref _inRun, 0);

    public bool InRun => Volatile.Read(ref _inRun) != 0;

    /// <summary>Called by the run loop between instructions: answers a pending quiesce request.</summary>
    public void PollQuiesce()
    {
        if (Volatile.Read(ref _quiesceRequested) == 0) return;
        Volatile.Write(ref _quiesceRequested, 0);
        Interlocked.Increment(ref _quiesceAcks);
    }

    /// <summary>
    /// Waits until this vCPU cannot be using a page translation cached before the caller's invalidation: it is outside
    /// KVM_RUN, it has finished the instruction it was in, or it is asleep in <see cref="WaitForKick"/> (blocked between
    /// two instructions, as kvm_vcpu_block's vCPU is outside guest mode: the sleeper is not woken, and when it wakes it
    /// sees the invalidation — both sides order their flag write before the other's read with a full fence). The
    /// caller must not hold the kernel lock.
    /// </summary>
    public void Quiesce()
    {
        long acks = Volatile.Read(ref _quiesceAcks);
        Interlocked.Exchange(ref _quiesceRequested, 1);
        var spin = new SpinWait();
        while (InRun && Volatile.Read(ref _asleep) == 0 && Volatile.Read(ref _quiesceAcks) == acks) spin.SpinOnce();
    }

    /// <summary>vcpu->dirty_ring: allocated by kvm_vm_ioctl_create_vcpu when kvm->dirty_ring_size is set, else null.</summary>
    public KvmDirtyRing? DirtyRing { get; private set; }

    /// <summary>x86 vcpu->arch.apic: the in-kernel local APIC, made at creation when the VM has an irqchip (X86/Irqchip/).</summary>
    public X86.Irqchip.Lapic? Lapic { get; set; }

    /// <summary>x86 vcpu->arch.pending_external_vector: a split irqchip's ExtINT from KVM_INTERRUPT, -1 for none.</summary>
    public int PendingExternalVector { get; set; } = -1;

    public static long Create(Kvm kvm, int id, out KvmVcpu? vcpu)
    {
        vcpu = null;
        uint ringBytes = kvm.DirtyRingSize;
        long fileSize = ringBytes == 0 ? 0 : (long)Abi.KvmConstants.KVM_DIRTY_LOG_PAGE_OFFSET * EmulatorConfig.PageSize + ringBytes;
        long r = KvmRunPage.Create(kvm.Arch.VcpuMmapSize, out var run, fileSize);
        if (r != 0) return r;
        KvmDirtyRing? ring = null;
        if (ringBytes != 0)
        {
            // kvm_dirty_ring_alloc (-ENOMEM when vzalloc fails).
            r = KvmDirtyRing.Create(run!.MemfdFd, ringBytes, out ring);
            if (r != 0)
            {
                run!.Dispose();
                return r;
            }
        }
        vcpu = new KvmVcpu(kvm, id, run!) { DirtyRing = ring };
        vcpu.Memory.DirtyRing = ring;
        Arch.TdxLaunch.VcpuCreated(vcpu);
        Arm64.Arm64CounterOffset.VcpuCreated(vcpu);
        return 0;
    }

    public void Dispose()
    {
        lock (Mutex)
        {
            Memory.Dispose();
            DirtyRing?.Dispose();
            Run.Dispose();
        }
    }
}
