// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What the x86 CPUID and MSR ops draw from a seed (<see cref="OpKind.MsrsIo"/>, <see cref="OpKind.CpuidRoundTrip"/>,
/// <see cref="OpKind.SystemX86List"/>, <see cref="OpKind.X86GuestRun"/>): MSR entries from a pool of indices both
/// kernels handle and some neither does, with values around each MSR's rules (reserved bits, non-canonical
/// addresses), and small CPUID tables. Steered around, with the evidence in src/KvmSharp.Conformance/HostDeviations.cs:
/// <list type="bullet">
/// <item>CPUID leaves 1, 7 and 0xD (KvmPvmSetCpuidRewritesLeaves): this host rewrites them.</item>
/// <item>CPUID leaf 0x80000001 and 0x80000000.EAX &gt;= 0x80000008: they change other rules (EFER's LM/NX, TSC_AUX's
/// RDTSCP — which kvm_pvm never grants: KvmPvmWithoutTscAuxInstructions — and MAXPHYADDR) that the emulator models
/// for an empty CPUID only (EFER) or that this host does not show.</item>
/// <item>MSR_IA32_MISC_ENABLE (KvmPvmMiscEnableDiffers) and invalid PAT values (KvmPvmPatNotValidated) unless the op
/// includes reported divergences; the TSC's value is never shown (KvmPvmTscWriteIgnored, and machine-specific).</item>
/// </list>
/// </summary>
internal static class X86StateOps
{
    public const uint Efer = 0xC000_0080, Star = 0xC000_0081, Lstar = 0xC000_0082, Cstar = 0xC000_0083, SyscallMask = 0xC000_0084;
    public const uint FsBase = 0xC000_0100, GsBase = 0xC000_0101, KernelGsBase = 0xC000_0102, TscAux = 0xC000_0103;
    public const uint Tsc = 0x10, ApicBase = 0x1B, UcodeRev = 0x8B, SysenterCs = 0x174, SysenterEsp = 0x175, SysenterEip = 0x176;
    public const uint MiscEnable = 0x1A0, Pat = 0x277, P5McAddr = 0x0, P5McType = 0x1, TscAdjust = 0x3B;

    // The machine-check MSRs (x86.c get_msr_mce / set_msr_mce) and the MTRRs (mtrr.c), kept per vCPU without being
    // listed: MCG_CAP/STATUS/CTL, bank 0's CTL..MISC, bank 31's MISC and CTL2 (reachable with the default 32 banks,
    // gone after a smaller KVM_X86_SETUP_MCE), bank 32 (never), MTRRcap, two variable pairs, the 9th pair (never), three
    // fixed ranges, a gap between them and MTRRdefType.
    public const uint McgCap = 0x179, McgStatus = 0x17A, McgCtl = 0x17B, Mc0Ctl = 0x400, Mc0Ctl2 = 0x280;
    public const uint MtrrCap = 0xFE, MtrrPhysBase0 = 0x200, MtrrFix64K = 0x250, MtrrFix4KF8000 = 0x26F, MtrrDefType = 0x2FF;

    private static readonly uint[] s_mceMtrr =
    [
        McgCap, McgStatus, McgCtl, Mc0Ctl, Mc0Ctl + 1, Mc0Ctl + 2, Mc0Ctl + 3, Mc0Ctl + 4 * 31 + 3, Mc0Ctl + 4 * 32,
        Mc0Ctl2, Mc0Ctl2 + 31, MtrrCap, MtrrPhysBase0, MtrrPhysBase0 + 1, MtrrPhysBase0 + 14, MtrrPhysBase0 + 15,
        MtrrPhysBase0 + 16, MtrrFix64K, 0x259, MtrrFix4KF8000, 0x251, MtrrDefType,
    ];

    /// <summary>System-scope names of <see cref="OpKind.SystemX86List"/>'s E.</summary>
    internal static readonly string[] SystemListNames =
        ["KVM_GET_SUPPORTED_CPUID", "KVM_GET_EMULATED_CPUID", "KVM_GET_MSR_INDEX_LIST", "KVM_GET_MSR_FEATURE_INDEX_LIST", "KVM_GET_MSRS(system)"];

    /// <summary>MSRs both kernels handle (and the host lets a vCPU ioctl reach).</summary>
    private static readonly uint[] s_known =
    [
        Efer, Star, Lstar, Cstar, SyscallMask, FsBase, GsBase, KernelGsBase, TscAux, Tsc, ApicBase, UcodeRev,
        SysenterCs, SysenterEsp, SysenterEip, Pat, P5McAddr, P5McType, TscAdjust,
    ];

    /// <summary>MSRs neither kernel handles: refused (no ignore_msrs), host writes of 0 too (not advertised).</summary>
    private static readonly uint[] s_unknown = [0x5, 0x2F, 0x1234_5678, 0xDEAD_BEEF, 0xFFFF_FFFF, 0xC000_0FFF, 0x8000_0000];

    /// <summary>The guest programs leave out the TSC (its value is the host's).</summary>
    private static readonly uint[] s_guest =
    [
        Efer, Star, Lstar, Cstar, SyscallMask, FsBase, GsBase, KernelGsBase, TscAux, ApicBase, UcodeRev,
        SysenterCs, SysenterEsp, SysenterEip, Pat, P5McAddr, P5McType, 0x5, 0x1234_5678, 0xC000_0FFF, TscAdjust,
    ];

    /// <summary>
    /// An MSR index: mostly known ones, sometimes unknown, MISC_ENABLE only with reported divergences; one in five a
    /// machine-check MSR or an MTRR.
    /// </summary>
    public static uint Index(Random rng, bool withReported, bool guest = false)
    {
        if (withReported && rng.Next(12) == 0) return MiscEnable;
        if (rng.Next(5) == 0) return s_mceMtrr[rng.Next(s_mceMtrr.Length)];
        if (guest) return s_guest[rng.Next(s_guest.Length)];
        return rng.Next(6) == 0 ? s_unknown[rng.Next(s_unknown.Length)] : s_known[rng.Next(s_known.Length)];
    }

    /// <summary>A value to write to <paramref name="index"/>: around its rules.</summary>
    public static ulong Value(Random rng, uint index, bool withReported)
    {
        if (rng.Next(10) == 0) return 0;
        switch (index)
        {
            case Efer:
                return rng.Next(6) switch
                {
                    0 => 0x1,                                              // SCE
                    1 => 0x500,                                            // LME | LMA
                    2 => 0xD01,                                            // SCE | LME | LMA | NX
                    3 => 0x100 | (ulong)(rng.Next(2) << 11),               // LME (| NX)
                    4 => 1UL << rng.Next(1, 8),                            // reserved bits below LME
                    _ => 1UL << rng.Next(22, 64),                          // reserved high bits
                };
            case Lstar or Cstar or FsBase or GsBase or KernelGsBase or SysenterEsp or SysenterEip:
                return Address(rng);
            case TscAux:
                return rng.Next(3) == 0 ? (ulong)rng.NextInt64() : (ulong)rng.NextInt64(0, 1L << 32);
            case TscAdjust:
                // kvm_set_msr_common MSR_IA32_TSC_ADJUST: stored only with CPUID.(7,0).EBX TSC_ADJUST (no table the fuzzer
                // draws has leaf 7: KvmPvmSetCpuidRewritesLeaves), else dropped without #GP; any s64 value, negative ones too.
                // A guest write with the bit would move the TSC (adjust_tsc_offset_guest), which is never shown.
                return rng.Next(3) switch { 0 => (ulong)rng.NextInt64(), 1 => (ulong)-rng.NextInt64(1, 1L << 40), _ => (ulong)rng.NextInt64(0, 1L << 32) };
            case Pat:
                if (withReported && rng.Next(3) == 0) return (ulong)rng.NextInt64();
                return rng.Next(3) switch
                {
                    0 => 0x0007_0406_0007_0406,                            // the reset value
                    1 => 0x0606_0606_0606_0606,
                    _ => ValidPat(rng),
                };
            case ApicBase:
                return rng.Next(5) switch
                {
                    0 => 0xFEE0_0900,                                      // BSP | EN, the reset value
                    1 => 0xFEE0_0800,
                    2 => 0xFEE0_0000 | (1UL << rng.Next(0, 12)),           // reserved low bits, EXTD, BSP, EN
                    3 => 0xFEE0_0900 | (1UL << rng.Next(32, 64)),          // beyond MAXPHYADDR (36 without CPUID)
                    _ => (ulong)rng.NextInt64(0, 1L << 36) & ~0xFFFUL | 0x900,
                };
            case MiscEnable:
                return rng.Next(2) == 0 ? 0x1800 | (ulong)rng.Next(2) : (ulong)rng.NextInt64();
            case McgCtl:
                return rng.Next(3) == 0 ? (ulong)rng.NextInt64() : ulong.MaxValue;
            case Mc0Ctl:
                return rng.Next(5) switch
                {
                    0 => ulong.MaxValue,
                    1 => ~(1UL << 10),                                     // the K8 GART workaround, allowed
                    2 => ~1UL,                                             // UNIXWARE's, allowed
                    3 => ~(1UL << rng.Next(1, 64)),                        // refused unless bit 10
                    _ => (ulong)rng.NextInt64(),
                };
            case Mc0Ctl2 or Mc0Ctl2 + 31:
                return rng.Next(3) switch { 0 => 1UL << 30, 1 => (ulong)rng.Next(0x8000), _ => (ulong)rng.NextInt64() };
            case MtrrDefType:
                return rng.Next(3) == 0 ? (ulong)rng.NextInt64(0, 0x2000) : MtrrType(rng) | ((ulong)rng.Next(4) << 10);
            case MtrrFix64K or 0x259 or MtrrFix4KF8000:
                ulong types = 0;
                for (int i = 0; i < 8; i++) types |= MtrrType(rng) << (8 * i);
                return rng.Next(4) == 0 ? types ^ (1UL << rng.Next(64)) : types;
            case MtrrPhysBase0 or MtrrPhysBase0 + 14:
                // A page-aligned base below MAXPHYADDR (36 without CPUID) and a type; or reserved bits 8-11 / 36-63.
                ulong page = (ulong)rng.NextInt64(0, 1L << 24) << 12;
                return rng.Next(4) == 0 ? page | MtrrType(rng) | (1UL << rng.Next(8, 64)) : page | MtrrType(rng);
            case MtrrPhysBase0 + 1 or MtrrPhysBase0 + 15:
                ulong mask = ((ulong)rng.NextInt64(0, 1L << 24) << 12) | 0x800;
                return rng.Next(4) == 0 ? mask | (1UL << rng.Next(0, 64)) : mask;
            default:
                ulong value = rng.Next(3) switch { 0 => (ulong)rng.Next(0x10000), 1 => (ulong)rng.NextInt64(0, 1L << 32), _ => (ulong)rng.NextInt64() };
                // IA32_TSC: a host write is kvm_synchronize_tsc, which joins the current generation (KVM_GET_CLOCK's
                // flags) when the value lies within one second of guest cycles of the last write plus the time since —
                // a distance that depends on the kernel's TSC rate (2.4 GHz here, 1 GHz in the emulator). Only 0 (above:
                // always synchronising) or values far from any TSC a session reaches (2^62 and up) cross it the same
                // way on both kernels.
                return index == Tsc ? value | 1UL << 62 : value;
        }
    }

    /// <summary>Canonical (low or high half) or not, for the 48-bit address MSRs.</summary>
    private static ulong Address(Random rng) => rng.Next(5) switch
    {
        0 => 0x0000_7FFF_FFFF_F000 + (ulong)rng.Next(0x1000),
        1 => 0xFFFF_8000_0000_0000 + (ulong)rng.Next(0x1000),
        2 => 0x0000_8000_0000_0000 + (ulong)rng.Next(0x1000),      // non-canonical
        3 => (ulong)rng.NextInt64(),                               // nearly always non-canonical
        _ => (ulong)rng.NextInt64(0, 1L << 47),
    };

    /// <summary>An MTRR memory type: mostly a valid one (mtrr.c valid_mtrr_type: 0, 1, 4, 5, 6), sometimes 2, 3 or 7.</summary>
    private static ulong MtrrType(Random rng)
    {
        ReadOnlySpan<int> types = [0, 1, 4, 5, 6, 0, 1, 4, 5, 6, 2, 3, 7];
        return (ulong)types[rng.Next(types.Length)];
    }

    /// <summary>
    /// An IA32_MCG_CAP for KVM_X86_SETUP_MCE: a bank count (0, 1..32, 33, 255) with the supported bits (CTL_P, SER_P),
    /// MCG_EXT_CNT, and now and then an unsupported bit (CMCI_P, EXT_P, TES_P, LMCE_P, a high bit).
    /// </summary>
    public static ulong McgCapValue(Random rng)
    {
        ulong banks = rng.Next(8) switch { 0 => 0, 1 => 33, 2 => 255, 3 => 32, _ => (ulong)rng.Next(1, 5) };
        ulong cap = banks | (rng.Next(2) == 0 ? 1UL << 8 : 0) | (rng.Next(2) == 0 ? 1UL << 24 : 0);
        if (rng.Next(4) == 0) cap |= (ulong)rng.Next(256) << 16;
        if (rng.Next(5) == 0) cap |= 1UL << (rng.Next(4) switch { 0 => 9, 1 => 10, 2 => 11, _ => rng.Next(25, 64) });
        return cap;
    }

    /// <summary>Eight memory types of 0 (UC), 1 (WC), 4 (WT), 5 (WP), 6 (WB) or 7 (UC-).</summary>
    private static ulong ValidPat(Random rng)
    {
        ReadOnlySpan<int> types = [0, 1, 4, 5, 6, 7];
        ulong v = 0;
        for (int i = 0; i < 8; i++) v |= (ulong)types[rng.Next(types.Length)] << (8 * i);
        return v;
    }

    /// <summary>The entries of an MSR op: C of them, drawn from seed A.</summary>
    public static kvm_msr_entry[] MsrEntries(ulong seed, int count, bool withReported)
    {
        var rng = new Random(unchecked((int)seed));
        var entries = new kvm_msr_entry[count];
        for (int i = 0; i < count; i++)
        {
            uint index = Index(rng, withReported);
            entries[i] = new kvm_msr_entry { index = index, reserved = rng.Next(16) == 0 ? (uint)rng.Next() : 0, data = Value(rng, index, withReported) };
        }
        // One op in six has MSR_K7_HWCR in place of one entry, drawn from the seed apart from the entries' stream so
        // the other entries stay the ones a seed always drew: its ignored, kept and refused bits; before an MCi_STATUS
        // entry in the same KVM_SET_MSRS it changes nothing there (can_set_mci_status is for guest writes).
        if (count > 0 && (seed >> 13) % 6 == 0)
        {
            var hwcr = new Random(unchecked((int)(seed >> 8) ^ 0x4C0015));
            entries[hwcr.Next(count)] = new kvm_msr_entry { index = Hwcr, data = HwcrValue(hwcr) };
        }
        // One op in four has MSR_PLATFORM_INFO and/or MSR_MISC_FEATURES_ENABLES in place of entries (CPUID faulting),
        // from a stream of their own like HWCR's.
        if (count > 0 && (seed >> 17) % 4 == 0)
        {
            var cf = new Random(unchecked((int)(seed >> 9) ^ 0x140CE));
            for (int n = cf.Next(1, 3); n > 0; n--)
            {
                uint index = cf.Next(2) == 0 ? PlatformInfo : MiscFeaturesEnables;
                entries[cf.Next(count)] = new kvm_msr_entry { index = index, data = CpuidFaultingValue(cf, index, withReported) };
            }
        }
        return entries;
    }

    /// <summary>MSR_PLATFORM_INFO and MSR_MISC_FEATURES_ENABLES (x86.c kvm_get/set_msr_common, CPUID faulting).</summary>
    public const uint PlatformInfo = 0xCE, MiscFeaturesEnables = 0x140;

    /// <summary>MSR_PLATFORM_INFO_CPUID_FAULT (bit 31); MSR_MISC_FEATURES_ENABLES_CPUID_FAULT is bit 0.</summary>
    public const ulong PlatformInfoCpuidFault = 1UL << 31;

    /// <summary>
    /// A value for <see cref="PlatformInfo"/> or <see cref="MiscFeaturesEnables"/>. Upstream refuses MISC_FEATURES_ENABLES
    /// bits other than CPUID_FAULT and CPUID_FAULT itself without PLATFORM_INFO's CPUID_FAULT, and a host write clearing
    /// PLATFORM_INFO's CPUID_FAULT while faulting is on; kvm_pvm checks none of that
    /// (HostDeviations.KvmPvmMiscFeaturesEnablesUnchecked). So without reported divergences MISC_FEATURES_ENABLES is 0
    /// or 1 and PLATFORM_INFO always keeps CPUID_FAULT (its other bits are free: upstream stores any host value), so
    /// neither rule is ever reached; with them, reserved bits and PLATFORM_INFO without CPUID_FAULT too.
    /// </summary>
    public static ulong CpuidFaultingValue(Random rng, uint index, bool withReported)
    {
        if (index == MiscFeaturesEnables)
        {
            if (withReported && rng.Next(3) == 0) return rng.Next(2) == 0 ? 1UL << rng.Next(1, 64) : (ulong)rng.NextInt64();
            return (ulong)rng.Next(2);
        }
        if (withReported && rng.Next(3) == 0) return rng.Next(2) == 0 ? 0 : (ulong)rng.NextInt64() & ~PlatformInfoCpuidFault;
        return rng.Next(3) switch
        {
            0 => PlatformInfoCpuidFault,                               // the value a vCPU starts with
            1 => PlatformInfoCpuidFault | 0xFF00,                      // with a max non-turbo ratio
            _ => PlatformInfoCpuidFault | ((ulong)rng.NextInt64() & ~PlatformInfoCpuidFault),
        };
    }

    /// <summary>MSR_K7_HWCR (x86.c kvm_set_msr_common).</summary>
    public const uint Hwcr = 0xC001_0015;

    /// <summary>McStatusWrEn, TscFreqSel, both, with the ignored bits 3, 6, 8, or a refused bit.</summary>
    private static ulong HwcrValue(Random rng) => rng.Next(6) switch
    {
        0 => 0,
        1 => 1UL << 18,
        2 => 1UL << 24,
        3 => (1UL << 18) | (1UL << 24) | 0x148,
        4 => 1UL << rng.Next(64),
        _ => (ulong)rng.NextInt64() & 0x1FF_FFFF,
    };

    /// <summary>
    /// CPUID leaves a table may hold: not 1, 7, 0xD (rewritten by this host), 0x80000001 or 0x80000008-with-a-maximum
    /// (they change MSR and address-width rules), nor 0x80000007 / 0x80000021 (kvm_cpuid adjusts them).
    /// </summary>
    private static readonly uint[] s_leaves =
    [
        0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0xA, 0xB, 0x10, 0x14, 0x1F, 0x4000_0000, 0x4000_0001, 0x4000_0100,
        0x8000_0000, 0x8000_0002, 0x8000_0003, 0x8000_0004, 0x8000_0005, 0x8000_0006, 0x8000_0008, 0xC000_0000, 0xC000_0001,
    ];

    /// <summary>A CPUID table of <paramref name="count"/> entries from <paramref name="seed"/>.</summary>
    public static kvm_cpuid_entry2[] CpuidTable(ulong seed, int count)
    {
        var rng = new Random(unchecked((int)seed * 13 + 0xC1D));
        var entries = new kvm_cpuid_entry2[count];
        for (int i = 0; i < count; i++)
        {
            // Often leaf 0 first: its vendor decides rules elsewhere (TSC_AUX's high bits, out-of-range leaves).
            uint function = i == 0 && rng.Next(3) == 0 ? 0 : s_leaves[rng.Next(s_leaves.Length)];
            var e = new kvm_cpuid_entry2
            {
                function = function,
                index = rng.Next(3) == 0 ? (uint)rng.Next() : (uint)rng.Next(4),
                flags = rng.Next(8) switch { < 4 => 0, < 7 => KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX, _ => (uint)rng.Next(8) },
                eax = Register(rng), ebx = Register(rng), ecx = Register(rng), edx = Register(rng),
            };
            switch (function)
            {
                case 0x0:
                    // Max basic leaf, then a vendor: AMD (no out-of-range redirection), Intel, or anything.
                    e.eax = (uint)rng.Next(0, 0x20);
                    (e.ebx, e.ecx, e.edx) = rng.Next(3) switch
                    {
                        0 => (0x6874_7541u, 0x444d_4163u, 0x6974_6e65u),
                        1 => (0x756e_6547u, 0x6c65_746eu, 0x4965_6e69u),
                        _ => (e.ebx, e.ecx, e.edx),
                    };
                    break;
                case 0x8000_0000 or 0xC000_0000:
                    e.eax = function + (uint)rng.Next(0, 8);           // below 0x80000008: MAXPHYADDR stays 36
                    break;
                case 0x8000_0008:
                    // EAX[15:8], the virtual-address width: 0, 48 and 57 are accepted, anything else is EINVAL.
                    uint va = rng.Next(4) switch { 0 => 0, 1 => 48, 2 => 57, _ => (uint)rng.Next(256) };
                    e.eax = (e.eax & ~0xFF00u) | (va << 8);
                    break;
                case 0x4000_0000:
                    // Never KVM's or Hyper-V's signature by chance: a max leaf, then a vendor of nobody's.
                    (e.eax, e.ebx, e.ecx, e.edx) = (0x4000_0000 + (uint)rng.Next(0, 0x110), 0x7a7a_7a7a, 0x7a7a_7a7a, 0x7a7a_7a7a);
                    break;
            }
            if (rng.Next(10) == 0) e.padding[rng.Next(3)] = (uint)rng.Next();
            entries[i] = e;
        }
        return entries;
    }

    private static uint Register(Random rng) => rng.Next(4) == 0 ? 0 : (uint)rng.Next() ^ ((uint)rng.Next(2) << 31);
}
