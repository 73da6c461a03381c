// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>
/// The Kconfig switches that change guest_memfd behaviour (virt/kvm/Kconfig, arch/x86/kvm/Kconfig). Names are the
/// kernel's, without the CONFIG_ prefix.
/// </summary>
public sealed record Kconfig
{
    /// <summary>
    /// KVM_GUEST_MEMFD (6.18; KVM_PRIVATE_MEM in 6.8–6.17): KVM_CREATE_GUEST_MEMFD, KVM_MEM_GUEST_MEMFD slots,
    /// KVM_CAP_GUEST_MEMFD[_FLAGS].
    /// </summary>
    public bool KVM_GUEST_MEMFD { get; init; } = true;

    /// <summary>
    /// KVM_GENERIC_MEMORY_ATTRIBUTES (mainline), renamed KVM_VM_MEMORY_ATTRIBUTES by [PATCH v8 02-05/46]: the per-VM
    /// KVM_SET_MEMORY_ATTRIBUTES ioctl and KVM_CAP_MEMORY_ATTRIBUTES. x86-only (selected by SW_PROTECTED/TDX/SEV).
    /// </summary>
    public bool KVM_GENERIC_MEMORY_ATTRIBUTES { get; init; }

    /// <summary>KVM_SW_PROTECTED_VM (arch/x86/kvm/Kconfig): makes KVM_X86_SW_PROTECTED_VM creatable.</summary>
    public bool KVM_SW_PROTECTED_VM { get; init; }

    /// <summary>HAVE_KVM_ARCH_GMEM_PREPARE (selected by KVM_AMD_SEV): arch prepare hook on first guest use.</summary>
    public bool HAVE_KVM_ARCH_GMEM_PREPARE { get; init; }

    /// <summary>HAVE_KVM_ARCH_GMEM_INVALIDATE (selected by KVM_AMD_SEV): arch hook when a folio is freed.</summary>
    public bool HAVE_KVM_ARCH_GMEM_INVALIDATE { get; init; }

    /// <summary>HAVE_KVM_ARCH_GMEM_POPULATE (selected by KVM_AMD_SEV and KVM_INTEL_TDX): kvm_gmem_populate().</summary>
    public bool HAVE_KVM_ARCH_GMEM_POPULATE { get; init; }

    /// <summary>KVM_SMM (x86): a second memslot address space, KVM_CAP_MULTI_ADDRESS_SPACE = 2.</summary>
    public bool KVM_SMM { get; init; }

    /// <summary>
    /// KVM_VFIO (virt/kvm/Kconfig, selected by both arches' KVM): the kvm-vfio device (KVM_DEV_TYPE_VFIO) that
    /// KVM_CREATE_DEVICE makes (virt/kvm/vfio.c). This host has it.
    /// </summary>
    public bool KVM_VFIO { get; init; } = true;
}
