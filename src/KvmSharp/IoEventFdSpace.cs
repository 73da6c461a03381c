// SPDX-License-Identifier: MIT
namespace KvmSharp;

/// <summary>Where an ioeventfd listens: guest-physical memory (KVM_MMIO_BUS) or an I/O port (KVM_IOEVENTFD_FLAG_PIO).</summary>
public enum IoEventFdSpace
{
    /// <summary>A guest-physical address outside every memory slot.</summary>
    Mmio,

    /// <summary>An x86 I/O port (OUT).</summary>
    Pio,
}
