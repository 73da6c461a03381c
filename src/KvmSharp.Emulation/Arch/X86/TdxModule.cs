// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The emulated TDX module's configuration (what tdx_get_sysinfo() reports on a real host: td_conf's fixed
/// attribute and XFAM bits and its CPUID configuration leaves). A <b>model</b>, not a TDX module: it is built from the
/// emulator's own KVM_GET_SUPPORTED_CPUID table (X86/CpuidSupported.cs, the Milan one: TDX comes only with the
/// full-featured presets, which keep the default CPU) so the two agree, and it validates only what
/// KVM validates; TDH.MNG.INIT's own checks of the CPUID values are not modelled. The measurements (MRTD, RTMRs) and
/// TDG.MR.REPORT are <see cref="TdxMeasurement"/> and <see cref="TdxReport"/>.
/// </summary>
internal static class TdxModule
{
    /// <summary>arch/x86/include/asm/shared/tdx.h TDX_TD_ATTR_DEBUG = BIT_ULL(0).</summary>
    public const ulong TdAttrDebug = 1UL << 0;

    /// <summary>TDX_TD_ATTR_SEPT_VE_DISABLE = BIT_ULL(28); tdx.c KVM_SUPPORTED_TD_ATTRS is exactly this bit.</summary>
    public const ulong TdAttrSeptVeDisable = 1UL << 28;

    /// <summary>tdx_get_supported_attrs: KVM_SUPPORTED_TD_ATTRS &amp; attributes_fixed0 (fixed0: all, fixed1: none here).</summary>
    public const ulong SupportedAttrs = TdAttrSeptVeDisable;

    /// <summary>td_conf-&gt;xfam_fixed1: x87 and SSE state are always enabled in a TD.</summary>
    public const ulong XfamFixed1 = 0x3;

    /// <summary>
    /// tdx_get_supported_xfam: kvm_caps.supported_xcr0 | supported_xss (CPUID 0xd.0 EAX of the supported table:
    /// x87, SSE, AVX, PKRU), masked with xfam_fixed0 (all).
    /// </summary>
    public static ulong SupportedXfam => Find(CpuidSupported.EpycMilan, 0xd, 0)?.eax ?? XfamFixed1;

    /// <summary>KVM_TDX_CPUID_NO_SUBLEAF: a configuration leaf without a subleaf (reported with index 0).</summary>
    private const uint NoSubleaf = uint.MaxValue;

    /// <summary>The leaves (function, index) whose bits userspace may configure, in td_conf order.</summary>
    private static readonly (uint Function, uint Index)[] s_leaves =
        [(0x1, NoSubleaf), (0x7, 0), (0xd, 0), (0xd, 1), (0x8000_0001, NoSubleaf), (0x8000_0008, NoSubleaf)];

    /// <summary>
    /// td_init_cpuid_entry2 for every configuration leaf: the configurable bits (here: what the supported table
    /// offers), index 0 for NO_SUBLEAF, and CPUID.0x80000008.EAX[23:16] reported as 0xff ("KVM uses it as an
    /// interface to the userspace to configure the GPAW").
    /// </summary>
    public static kvm_cpuid_entry2[] ConfigLeaves()
    {
        var result = new kvm_cpuid_entry2[s_leaves.Length];
        for (int i = 0; i < s_leaves.Length; i++)
        {
            var (function, index) = s_leaves[i];
            uint idx = index == NoSubleaf ? 0 : index;
            var e = Find(CpuidSupported.EpycMilan, function, idx) ?? new kvm_cpuid_entry2 { function = function };
            e.index = idx;
            e.flags = 0;
            if (function == 0x8000_0008) e.eax = (e.eax & ~0x00ff_0000u) | 0x00ff_0000u;
            result[i] = e;
        }
        return result;
    }

    /// <summary>kvm_find_cpuid_entry2: the first entry of <paramref name="function"/> whose index matches or does not matter.</summary>
    public static kvm_cpuid_entry2? Find(ReadOnlySpan<kvm_cpuid_entry2> entries, uint function, uint index)
    {
        foreach (var e in entries)
            if (e.function == function && ((e.flags & KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX) == 0 || e.index == index))
                return e;
        return null;
    }

    /// <summary>
    /// The TD's CPUID as KVM_TDX_GET_CPUID reads it back: the supported table (without KVM's own 0x4000xxxx leaves,
    /// which a TD does not get from the module), the configured leaves' values limited to their configurable bits,
    /// and 0x80000008.EAX[23:16] = the GPAW (tdx_read_cpuid: "fetch guest maxpa from gfn_direct_bits").
    /// </summary>
    public static List<kvm_cpuid_entry2> TdCpuid(TdxInfo td)
    {
        var config = ConfigLeaves();
        var result = new List<kvm_cpuid_entry2>();
        foreach (var s in CpuidSupported.EpycMilan)
        {
            if (s.function is >= 0x4000_0000 and < 0x8000_0000) continue;
            var e = s;
            var user = Find(td.Cpuid, s.function, s.index);
            var mask = Find(config, s.function, s.index);
            if (user is { } u && mask is { } m)
            {
                e.eax = u.eax & m.eax;
                e.ebx = u.ebx & m.ebx;
                e.ecx = u.ecx & m.ecx;
                e.edx = u.edx & m.edx;
            }
            if (e.function == 0x8000_0008)
                e.eax = (e.eax & ~0x00ff_0000u) | ((uint)(System.Numerics.BitOperations.TrailingZeroCount(td.SharedGpaBit) + 1) << 16);
            result.Add(e);
        }
        return result;
    }
}
