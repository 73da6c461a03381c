// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The calls added after the first fuzzer: KVM_ENABLE_CAP, KVM_SET_TSS_ADDR, vCPUs, KVM_PRE_FAULT_MEMORY, madvise on gmem
/// mappings and tiny guest runs.
/// </summary>
public sealed partial class OpGenerator
{
    private const int MaxVcpus = 6;

    /// <summary>madvise advice values, valid and not. Never MADV_HWPOISON / MADV_SOFT_OFFLINE: as root they poison host pages.</summary>
    private static readonly int[] s_advice = [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 14, 15, 16, 20, 21, 22, 23, 25, 99];

    private readonly List<int> _vcpus = [];
    private readonly Dictionary<int, int> _vcpuVm = [];
    private readonly HashSet<int> _vmsWithSlot = [];
    private readonly HashSet<int> _vcpusMaybePaging = [];

    private FuzzOp? NextNewer()
    {
        int roll = _rng.Next(100);
        return roll switch
        {
            < 12 when _vms.Count > 0 && _vcpus.Count < MaxVcpus => CreateVcpu(),
            < 22 when _vcpus.Count > 0 => new FuzzOp(OpKind.RegsRoundTrip, Target: Pick(_vcpus), A: (ulong)_rng.Next(), E: _includeReported ? 1 : 0),
            < 34 when _vcpus.Count > 0 => new FuzzOp(OpKind.SregsRoundTrip, Target: Pick(_vcpus), A: (ulong)_rng.Next(), E: _rng.Next(SregsMutation.Count) | (_includeReported ? SregsMutation.WithReported : 0)),
            < 42 when _vcpus.Count > 0 => RunVcpu(),
            < 50 when _vcpus.Count > 0 => PreFault(),
            < 60 when _vms.Count > 0 => EnableCap(),
            < 65 when _vms.Count > 0 => new FuzzOp(OpKind.SetTssAddr, Target: PickMaybeClosed(_vms), A: TssAddr()),
            < 75 when _mappings.Count > 0 => Madvise(),
            < 85 => new FuzzOp(OpKind.CheckExtension, Target: PickAnyFd(), A: (ulong)s_caps[_rng.Next(s_caps.Length)]),
            < 100 when _systems.Count > 0 => new FuzzOp(OpKind.GuestRun, Target: Pick(_systems), A: (ulong)_rng.Next(), E: GuestRunMode()),
            _ => null,
        };
    }

    /// <summary>
    /// 64-bit or real mode; on a kernel without guest_memfd in host memory, a third of the 64-bit ones with far
    /// transfers. That draw happens only on that path, so a seed's calls on a kernel with guest_memfd are the ones they
    /// always were.
    /// </summary>
    private int GuestRunMode()
    {
        int realMode = _rng.Next(2);
        int reported = _includeReported ? FuzzOp.GuestRunWithReported : 0;
        if (!_noGuestMemfd) return realMode | reported;
        return realMode | FuzzOp.GuestRunInHostMemory | (realMode == 0 && _rng.Next(3) == 0 ? FuzzOp.GuestRunFarTransfers : 0) | reported;
    }

    private void ObserveNewer(FuzzOp op, bool created)
    {
        switch (op.Kind)
        {
            case OpKind.CreateVcpu when created:
                _vcpus.Add(op.Result);
                _vcpuVm[op.Result] = op.Target;
                break;
            case OpKind.SregsRoundTrip when (op.E & ~SregsMutation.WithReported) is 2 or 6:
                _vcpusMaybePaging.Add(op.Target);
                break;
            case OpKind.SetRegion2 when op.B != 0:
                // Any slot that may have been created (the call is not checked: over-approximating only makes RunVcpu
                // use immediate_exit more often): the VM's MMU has pages from then on, even if the slot is deleted.
                _vmsWithSlot.Add(op.Target);
                break;
        }
    }

    private FuzzOp CreateVcpu()
    {
        int vm = Pick(_vms);
        ulong id = _rng.Next(10) switch
        {
            0 => 4095,                             // the last id KVM_MAX_VCPU_IDS allows on x86
            1 => 4096,                             // the first it refuses
            2 => (ulong)_rng.NextInt64(),          // anything
            3 => ulong.MaxValue,                   // -1 as an int
            _ => (ulong)_rng.Next(0, 3),           // small, often a duplicate (EEXIST)
        };
        return new FuzzOp(OpKind.CreateVcpu, Target: _rng.Next(20) == 0 ? PickMaybeClosed(_vms) : vm, A: id, Result: _nextId++);
    }

    private FuzzOp RunVcpu()
    {
        int vcpu = Pick(_vcpus);
        // Without immediate_exit only while the VM has never had a memslot: KVM_RUN then fails before entering the guest
        // (ENOSPC on this host's shadow MMU, which must agree: docs/STATUS.md). With a slot the vCPU would run whatever
        // the reset vector points at, which the tiny guest runs (GuestRun) cover with real programs instead.
        // Not once KVM_SET_SREGS may have turned paging on either: the shadow MMU then loads a dummy root instead of
        // failing (see PreFaultMemory) and the vCPU would enter a guest with no memory at all.
        bool noSlot = _vcpuVm.TryGetValue(vcpu, out int vm) && !_vmsWithSlot.Contains(vm) && !_vcpusMaybePaging.Contains(vcpu);
        return new FuzzOp(OpKind.RunVcpu, Target: vcpu, E: noSlot && _rng.Next(2) == 0 ? 0 : 1);
    }

    private FuzzOp PreFault()
    {
        ulong size = _rng.Next(8) == 0 ? (ulong)_rng.NextInt64() : Size(8);
        ulong gpa = _rng.Next(8) == 0 ? ulong.MaxValue - Ps + 1 : Gpa();
        return new FuzzOp(OpKind.PreFault, Target: Pick(_vcpus), A: gpa, B: size, C: Flags());
    }

    private FuzzOp EnableCap()
    {
        // Only caps that x86 kvm_vm_ioctl_enable_cap does not handle (EINVAL) besides KVM_CAP_EXIT_HYPERCALL: the
        // emulator models that one alone, and enabling e.g. KVM_CAP_SPLIT_IRQCHIP would change the real VM's devices.
        ulong cap = _rng.Next(3) != 0 ? KvmCaps.KVM_CAP_EXIT_HYPERCALL : (ulong)s_caps[_rng.Next(s_caps.Length)];
        if (cap is 121 or 123 or 143 or 228) cap = KvmCaps.KVM_CAP_EXIT_HYPERCALL;
        ulong arg = _rng.Next(5) switch
        {
            0 => 0,
            1 => (ulong)_rng.NextInt64(),
            2 => 1UL << _rng.Next(64),
            _ => 1UL << (int)KvmPara.KVM_HC_MAP_GPA_RANGE,
        };
        ulong flags = _rng.Next(8) == 0 ? (ulong)_rng.Next(1, 4) : 0;
        return new FuzzOp(OpKind.EnableCap, Target: PickMaybeClosed(_vms), A: cap, B: flags, C: arg);
    }

    private ulong TssAddr() => _rng.Next(6) switch
    {
        0 => 0,
        1 => 0xFFFF_F000,                          // above (unsigned int)(-3 * PAGE_SIZE): EINVAL
        2 => (ulong)_rng.NextInt64(),
        3 => 0xFFFF_D000 + (ulong)_rng.Next(0x1000),
        _ => 0xFFFB_D000,                          // what QEMU uses
    };

    private FuzzOp Madvise()
    {
        int mapping = Pick(_mappings);
        ulong length = _mappingLength.GetValueOrDefault(mapping, Ps);
        ulong pages = Math.Max(1, length / Ps);
        ulong offset = Ps * (ulong)_rng.NextInt64(0, (long)pages) + Misalign();
        ulong len = _rng.Next(6) == 0 ? 0 : Ps * (ulong)_rng.NextInt64(1, (long)pages + 1);
        int advice = s_advice[_rng.Next(s_advice.Length)];
        return new FuzzOp(OpKind.Madvise, Target: mapping, A: offset, B: len, E: advice);
    }
}
