// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// The x86 in-kernel irqchip (<see cref="OpKind.Irqchip"/>): a VM of its own on a /dev/kvm handle (its session draws
/// the in-kernel-APIC calls: KVM_SET_MP_STATE's wider states, KVM_SET_VCPU_EVENTS' latched INIT, INIT/SIPI messages),
/// so the other streams' VMs keep no irqchip. Drawn only on a kernel without guest_memfd, from a stream of its own
/// (<c>_irqc</c>), asked after the device stream.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _irqc;

    /// <summary>The stream of the guests that program the irqchip and the PIT themselves (<see cref="IrqchipOps.GuestProgrammed"/>).</summary>
    private readonly Random _irqcGuest;

    private FuzzOp? NextIrqchip()
    {
        // One call in forty-eight, asked first from a stream of its own: a guest programming the PICs, IOAPIC and PIT.
        if (_irqcGuest.Next(48) == 0)
        {
            var systems = _irqcGuest.Next(16) == 0 ? _closed.Concat(_vms).ToList() : _systems;
            if (systems.Count > 0) return new FuzzOp(OpKind.Irqchip, Target: systems[_irqcGuest.Next(systems.Count)], A: (ulong)_irqcGuest.NextInt64(), E: IrqchipOps.GuestProgrammed);
        }
        if (_irqc.Next(32) != 0) return null;
        // Now and then a closed handle or a VM instead of /dev/kvm.
        var pool = _irqc.Next(16) == 0 ? _closed.Concat(_vms).ToList() : _systems;
        if (pool.Count == 0) return null;
        return new FuzzOp(OpKind.Irqchip, Target: pool[_irqc.Next(pool.Count)], A: (ulong)_irqc.NextInt64());
    }
}
