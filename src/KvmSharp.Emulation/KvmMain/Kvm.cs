// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.MemoryAttributes;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// <c>struct kvm</c>: one VM. Reference counted (kvm_get_kvm/kvm_put_kvm): the VM fd and every guest_memfd file
/// created on it hold a reference ("The file pins KVM, not the other way 'round", virt/kvm/guest_memfd.c), so the
/// VM outlives its fd while a gmem file or mapping is open.
/// </summary>
internal sealed class Kvm
{
    private readonly Dictionary<int, KvmMemorySlot>[] _memslots;
    private int _users = 1;

    public Kvm(EmulatedKernel kernel, ulong type, VmArchState archState)
    {
        Kernel = kernel;
        Type = type;
        ArchState = archState;
        // kvm_create_vm: snprintf(kvm->stats_id, …, "kvm-%d", task_pid_nr(current)).
        Stats = BinaryStats.KvmStats.ForVm(kernel.Config, kernel.GetTid());
        _memslots = new Dictionary<int, KvmMemorySlot>[kernel.Arch.MaxNrAddressSpaces];
        for (int i = 0; i < _memslots.Length; i++) _memslots[i] = [];
        CoalescedMmio = new CoalescedMmio(this);
    }

    public EmulatedKernel Kernel { get; }

    /// <summary>kvm->stat and kvm->stats_id (KVM_GET_STATS_FD on the VM fd).</summary>
    public BinaryStats.KvmStats Stats { get; }

    public KvmArch Arch => Kernel.Arch;

    /// <summary>The KVM_CREATE_VM type argument.</summary>
    public ulong Type { get; }

    public VmArchState ArchState { get; }

    /// <summary>kvm->mem_attr_array: per-GFN attributes of KVM_SET_MEMORY_ATTRIBUTES (v1, per VM).</summary>
    public RangeMap<ulong> MemAttrArray { get; } = new(0);

    /// <summary>kvm->nr_memslot_pages.</summary>
    public ulong NrMemslotPages { get; set; }

    /// <summary>
    /// kvm->mmu_invalidate_seq: bumped by every invalidation of guest mappings (punch hole, conversion, memslot
    /// deletion, gmem release). A guest MMU caching translations must drop them when it changes.
    /// </summary>
    public long MmuInvalidateSeq { get; private set; }

    public bool Destroyed { get; private set; }

    /// <summary>
    /// kvm->vm_dead, set by kvm_vm_dead (e.g. vmx/tdx.c tdx_handle_ept_violation: a TD's access to a PENDING page with
    /// SEPT_VE_DISABLE): from then on kvm_vm_ioctl and kvm_vcpu_ioctl answer -EIO ("if (kvm->mm != current->mm ||
    /// kvm->vm_dead) return -EIO;").
    /// </summary>
    public bool VmDead => _vmDead;

    private volatile bool _vmDead;

    /// <summary>
    /// kvm_main.c kvm_vm_dead: "kvm->vm_dead = true; kvm->vm_bugged…; kvm_make_all_cpus_request(kvm, KVM_REQ_VM_DEAD)" —
    /// every vCPU is kicked, and one inside KVM_RUN (running or blocked) returns -EIO at its next check
    /// (x86.c vcpu_enter_guest: "if (kvm_check_request(KVM_REQ_VM_DEAD, vcpu)) { r = -EIO; goto out; }").
    /// </summary>
    public void MarkDead()
    {
        _vmDead = true;
        // From a vCPU thread, without the kernel lock (the caller may hold others): vCPUs are only ever appended, and
        // one created after this sees the flag at its first ioctl.
        for (int i = 0; i < Vcpus.Count; i++) Vcpus[i].Kick();
    }

    /// <summary>
    /// kvm-&gt;max_halt_poll_ns: KVM_CAP_HALT_POLL's args[0] (KvmMain/HaltPolling.cs, the one place that reads or writes
    /// it), the maximum once <see cref="OverrideHaltPollNs"/> is set.
    /// </summary>
    public uint MaxHaltPollNs;

    /// <summary>kvm-&gt;override_halt_poll_ns: KVM_CAP_HALT_POLL was enabled (KvmMain/HaltPolling.cs).</summary>
    public volatile bool OverrideHaltPollNs;

    /// <summary>kvm->vcpus: every vCPU created (kept until the VM is destroyed, so an id is never reused).</summary>
    public List<KvmVcpu> Vcpus { get; } = [];

    /// <summary>
    /// x86 kvm->arch.n_max_mmu_pages &gt; 0: set by kvm_arch_commit_memory_region on the first memslot creation
    /// (kvm_mmu_calculate_default_mmu_pages, at least KVM_MIN_ALLOC_MMU_PAGES); the shadow MMU needs it to load.
    /// </summary>
    public bool MmuPagesAvailable { get; set; }

    /// <summary>
    /// x86 kvm->arch's kvmclock, TSC frequency and TSC synchronisation state (KVM_GET/SET_CLOCK, KVM_GET/SET_TSC_KHZ,
    /// the generations of kvm_synchronize_tsc: X86/TscSync.cs).
    /// </summary>
    public X86.KvmClock Clock { get; } = new();

    /// <summary>x86: the in-kernel irqchip (KVM_CREATE_IRQCHIP / KVM_CAP_SPLIT_IRQCHIP, X86/Irqchip/); none at creation.</summary>
    public X86.Irqchip.VmIrqchip Irqchip { get; } = new();

    /// <summary>x86 kvm->arch.vpit: the in-kernel PIT (KVM_CREATE_PIT(2), X86/Irqchip/PitIoctls.cs); none at creation.</summary>
    public X86.Irqchip.I8254? Pit { get; set; }

    /// <summary>kvm->buses and kvm->ioeventfds (KVM_IOEVENTFD registrations; virt/kvm/eventfd.c).</summary>
    public IoBus IoBus { get; } = new();

    /// <summary>kvm->coalesced_mmio_ring and kvm->coalesced_zones (virt/kvm/coalesced_mmio.c).</summary>
    public CoalescedMmio CoalescedMmio { get; }

    /// <summary>kvm->manual_dirty_log_protect: the KVM_DIRTY_LOG_* options enabled by KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2.</summary>
    public ulong ManualDirtyLogProtect { get; set; }

    /// <summary>kvm->dirty_ring_size: bytes per vCPU ring (KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]); 0 = no ring.</summary>
    public uint DirtyRingSize { get; set; }

    /// <summary>kvm->dirty_ring_with_bitmap (KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP; only where the arch needs it).</summary>
    public bool DirtyRingWithBitmap { get; set; }

    /// <summary>kvm_use_dirty_bitmap: "!kvm->dirty_ring_size || kvm->dirty_ring_with_bitmap".</summary>
    public bool UseDirtyBitmap => DirtyRingSize == 0 || DirtyRingWithBitmap;

    private ulong _hypercallExitEnabled;

    /// <summary>
    /// x86 kvm->arch.disabled_quirks: KVM_X86_QUIRK_* bits turned off by KVM_CAP_DISABLE_QUIRKS(2) (X86/Quirks.cs);
    /// none at creation on AMD (kvm_arch_init_vm: inapplicable_quirks &amp; supported_quirks).
    /// </summary>
    public ulong DisabledQuirks { get; set; }

    /// <summary>x86 kvm->arch.exception_payload_enabled (KVM_CAP_EXCEPTION_PAYLOAD on the VM; off at creation).</summary>
    public bool ExceptionPayloadEnabled { get; set; }

    /// <summary>
    /// x86 kvm->arch.triple_fault_event (KVM_CAP_X86_TRIPLE_FAULT_EVENT on the VM; off at creation): KVM_GET/SET_VCPU_EVENTS
    /// report and take KVM_VCPUEVENT_VALID_TRIPLE_FAULT.
    /// </summary>
    public bool TripleFaultEvent { get; set; }

    /// <summary>
    /// x86 kvm->arch.guest_can_read_msr_platform_info: true at creation (kvm_arch_init_vm), KVM_CAP_MSR_PLATFORM_INFO
    /// sets it; when false a guest RDMSR of MSR_PLATFORM_INFO is a #GP (X86/MsrRules.cs).
    /// </summary>
    public bool GuestCanReadMsrPlatformInfo { get; set; } = true;

    /// <summary>
    /// x86 kvm->arch.user_space_msr_mask: the KVM_MSR_EXIT_REASON_* a failed guest MSR access exits to userspace for
    /// (KVM_CAP_X86_USER_SPACE_MSR; 0 at creation). X86/MsrFilter.cs.
    /// </summary>
    public ulong UserSpaceMsrMask { get; set; }

    /// <summary>
    /// x86 kvm->arch.max_vcpu_ids: 0 until KVM_CAP_MAX_VCPU_ID sets it or the first KVM_CREATE_VCPU makes it
    /// KVM_MAX_VCPU_IDS (kvm_arch_vcpu_precreate); vCPU ids at or above it are refused.
    /// </summary>
    public ulong X86MaxVcpuIds { get; set; }

    private X86.MsrFilter.Filter? _msrFilter;

    /// <summary>x86 kvm->arch.msr_filter (KVM_X86_SET_MSR_FILTER; none at creation), replaced whole, read without the lock.</summary>
    public X86.MsrFilter.Filter? MsrFilter
    {
        get => Volatile.Read(ref _msrFilter);
        set => Volatile.Write(ref _msrFilter, value);
    }

    /// <summary>
    /// x86 kvm->arch.hypercall_exit_enabled: bit n set = hypercall n exits to userspace (KVM_CAP_EXIT_HYPERCALL).
    /// Written under the kernel lock by KVM_ENABLE_CAP, read by running vCPUs without it (READ_ONCE).
    /// </summary>
    public ulong HypercallExitEnabled
    {
        get => Volatile.Read(ref _hypercallExitEnabled);
        set => Volatile.Write(ref _hypercallExitEnabled, value);
    }

    public IReadOnlyDictionary<int, KvmMemorySlot> Memslots(int asId) => _memslots[asId];

    public KvmMemorySlot? IdToMemslot(int asId, int id) => _memslots[asId].GetValueOrDefault(id);

    public void InstallMemslot(KvmMemorySlot slot) => _memslots[slot.AsId][slot.Id] = slot;

    public void RemoveMemslot(KvmMemorySlot slot) => _memslots[slot.AsId].Remove(slot.Id);

    /// <summary>kvm_mmu_invalidate_begin/end around a zap of guest mappings.</summary>
    public void InvalidateGuestMappings() => MmuInvalidateSeq++;

    private long _mmuWriteProtectSeq;

    /// <summary>
    /// Moves (under the kernel lock) each time arm64 stage-2 leaves lose write permission without being zapped
    /// (<see cref="WriteProtectGuestMappings"/>); read by running vCPUs, which then turn the writable pages they cached
    /// read-only (Mmu/GuestPhysicalMemory.Stage2.cs) so the next write takes the fault path.
    /// </summary>
    public long MmuWriteProtectSeq => Volatile.Read(ref _mmuWriteProtectSeq);

    /// <summary>
    /// arm64 mmu.c kvm_stage2_wp_range over GFNs [<paramref name="startGfn"/>, <paramref name="endGfn"/>): every
    /// present leaf reaching into the range (a block whole) stays mapped but read-only (Arm64/Stage2Access.cs
    /// <see cref="Arm64.Stage2Permissions"/>), and the vCPUs' cached writable pages go the same way
    /// (<see cref="MmuWriteProtectSeq"/>). Caller holds the kernel lock.
    /// </summary>
    public void WriteProtectGuestMappings(ulong startGfn, ulong endGfn)
    {
        Arm64.Stage2Permissions.WriteProtect(this, startGfn, endGfn);
        Interlocked.Increment(ref _mmuWriteProtectSeq);
    }

    public void Get() => _users++;

    /// <summary>kvm_put_kvm: the last reference destroys the VM (kvm_destroy_vm frees every memslot).</summary>
    public void Put()
    {
        if (--_users > 0) return;
        foreach (var slots in _memslots)
        {
            foreach (var slot in slots.Values.ToArray()) SetMemoryRegion.DeleteMemslot(this, slot);
        }
        // kvm_destroy_vcpus.
        foreach (var vcpu in Vcpus) vcpu.Dispose();
        Vcpus.Clear();
        // kvm_destroy_vm: kvm_io_bus_destroy runs every device's destructor (ioeventfd_destructor puts its eventfd).
        IoBus.Destroy();
        // kvm_destroy_vm → kvm_coalesced_mmio_free: the ring page (a userspace mapping of it keeps its own reference).
        CoalescedMmio.Dispose();
        // kvm_irqfd_release: every irqfd is shut down and puts its eventfd (and resample eventfd).
        X86.Irqchip.IrqFds.Release(this);
        Destroyed = true;
        Kernel.OnVmDestroyed(this);
    }
}
