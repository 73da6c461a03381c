// SPDX-License-Identifier: MIT
namespace KvmSharp;

public sealed partial class Vcpu
{
    private DirtyRing? _dirtyRing;

    /// <summary>
    /// This vCPU's dirty ring, mapped when the vCPU was created on a VM with <see cref="Vm.EnableDirtyRing"/> and
    /// unmapped with the vCPU.
    /// </summary>
    /// <exception cref="InvalidOperationException">The VM had no dirty ring when this vCPU was created.</exception>
    public DirtyRing DirtyRing => _dirtyRing ?? throw new InvalidOperationException(
        $"vCPU {Id} has no dirty ring: call Vm.EnableDirtyRing before creating the VM's vCPUs");

    /// <summary>Whether this vCPU has a dirty ring (<see cref="DirtyRing"/>).</summary>
    public bool HasDirtyRing => _dirtyRing is not null;
}
