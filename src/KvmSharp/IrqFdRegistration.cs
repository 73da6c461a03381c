// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>One KVM_IRQFD assignment (<see cref="Vm.AssignIrqFd"/>); Dispose deassigns it while the eventfd and VM are open.</summary>
public sealed class IrqFdRegistration : IDisposable
{
    private bool _assigned = true;

    internal IrqFdRegistration(Vm vm, EventFd eventFd, uint gsi)
    {
        Vm = vm;
        EventFd = eventFd;
        Gsi = gsi;
    }

    /// <summary>The VM whose irqchip the eventfd drives.</summary>
    public Vm Vm { get; }

    /// <summary>The eventfd that raises the GSI.</summary>
    public EventFd EventFd { get; }

    /// <summary>The GSI raised.</summary>
    public uint Gsi { get; }

    /// <summary>Deassigns (KVM_IRQFD_FLAG_DEASSIGN) when the eventfd and the VM are still open; never throws.</summary>
    public void Dispose()
    {
        if (!_assigned || EventFd.Handle.IsClosed || Vm.Handle.IsClosed) return;
        _assigned = false;
        try
        {
            Vm.DeassignIrqFd(EventFd, Gsi);
        }
        catch (Kernel.KvmException)
        {
            // Nothing left to undo: the kernel answers 0 unless the descriptor went away meanwhile.
        }
    }
}
