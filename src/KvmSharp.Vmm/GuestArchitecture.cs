// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>The instruction set of a micro-VM's guest (<see cref="MicroVmOptions.Architecture"/>, <see cref="MicroVm.Architecture"/>).</summary>
public enum GuestArchitecture
{
    /// <summary>x86-64 in long mode: port I/O ABI, the VMM's IDT and page tables (GUEST-ABI.md).</summary>
    X86_64,

    /// <summary>
    /// AArch64 at EL1h with the MMU on (identity tables, the null page and a stack guard unmapped): the same devices on
    /// an MMIO window instead of ports, the VMM's vector table (GUEST-ABI.md, "arm64 micro-VMs").
    /// </summary>
    Arm64,
}
