// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The calls for a kernel without guest_memfd (built without CONFIG_KVM_GUEST_MEMFD). The generator learns it from the
/// reference kernel's answers, as it learns which handles exist: the first KVM_CREATE_GUEST_MEMFD on a live VM that
/// answers ENOTTY. From then on no guest_memfd, mapping or file call can get past its handle, so the calls go where
/// such a kernel has something to test — plain memory slots (flags, slot ids, addresses, moves, deletes), their dirty
/// logs, vCPUs, tiny guests in host memory (some with far transfers, some logging dirty pages) — while a few
/// KVM_CREATE_GUEST_MEMFD calls keep the compiled-out request covered (ENOTTY on both kernels). A seed still repeats its calls on the same kind of kernel; on a kernel with guest_memfd nothing here
/// is drawn, so the sequence is the one it always was.
/// </summary>
public sealed partial class OpGenerator
{
    /// <summary>Page-aligned user addresses for plain slots, never mapped: no guest runs in a session's VMs.</summary>
    private const ulong UserBase = 0x7E00_0000_0000;

    /// <summary>x86-64 TASK_SIZE_MAX with 4-level paging: access_ok(userspace_addr, memory_size) ends here.</summary>
    private const ulong TaskSizeMax = (1UL << 47) - 0x1000;

    private bool _noGuestMemfd;

    /// <summary>Plain slots the reference kernel created, per (VM, slot id): what a move or flag change must repeat.</summary>
    private readonly Dictionary<(int Vm, int Slot), FuzzOp> _plainSlots = [];

    /// <summary>True once the reference kernel answered KVM_CREATE_GUEST_MEMFD with ENOTTY (no guest_memfd there).</summary>
    public bool KernelLacksGuestMemfd => _noGuestMemfd;

    private FuzzOp NextWithoutGuestMemfd()
    {
        // One call in eight: x86 CPUID and MSRs (OpGenerator.X86State.cs), from a stream of their own.
        if (NextX86State() is FuzzOp x86) return x86;
        // One call in ten: x86 vCPU state round trips (OpGenerator.VcpuState.cs), from a stream of their own.
        if (NextVcpuState() is FuzzOp state) return state;
        // One call in sixteen: KVM_SET_GUEST_DEBUG and host-debugged guests (OpGenerator.GuestDebug.cs), likewise.
        if (NextGuestDebug() is FuzzOp debug) return debug;
        // One call in sixteen: guest time, KVM_GET/SET_CLOCK and KVM_GET/SET_TSC_KHZ (OpGenerator.Clock.cs), likewise.
        if (NextClock() is FuzzOp clock) return clock;
        // One call in twenty-four: KVM_HAS/GET/SET_DEVICE_ATTR (OpGenerator.DeviceAttr.cs), likewise.
        if (NextDeviceAttr() is FuzzOp attr) return attr;
        // One call in thirty-two: mbind, get_mempolicy, move_pages (OpGenerator.Mempolicy.cs), likewise.
        if (NextMempolicy() is FuzzOp numa) return numa;
        // One call in forty: KVM_IOEVENTFD, KVM_IRQFD and eventfds (OpGenerator.IoEventFd.cs), likewise; asked before the
        // interrupt stream so that stream's calls keep their places.
        if (NextIoEventFd() is FuzzOp ioev) return ioev;
        // One call in twenty-four: KVM_INTERRUPT, KVM_NMI, KVM_X86_SET_MCE and guests that take them (OpGenerator.Interrupts.cs), likewise.
        if (NextInterrupts() is FuzzOp irq) return irq;
        // One call in forty: KVM_CREATE_DEVICE and device attributes (OpGenerator.DeviceCtl.cs), likewise.
        if (NextDeviceCtl() is FuzzOp dev) return dev;
        // One call in thirty-two: the x86 in-kernel irqchip (OpGenerator.Irqchip.cs), likewise.
        if (NextIrqchip() is FuzzOp irqc) return irqc;
        // One call in forty: the dirty ring and guests filling it (OpGenerator.DirtyRing.cs), likewise.
        if (NextDirtyRing() is FuzzOp ring) return ring;
        // One call in forty: guests that take an IOAPIC interrupt and EOI it (OpGenerator.DirtyRing.cs), likewise.
        if (NextLevelEoi() is FuzzOp eoi) return eoi;
        // One call in forty-eight: real-mode guests through the IVT and 64-bit guests using the LDT (OpGenerator.IvtLdt.cs), likewise.
        if (NextIvtLdt() is FuzzOp ivtLdt) return ivtLdt;
        // One call in forty-eight: KVM_SET_SIGNAL_MASK (OpGenerator.SignalMask.cs), likewise.
        if (NextSignalMask() is FuzzOp mask) return mask;
        // One call in forty-eight each: MSR filters and coalesced MMIO; one in sixty-four: the kvmclock MSRs
        // (OpGenerator.NewUapi.cs), likewise.
        if (NextMsrFilter() is FuzzOp filter) return filter;
        if (NextCoalesced() is FuzzOp coalesced) return coalesced;
        if (NextKvmClock() is FuzzOp kvmclock) return kvmclock;
        // One call in eight: dirty page logging (OpGenerator.DirtyLog.cs).
        if (_rng.Next(8) == 0 && NextDirtyLog() is FuzzOp dirty) return dirty;
        int roll = _rng.Next(100);
        // vCPUs, KVM_ENABLE_CAP, KVM_SET_TSS_ADDR, capabilities and tiny guests in host memory.
        if (roll < 40 && NextNewer() is FuzzOp newer) return newer;
        return roll switch
        {
            < 42 when _systems.Count < MaxSystems => new FuzzOp(OpKind.OpenKvm, Result: _nextId++),
            < 47 when _vms.Count < MaxVms => new FuzzOp(OpKind.CreateVm, Target: Pick(_systems), A: VmType(), Result: _nextId++),
            < 52 => new FuzzOp(OpKind.CheckExtension, Target: PickAnyFd(), A: (ulong)s_caps[_rng.Next(s_caps.Length)]),
            < 55 when _vms.Count > 0 => CreateGmem(),
            < 87 when _vms.Count > 0 => SetPlainRegion(),
            < 90 when _vms.Count + _vcpus.Count > 0 => new FuzzOp(OpKind.Close, Target: PickClosable()),
            < 95 => new FuzzOp(OpKind.Fstat, Target: PickAnyFd()),
            < 97 when _vms.Count > 0 => new FuzzOp(OpKind.SetAttributes, Target: Pick(_vms), A: Gpa(), B: Size(4), C: Attr(), D: Flags()),
            _ => new FuzzOp(OpKind.CheckExtension, Target: PickAnyFd(), A: (ulong)_rng.Next(300)),
        };
    }

    /// <summary>Follows the plain slots the reference kernel has (KVM_SET_USER_MEMORY_REGION2 that succeeded).</summary>
    private void ObservePlainRegion(FuzzOp op, string outcome)
    {
        if (outcome != "ok") return;
        if (op.B == 0) _plainSlots.Remove((op.Target, op.E));
        else _plainSlots[(op.Target, op.E)] = op;
    }

    /// <summary>
    /// KVM_SET_USER_MEMORY_REGION2 without guest_memfd: mostly plain slots, some invalid on purpose. An existing slot
    /// is often changed the ways kvm_set_memory_region allows (KVM_MR_MOVE, KVM_MR_FLAGS_ONLY, delete) or refuses
    /// (READONLY toggled, a new userspace_addr or size), since a fresh random region for a taken slot id is nearly always
    /// EINVAL.
    /// </summary>
    private FuzzOp SetPlainRegion()
    {
        int vm = Pick(_vms);
        var existing = _plainSlots.Where(p => p.Key.Vm == vm).Select(p => p.Value).ToList();
        if (existing.Count > 0 && _rng.Next(2) == 0)
        {
            var old = existing[_rng.Next(existing.Count)];
            return _rng.Next(8) switch
            {
                < 3 => old with { A = Gpa() },                                                     // move
                < 5 => old with { D = old.D ^ KvmConstants.KVM_MEM_LOG_DIRTY_PAGES },              // flags only
                5 => old with { D = old.D ^ KvmConstants.KVM_MEM_READONLY },                       // EINVAL
                6 => old with { B = 0 },                                                           // delete
                _ => old with { U = old.U + Ps, B = _rng.Next(2) == 0 ? old.B : old.B + Ps },     // EINVAL
            };
        }

        ulong flags = _rng.Next(32) switch
        {
            < 16 => 0,
            < 21 => KvmConstants.KVM_MEM_LOG_DIRTY_PAGES,
            < 26 => KvmConstants.KVM_MEM_READONLY,
            < 28 => KvmConstants.KVM_MEM_LOG_DIRTY_PAGES | KvmConstants.KVM_MEM_READONLY,
            < 30 => (ulong)_rng.Next(16),                 // unknown bits, KVM_MEM_GUEST_MEMFD among them
            _ => KvmConstants.KVM_MEM_GUEST_MEMFD,        // not a valid flag on this kernel: EINVAL
        };
        int slot = _rng.Next(32) switch
        {
            0 => 0x1_0000 | _rng.Next(2),                 // address space 1: no SMM here
            1 => short.MaxValue - 4 + _rng.Next(5),       // around KVM_USER_MEM_SLOTS (32764) and KVM_MEM_SLOTS_NUM
            _ => _rng.Next(4),                            // few ids: moves, flag changes, overlaps, deletes
        };
        ulong gpa = _rng.Next(32) switch
        {
            0 => ulong.MaxValue - Ps + 1,                 // gpa + size wraps
            1 => 1UL << _rng.Next(36, 53),                // towards kvm_mmu_max_gfn()
            _ => Gpa(),
        };
        ulong size = _rng.Next(6) == 0 ? 0 : Ps * (ulong)_rng.Next(1, 9) + (_rng.Next(3) == 0 ? Misalign() : 0);
        ulong uaddr = _rng.Next(32) switch
        {
            0 => 0,
            1 => UserBase + Ps * (ulong)_rng.Next(0, 64) + (ulong)_rng.Next(1, (int)Ps),   // misaligned
            2 => 0xFFFF_8000_0000_0000 + Ps * (ulong)_rng.Next(0, 64),                    // kernel half
            3 => TaskSizeMax - Ps * (ulong)_rng.Next(0, 4),                               // runs past TASK_SIZE_MAX
            _ => UserBase + Ps * (ulong)_rng.Next(0, 64),
        };
        return new FuzzOp(OpKind.SetRegion2, Target: vm, Other: _rng.Next(8) == 0 ? PickMaybeClosed(_gmems) : -1,
            A: gpa, B: size, C: Ps * (ulong)_rng.Next(0, 4) + Misalign(), D: flags, E: slot, U: uaddr);
    }
}
