// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Loader;

/// <summary>
/// The AArch64 branch-protection features an ELF image says all its code was built for: the bits of its
/// GNU_PROPERTY_AARCH64_FEATURE_1_AND property (include/uapi/linux/elf.h; gcc -mbranch-protection=bti / pac-ret /
/// standard sets them, and the linker keeps a bit only when every input object has it).
/// </summary>
[Flags]
public enum BranchProtection
{
    /// <summary>No property, or none of its bits.</summary>
    None = 0,

    /// <summary>
    /// GNU_PROPERTY_AARCH64_FEATURE_1_BTI: every indirect branch target is a BTI landing pad, so the code may run on
    /// guarded pages (FEAT_BTI). An arm64 micro-VM guards the image's pages when its vCPU has FEAT_BTI, as Linux maps
    /// such an executable's segments with PROT_BTI.
    /// </summary>
    Bti = 1,

    /// <summary>GNU_PROPERTY_AARCH64_FEATURE_1_PAC: return addresses are signed (informational: nothing depends on it).</summary>
    Pac = 2,
}
