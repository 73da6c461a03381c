// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli;

/// <summary>
/// XSAVE state components by their XCR0 bit, in the kernel's spelling (arch/x86/include/asm/fpu/types.h enum
/// xfeature, without the XFEATURE_ prefix): what <c>caps</c> prints for KVM_GET_SUPPORTED_CPUID leaf 0xD.
/// </summary>
internal static class XfeatureNames
{
    private static readonly string[] s_names =
    [
        "FP", "SSE", "YMM", "BNDREGS", "BNDCSR", "OPMASK", "ZMM_Hi256", "Hi16_ZMM", "PT", "PKRU", "PASID",
        "CET_USER", "CET_KERNEL", "RSRVD_COMP_13", "RSRVD_COMP_14", "LBR", "RSRVD_COMP_16", "XTILE_CFG", "XTILE_DATA",
        "APX",
    ];

    /// <summary>"FP|SSE|YMM|PKRU" for 0x207; a bit without a name prints as "bit N".</summary>
    public static string Decode(ulong xcr0)
    {
        var parts = new List<string>();
        for (int bit = 0; bit < 64; bit++)
        {
            if ((xcr0 & (1UL << bit)) == 0) continue;
            parts.Add(bit < s_names.Length ? s_names[bit] : $"bit {bit}");
        }
        return parts.Count == 0 ? "none" : string.Join('|', parts);
    }
}
