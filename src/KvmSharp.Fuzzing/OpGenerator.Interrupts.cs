// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// Events from a userspace irqchip (<see cref="InterruptOps"/>): KVM_INTERRUPT, KVM_NMI and KVM_X86_SET_MCE on the
/// session's vCPUs (<see cref="OpKind.InterruptQueue"/>) and tiny guests that take them
/// (<see cref="OpKind.InterruptGuestRun"/>). Like the NUMA calls: drawn only on a kernel without guest_memfd and from a
/// stream of their own (<c>_irq</c>), asked after every other side stream: the main stream's calls keep their order and
/// arguments (each one an interrupt call delays comes one call later), the side streams' land at other points between
/// them (InterruptFuzzingTests.The_main_stream_of_a_seed_keeps_its_calls).
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _irq;

    /// <summary>Draws no interrupt calls: the sequence a seed made before they existed (tests).</summary>
    internal bool WithoutInterrupts { get; init; }

    private FuzzOp? NextInterrupts()
    {
        // One call in 24, a guest in four of them: a guest costs the real kernel a VM (≈1 % of the calls).
        if (WithoutInterrupts || _irq.Next(24) != 0) return null;
        if (_irq.Next(4) == 0)
            return _systems.Count == 0 ? null : new FuzzOp(OpKind.InterruptGuestRun, Target: _systems[_irq.Next(_systems.Count)], A: (ulong)_irq.Next());
        if (_vcpus.Count == 0) return null;
        int e = _irq.Next(InterruptOps.Calls);
        if (e == InterruptOps.SetMce && _irq.Next(2) == 0) e |= InterruptOps.SetupFirst;
        if (_irq.Next(6) == 0) e |= InterruptOps.FlipCr4Mce;
        if (_irq.Next(6) == 0) e |= InterruptOps.FlipIf;
        // Now and then on a VM or system handle (ENOTTY / EINVAL) or a closed one (EBADF).
        var pool = _irq.Next(16) == 0 ? _vms.Concat(_systems).Concat(_closed).ToList() : _vcpus;
        return new FuzzOp(OpKind.InterruptQueue, Target: pool.Count == 0 ? -1 : pool[_irq.Next(pool.Count)], A: (ulong)_irq.Next(), E: e);
    }
}
