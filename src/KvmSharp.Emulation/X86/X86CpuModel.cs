// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The host CPU an emulated x86 kernel runs on, as KVM shows it: the KVM_GET_SUPPORTED_CPUID table
/// (arch/x86/kvm/cpuid.c kvm_dev_ioctl_get_cpuid asks the host CPU and masks it with kvm_cpu_caps) and what follows
/// from its leaf 0xD — kvm_caps.supported_xcr0 and the standard-format XSAVE layout (fpu/xstate.c
/// setup_xstate_cache: each component's offset and size from CPUID.0xD.i EBX / EAX). This project's machines have
/// come in two kinds, both AMD EPYC under Linux 6.18 kvm_pvm: <see cref="EpycMilan"/> and <see cref="EpycGenoa"/>;
/// <see cref="HostMatching"/> picks the one the machine running now is.
/// </summary>
public sealed class X86CpuModel
{
    private const uint SignificantIndex = KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

    /// <summary>XFEATURE_PKRU (bit 9).</summary>
    internal const ulong Pkru = 1UL << 9;

    private X86CpuModel(string name, kvm_cpuid_entry2[] supported)
    {
        Name = name;
        SupportedCpuid = supported;
        var leaf = Find(0xd, 0);
        SupportedXcr0 = leaf is { } d ? d.eax | ((ulong)d.edx << 32) : 0;
        var components = new List<XsaveComponent>();
        for (int bit = 2; bit < 64; bit++)
        {
            if ((SupportedXcr0 & (1UL << bit)) == 0 || Find(0xd, (uint)bit) is not { } c) continue;
            components.Add(new XsaveComponent(bit, (int)c.ebx, (int)c.eax));
        }
        Components = components;
        ExtendedComponents = components.Where(c => c.Bit is > 2 and not 9).ToArray();
        PkruOffset = components.FirstOrDefault(c => c.Bit == 9).Offset;
    }

    /// <summary>
    /// AMD EPYC Milan (family 19h model 01h; CPUID.1 EAX 0x00a00f11): x87, SSE, AVX and PKRU (XCR0 0x207, PKRU at
    /// 0x980); the kvm_pvm machines of Nov–Dec 2026, sessions 1–12. The default of every preset.
    /// </summary>
    public static X86CpuModel EpycMilan { get; } = new("AMD EPYC Milan (XCR0 0x207)", CpuidSupported.EpycMilan);

    /// <summary>
    /// AMD EPYC Genoa (family 19h model 11h; CPUID.1 EAX 0x00a10f11): x87, SSE, AVX and the three AVX-512
    /// components, no PKRU (XCR0 0xe7; opmask at 0x340, ZMM_Hi256 at 0x380, Hi16_ZMM at 0x580); the kvm_pvm
    /// machine of Dec 5 2026.
    /// </summary>
    public static X86CpuModel EpycGenoa { get; } = new("AMD EPYC Genoa (XCR0 0xe7)", CpuidSupported.EpycGenoa);

    /// <summary>
    /// A model of a CPU met for the first time: <paramref name="supported"/> is what its kernel answered to
    /// KVM_GET_SUPPORTED_CPUID, taken as it is but for the bits the interpreter needs, added as on the known models
    /// (CPUID.1 ECX SSE3, SSSE3, FMA, SSE4.1, SSE4.2, MOVBE, POPCNT, XSAVE, AVX and F16C; CPUID.7.0 EBX BMI1, AVX2, BMI2; CPUID.80000001 ECX ABM/LZCNT). The XSAVE layout follows from its leaf 0xD.
    /// </summary>
    public static X86CpuModel FromSupportedCpuid(string name, ReadOnlySpan<kvm_cpuid_entry2> supported)
    {
        var entries = supported.ToArray();
        for (int i = 0; i < entries.Length; i++)
        {
            ref var e = ref entries[i];
            if (e.function == 0x1) e.ecx |= (1u << 0) | (1u << 9) | (1u << 12) | (1u << 19) | (1u << 20) | (1u << 22) | (1u << 23) | (1u << 26) | (1u << 28) | (1u << 29);
            if (e.function == 0x7 && e.index == 0) e.ebx |= (1u << 3) | (1u << 5) | (1u << 8);
            if (e.function == 0x8000_0001) e.ecx |= 1u << 5;
        }
        return new X86CpuModel(name, entries);
    }

    /// <summary>The models this project has met, in the order <see cref="HostMatching"/> tries them.</summary>
    public static IReadOnlyList<X86CpuModel> Known { get; } = [EpycMilan, EpycGenoa];

    /// <summary>A name for reports.</summary>
    public string Name { get; }

    /// <summary>
    /// kvm_cpu_cap_has(X86_FEATURE_GBPAGES): KVM_GET_SUPPORTED_CPUID's 0x80000001 EDX[26]. KVM offers it only with TDP
    /// (cpuid.c kvm_set_cpu_caps: "if (!tdp_enabled) kvm_cpu_cap_clear(X86_FEATURE_GBPAGES)"): absent on kvm_pvm.
    /// </summary>
    internal bool OffersGbPages => Find(0x8000_0001, 0) is { } e && (e.edx & (1u << 26)) != 0;

    /// <summary>
    /// The host CPU's vendor is AMD (or Hygon): KVM_GET_SUPPORTED_CPUID leaf 0 passes the host's vendor string through.
    /// Decides which hypercall instruction is native (VMMCALL on SVM, VMCALL on VMX).
    /// </summary>
    internal bool IsAmd => Find(0, 0) is { } l0 && CpuidTable.IsAmdOrHygon(l0.ebx, l0.ecx, l0.edx);

    /// <summary>kvm_caps.supported_xcr0: CPUID.0xD.0 EDX:EAX of <see cref="SupportedCpuid"/>.</summary>
    public ulong SupportedXcr0 { get; }

    /// <summary>KVM_GET_SUPPORTED_CPUID's answer, in the kernel's order.</summary>
    internal kvm_cpuid_entry2[] SupportedCpuid { get; }

    /// <summary>The XSAVE components above SSE that <see cref="SupportedXcr0"/> names, with their standard offsets.</summary>
    public IReadOnlyList<XsaveComponent> Components { get; }

    /// <summary>
    /// The components past AVX other than PKRU (which KVM keeps in vcpu->arch.pkru): AVX-512's three on Genoa, none
    /// on Milan. <see cref="VcpuState.ExtendedArea"/> holds their bytes.
    /// </summary>
    internal XsaveComponent[] ExtendedComponents { get; }

    /// <summary>PKRU's standard offset (CPUID.0xD.9 EBX; 0x980 on Milan), 0 where the host has no PKRU.</summary>
    internal int PkruOffset { get; }

    /// <summary>
    /// True when <paramref name="entries"/> (a real kernel's KVM_GET_SUPPORTED_CPUID) offers the XSAVE features this
    /// model does (CPUID.0xD.0 EDX:EAX): the one part of the table in which the machines met so far differ in a way a
    /// test can see.
    /// </summary>
    public bool Matches(ReadOnlySpan<kvm_cpuid_entry2> entries)
    {
        foreach (var e in entries)
            if (e.function == 0xd && e.index == 0) return (e.eax | ((ulong)e.edx << 32)) == SupportedXcr0;
        return false;
    }

    /// <summary>
    /// xstate_required_size(xcr0, compacted): the legacy area and header (0x240), then in the standard format the end
    /// of the furthest enabled component, in the compacted one the sum of their sizes.
    /// </summary>
    internal uint XstateSize(ulong xcr0, bool compacted)
    {
        uint size = 0x240;
        foreach (var c in Components)
        {
            if ((xcr0 & c.Mask) == 0) continue;
            size = compacted ? size + (uint)c.Size : Math.Max(size, (uint)(c.Offset + c.Size));
        }
        return size;
    }

    /// <inheritdoc/>
    public override string ToString() => Name;

    private kvm_cpuid_entry2? Find(uint function, uint index)
    {
        foreach (var e in SupportedCpuid)
            if (e.function == function && ((e.flags & SignificantIndex) == 0 || e.index == index)) return e;
        return null;
    }
}

/// <summary>One XSAVE state component: its XCR0 bit, standard-format offset and size (CPUID.0xD.bit EBX / EAX).</summary>
/// <param name="Bit">The component's XCR0 / XSTATE_BV bit.</param>
/// <param name="Offset">Its offset in a standard-format image (KVM_GET_XSAVE).</param>
/// <param name="Size">Its size in bytes.</param>
public readonly record struct XsaveComponent(int Bit, int Offset, int Size)
{
    /// <summary>1 &lt;&lt; <see cref="Bit"/>.</summary>
    public ulong Mask => 1UL << Bit;
}
