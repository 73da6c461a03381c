// SPDX-License-Identifier: MIT
// The configuration checks: which EmulatorConfig describes a kernel that could exist.
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;

namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
    private static void Validate(EmulatorConfig config)
    {
        if (config.Architecture == Architecture.Arm64 && config.VmTypes.Any(t => t != 0))
            throw new ArgumentException("arm64 has only the default VM type", nameof(config));
        if (config.VmTypes.Any(t => t >= 32))
            throw new ArgumentException("VM types are bits of KVM_CAP_VM_TYPES (< 32)", nameof(config));
        if (config.Architecture == Architecture.X86_64 && config.VmTypes.Contains(KvmConstants.KVM_X86_SW_PROTECTED_VM) &&
            !(config.Kconfig.KVM_SW_PROTECTED_VM && config.TdpEnabled))
            throw new ArgumentException("KVM_X86_SW_PROTECTED_VM needs CONFIG_KVM_SW_PROTECTED_VM and TDP (arch/x86/kvm/x86.c)", nameof(config));
        if (config.GmemInPlaceConversion && config.Generation != KernelGeneration.InPlaceConversionV8)
            throw new ArgumentException("gmem_in_place_conversion exists only in the v8 in-place conversion tree", nameof(config));
        // mm/mempolicy.c: nodes are bits of a nodemask_t; the emulator keeps policies' effective nodes in one word.
        if (config.NumaNodes < 1 || config.NumaNodes > 64 || config.NumaNodes > config.MaxNumNodes)
            throw new ArgumentException("NumaNodes must be 1 … 64 and at most MaxNumNodes", nameof(config));
        if (config.MaxNumNodes < 1 || config.MaxNumNodes > EmulatorConfig.PageSize * 8 || (config.MaxNumNodes & (config.MaxNumNodes - 1)) != 0)
            throw new ArgumentException("MaxNumNodes is 1 << CONFIG_NODES_SHIFT (at most a page of bits)", nameof(config));
        ValidateGeneration(config);
        GmemHugetlb.Validate(config);
    }

    // What a kernel of config.Generation cannot have been built with (KernelGenerations names the release of each).
    private static void ValidateGeneration(EmulatorConfig config)
    {
        var g = config.Generation;
        string release = $"Linux {g.Release()}";
        var k = config.Kconfig;
        if (!g.HasGuestMemfd() && (k.KVM_GUEST_MEMFD || k.KVM_GENERIC_MEMORY_ATTRIBUTES || k.KVM_SW_PROTECTED_VM))
            throw new ArgumentException($"{release} has no guest_memfd, memory attributes or KVM_SW_PROTECTED_VM (6.8+)", nameof(config));
        // 6.8–6.10: only KVM_SW_PROTECTED_VM selects KVM_GENERIC_PRIVATE_MEM (arch/x86/kvm/Kconfig); KVM_AMD_SEV
        // selects it from 6.11 ("KVM: SEV: Select KVM_GENERIC_PRIVATE_MEM when CONFIG_KVM_AMD_SEV=y").
        if (config.Architecture == Architecture.X86_64 && !g.HasGmemPopulate() && k.KVM_GUEST_MEMFD && !k.KVM_SW_PROTECTED_VM)
            throw new ArgumentException($"{release} x86 has guest_memfd only with KVM_SW_PROTECTED_VM (KVM_AMD_SEV selects it from 6.11)", nameof(config));
        if (!g.HasGmemPopulate() && (k.HAVE_KVM_ARCH_GMEM_PREPARE || k.HAVE_KVM_ARCH_GMEM_INVALIDATE || k.HAVE_KVM_ARCH_GMEM_POPULATE))
            throw new ArgumentException($"{release} has no HAVE_KVM_ARCH_GMEM_PREPARE/INVALIDATE/POPULATE (6.11+, with SEV-SNP)", nameof(config));
        if (config.Architecture == Architecture.X86_64 && config.VmTypes.DefaultIfEmpty().Max() is var top && top > g.MaxX86VmType())
            throw new ArgumentException($"{release} knows x86 VM types up to {g.MaxX86VmType()}, not {top}", nameof(config));
        // arm64 selects KVM_GUEST_MEMFD from the mmap series on ("KVM: arm64: Enable support for guest_memfd backed memory").
        if (config.Architecture == Architecture.Arm64 && k.KVM_GUEST_MEMFD && !g.HasGmemMmap())
            throw new ArgumentException($"{release} has no guest_memfd on arm64 (6.18+)", nameof(config));
        // The proposals (FLAGS_HI, extra flags, seed 002, direct map removal v12 "[ based on kvm/next ]") are written
        // against 6.18+ trees.
        if (!g.HasGmemMmap() && (config.GuestMemfdFlagsHiCap is not null || config.ExtraGuestMemfdFlags != 0 || config.VmMemoryAttributes2 ||
                                 config.GuestMemfdNoDirectMap))
            throw new ArgumentException($"{release} predates KVM_CAP_GUEST_MEMFD_FLAGS; the flag and attribute proposals need 6.18+", nameof(config));
        // [PATCH v7 1/2] is based on kvm/next (6.18+: KVM_CAP_GUEST_MEMFD_FLAGS, INIT_SHARED).
        if (!g.HasGmemMmap() && config.GuestMemfdWrite)
            throw new ArgumentException($"{release} predates KVM_CAP_GUEST_MEMFD_FLAGS; the guest_memfd write proposal needs 6.18+", nameof(config));
        // KVM Userfault v3 is modeled on 6.18+ trees (x86_64 and arm64: Arm64/Stage2Access.cs UserfaultExit).
        if (config.KvmUserfault && !g.HasGmemMmap())
            throw new ArgumentException($"KVM Userfault ([PATCH v3]) is modeled on 6.18+ trees only, not {release}", nameof(config));
        // One meaning per bit: WRITE (1 << 3 here) is either the modeled proposal or not there at all.
        if (config.GuestMemfdWrite && (config.ExtraGuestMemfdFlags & GmemWrite.Flag) != 0)
            throw new ArgumentException("GUEST_MEMFD_FLAG_WRITE (1 << 3) is modeled by GuestMemfdWrite; leave it out of ExtraGuestMemfdFlags", nameof(config));
        // One meaning per bit: NO_DIRECT_MAP is either the modeled proposal or not there at all.
        if (config.GuestMemfdNoDirectMap && (config.ExtraGuestMemfdFlags & GmemNoDirectMap.Flag) != 0)
            throw new ArgumentException("GUEST_MEMFD_FLAG_NO_DIRECT_MAP (1 << 2) is modeled by GuestMemfdNoDirectMap; leave it out of ExtraGuestMemfdFlags", nameof(config));
    }
}
