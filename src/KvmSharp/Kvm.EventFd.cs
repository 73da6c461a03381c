// SPDX-License-Identifier: MIT
namespace KvmSharp;

public sealed partial class Kvm
{
    /// <summary>
    /// A new eventfd on this kernel (<see cref="EventFd.Create"/>), for <see cref="Vm.RegisterIoEventFd"/> and
    /// <see cref="Vm.AssignIrqFd"/>.
    /// </summary>
    /// <exception cref="Kernel.KvmException">eventfd2 refused.</exception>
    public EventFd CreateEventFd(uint initialValue = 0, EventFdOptions options = EventFdOptions.None) =>
        EventFd.Create(Kernel, initialValue, options);
}
