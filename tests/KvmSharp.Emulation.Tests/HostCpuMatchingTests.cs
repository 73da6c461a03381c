// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The CPU model "like this host" takes is this machine's: the named table it matches agrees with what /dev/kvm
/// reports in everything the XSAVE rules read, and a model made from the report itself has the same layout.
/// </summary>
public sealed class HostCpuMatchingTests
{
    [KvmFact]
    public void The_matched_model_has_this_machines_xsave_layout()
    {
        var real = RealSupportedCpuid();
        var matched = HostMatching.HostCpuModel;
        Assert.NotNull(matched);
        Assert.Same(matched, HostMatching.HostCpuOrDefault);
        Assert.Same(matched, EmulatorConfig.LikeThisHost().X86Cpu);
        // At most one named model fits a machine; when one does, it is the one taken.
        var known = X86CpuModel.Known.Where(m => m.Matches(real)).ToArray();
        Assert.True(known.Length <= 1, "more than one model matches: " + string.Join(", ", known.Select(m => m.Name)));
        if (known.Length == 1) Assert.Same(known[0], matched);
        var derived = X86CpuModel.FromSupportedCpuid("derived", real);

        Assert.Equal(derived.SupportedXcr0, matched.SupportedXcr0);
        Assert.Equal(derived.Components, matched.Components);
        Assert.Equal(derived.PkruOffset, matched.PkruOffset);
        // Every subset of the supported features that XCR0 could hold sizes alike, standard and compacted.
        for (ulong xcr0 = 1; xcr0 <= 0x3ff; xcr0++)
        {
            if ((xcr0 & ~matched.SupportedXcr0) != 0) continue;
            Assert.Equal(derived.XstateSize(xcr0, compacted: false), matched.XstateSize(xcr0, compacted: false));
            Assert.Equal(derived.XstateSize(xcr0, compacted: true), matched.XstateSize(xcr0, compacted: true));
        }
        // The whole table, as the kernel orders it, but for the APIC IDs of the CPU the ioctl ran on (leaf 1 EBX[31:24],
        // leaf 0xB EDX) — only where the match is the named table that copies the whole report (Genoa's).
        if (matched == X86CpuModel.EpycGenoa)
        {
            Assert.Equal(real.Length, matched.SupportedCpuid.Length);
            for (int i = 0; i < real.Length; i++)
            {
                var (want, got) = (derived.SupportedCpuid[i], matched.SupportedCpuid[i]);
                if (want.function == 1) (want.ebx, got.ebx) = (want.ebx & 0x00ff_ffff, got.ebx & 0x00ff_ffff);
                if (want.function == 0xb) (want.edx, got.edx) = (0, 0);
                Assert.Equal((want.function, want.index, want.flags, want.eax, want.ebx, want.ecx, want.edx),
                    (got.function, got.index, got.flags, got.eax, got.ebx, got.ecx, got.edx));
            }
        }
    }

    [Fact]
    public void A_model_made_from_a_table_reads_its_layout_from_leaf_0xd()
    {
        var milan = X86CpuModel.FromSupportedCpuid("copy", X86CpuModel.EpycMilan.SupportedCpuid);
        Assert.Equal(0x207UL, milan.SupportedXcr0);
        Assert.Equal([new XsaveComponent(2, 0x240, 0x100), new XsaveComponent(9, 0x980, 8)], milan.Components);
        Assert.Equal(0x988u, milan.XstateSize(0x207, compacted: false));
        Assert.Equal(0x348u, milan.XstateSize(0x207, compacted: true));
        Assert.Empty(milan.ExtendedComponents);

        var genoa = X86CpuModel.EpycGenoa;
        Assert.Equal(0xe7UL, genoa.SupportedXcr0);
        Assert.Equal(0x980u, genoa.XstateSize(0xe7, compacted: false));
        Assert.Equal(0x340u, genoa.XstateSize(0x7, compacted: false));
        Assert.Equal([5, 6, 7], genoa.ExtendedComponents.Select(c => c.Bit));
        Assert.Equal(0, genoa.PkruOffset);
        Assert.True(genoa.Matches(genoa.SupportedCpuid));
        Assert.False(genoa.Matches(X86CpuModel.EpycMilan.SupportedCpuid));
    }

    private static kvm_cpuid_entry2[] RealSupportedCpuid()
    {
        using var kvm = Kvm.Open();
        return [.. kvm.GetSupportedCpuid().Select(e => new kvm_cpuid_entry2
        {
            function = e.Function, index = e.Index, flags = e.Flags, eax = e.Eax, ebx = e.Ebx, ecx = e.Ecx, edx = e.Edx,
        })];
    }
}
