// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.X86;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_GET_SUPPORTED_CPUID's leaf 0x8000001F (arch/x86/kvm/cpuid.c __do_cpuid_func; X86/CpuidSupported.Sev.cs): present
/// exactly when the configuration offers an SEV VM type, with the SEV / SEV-ES / SEV-SNP bits of the types offered, the
/// C-bit position the emulator's page walk uses and no NumVMPL or PA-bits reduction; leaf 0x80000000 reaches it. A
/// configuration without SEV (the "like this host" presets) answers its model's table unchanged.
/// </summary>
public sealed class SevCpuidLeafTests
{
    private const uint Leaf = 0x8000_001f;

    private static X86CpuModel Model(string name) => name == "Genoa" ? X86CpuModel.EpycGenoa : X86CpuModel.EpycMilan;

    private static IReadOnlyList<CpuidEntry> Supported(EmulatorConfig config)
    {
        using var k = new EmulatedKernel(config);
        using var kvm = Kvm.Open(k);
        return kvm.GetSupportedCpuid();
    }

    private static CpuidEntry Single(IReadOnlyList<CpuidEntry> table, uint function) =>
        Assert.Single(table, e => e.Function == function);

    [Theory]
    [InlineData("Milan", 509u)]
    [InlineData("Genoa", 1006u)]
    public void Full_x86_preset_reports_sev_es_and_snp_with_the_cbit_of_the_page_walk(string name, uint asids)
    {
        var table = Supported(EmulatorConfig.X86_64() with { X86Cpu = Model(name) });
        var e = Single(table, Leaf);
        // EAX: SEV (1), SEV-ES (3), SEV-SNP (4), SME_COHERENT (10); no SME (0) or VM_PAGE_FLUSH (2).
        Assert.Equal((1u << 1) | (1u << 3) | (1u << 4) | (1u << 10), e.Eax);
        // EBX: the C-bit only — NumVMPL (31:12) and the PA-bits reduction (11:6) are cleared.
        Assert.Equal((uint)GuestPhysicalMemory.CbitPosition, e.Ebx);
        Assert.Equal(51u, e.Ebx & 0x3f);
        Assert.Equal((asids, 100u), (e.Ecx, e.Edx));
        Assert.Equal((0u, 0u), (e.Index, e.Flags));
        Assert.True(Single(table, 0x8000_0000).Eax >= Leaf, "CPUID.0x80000000 EAX must reach 0x8000001F");
    }

    [Theory]
    [InlineData("Milan")]
    [InlineData("Genoa")]
    public void The_leaf_keeps_the_kernels_order_after_the_extended_leaves_below_it(string name)
    {
        var model = Model(name);
        var table = Supported(EmulatorConfig.X86_64() with { X86Cpu = model });
        var functions = table.Select(e => e.Function).ToList();
        int at = functions.IndexOf(Leaf);
        Assert.True(at > 0);
        Assert.True(functions.Take(at).All(f => f < Leaf), "every leaf before 0x8000001F is below it");
        Assert.True(functions.Skip(at + 1).All(f => f is > Leaf or (>= 0x4000_0000 and < 0x8000_0000)),
            "after it only higher extended leaves and the KVM leaves");
        // Genoa already lists the leaf (all zero): it is replaced, not added; Milan's trimmed table gains one entry.
        int modelCount = Supported(EmulatorConfig.LikeThisHost() with { X86Cpu = model }).Count;
        Assert.Equal(name == "Genoa" ? modelCount : modelCount + 1, table.Count);
        // Genoa's own maximum (0x80000021) stays; Milan's (0x80000008) rises to the leaf.
        Assert.Equal(name == "Genoa" ? 0x8000_0021u : Leaf, Single(table, 0x8000_0000).Eax);
    }

    [Theory]
    [InlineData("Milan")]
    [InlineData("Genoa")]
    public void A_config_without_sev_types_answers_the_model_table_unchanged(string name)
    {
        var model = Model(name);
        var table = Supported(EmulatorConfig.LikeThisHost() with { X86Cpu = model });
        Assert.Equal(model.SupportedCpuid.Select(e => (e.function, e.index, e.eax, e.ebx, e.ecx, e.edx)),
            table.Select(e => (e.Function, e.Index, e.Eax, e.Ebx, e.Ecx, e.Edx)));
        // Genoa's real table lists 0x8000001F all zero (this host has no SEV); Milan's trimmed one leaves it out.
        if (name == "Genoa")
        {
            var e = Single(table, Leaf);
            Assert.Equal((0u, 0u, 0u, 0u), (e.Eax, e.Ebx, e.Ecx, e.Edx));
        }
        else
        {
            Assert.DoesNotContain(table, e => e.Function == Leaf);
        }
        // A full preset of a release before SEV types (6.8: default and SW_PROTECTED only) has no leaf either.
        Assert.DoesNotContain(Supported(EmulatorConfig.X86_64(KernelGeneration.Linux68)), e => e.Function == Leaf);
    }

    [Theory]
    [InlineData(KvmConstants.KVM_X86_SEV_VM, (1u << 1) | (1u << 10))]
    [InlineData(KvmConstants.KVM_X86_SEV_ES_VM, (1u << 1) | (1u << 3) | (1u << 10))]
    [InlineData(KvmConstants.KVM_X86_SNP_VM, (1u << 1) | (1u << 3) | (1u << 4) | (1u << 10))]
    public void The_feature_bits_follow_the_sev_types_offered(uint topType, uint eax)
    {
        var types = new HashSet<uint> { KvmConstants.KVM_X86_DEFAULT_VM };
        for (uint t = KvmConstants.KVM_X86_SEV_VM; t <= topType; t++) types.Add(t);
        var table = Supported(EmulatorConfig.X86_64() with { VmTypes = types });
        Assert.Equal(eax, Single(table, Leaf).Eax);
    }
}
