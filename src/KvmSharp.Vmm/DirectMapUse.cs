// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>
/// Whether a guest_memfd-backed micro-VM's memory leaves the host kernel's direct map
/// (<see cref="GuestMemfdFlags.NoDirectMap"/>, GUEST_MEMFD_FLAG_NO_DIRECT_MAP — a PROPOSAL: "[PATCH v12 00/16] Direct
/// Map Removal Support for guest_memfd", unmerged). Out of the direct map, guest memory cannot be read by the host
/// kernel through it, so speculative (Spectre-style) gadgets in the kernel cannot leak it — what Firecracker calls a
/// secret-free VM. The VMM still reads and writes guest memory through its own mapping, so calls, resets and snapshots
/// work as before. Host memory (<see cref="GuestMemoryBacking.HostMemory"/>) is always in the direct map.
/// </summary>
public enum DirectMapUse
{
    /// <summary>Remove the memory from the direct map when the VM offers the flag (KVM_CAP_GUEST_MEMFD_FLAGS), keep it
    /// there otherwise. No shipped kernel offers it yet; the emulated kernel does with
    /// <c>EmulatorConfig.GuestMemfdNoDirectMap</c> (<c>kvmsharp run … --kernel emulated --no-direct-map</c>).</summary>
    RemoveIfOffered,

    /// <summary>Remove it, or fail creation with a <see cref="MicroVmException"/> naming the capability when the VM
    /// does not offer the flag (also when the memory is host memory).</summary>
    Remove,

    /// <summary>Keep guest memory in the direct map.</summary>
    Keep,
}
