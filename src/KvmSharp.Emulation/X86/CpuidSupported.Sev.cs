// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.X86;

internal static partial class CpuidSupported
{
    /// <summary>CPUID Fn8000_001F, AMD's memory encryption leaf (AMD APM Vol. 3, E.4.17).</summary>
    public const uint MemoryEncryptionLeaf = 0x8000_001f;

    private const uint ExtendedMaxLeaf = 0x8000_0000;

    // Fn8000_001F EAX: bit 1 SEV, bit 3 SEV-ES, bit 4 SEV-SNP, bit 10 SME_COHERENT (arch/x86/include/asm/cpufeatures.h).
    private const uint EaxSev = 1u << 1, EaxSevEs = 1u << 3, EaxSevSnp = 1u << 4, EaxSmeCoherent = 1u << 10;

    /// <summary>
    /// KVM_GET_SUPPORTED_CPUID of a kernel with <paramref name="config"/>: its CPU model's table as the machine answers
    /// it, plus — when the configuration offers an SEV VM type (so kvm-amd's sev_set_cpu_caps set X86_FEATURE_SEV) —
    /// leaf 0x8000001F and a leaf 0x80000000 that reaches it. A configuration without SEV types (every "like this host"
    /// preset: this host has no SEV) answers the model's table unchanged, 0x8000001F all-zero where the model lists it.
    /// </summary>
    public static kvm_cpuid_entry2[] For(EmulatorConfig config)
    {
        var table = config.X86Cpu.SupportedCpuid;
        if (MemoryEncryption(config, config.X86Cpu) is not { } leaf) return table;
        var result = new List<kvm_cpuid_entry2>(table.Length + 1);
        bool placed = false;
        foreach (var e in table)
        {
            var entry = e;
            // get_cpuid_func: the extended class runs up to CPUID.0x80000000 EAX, so it must reach 0x8000001F (the host's
            // own maximum, 0x80000021 on Genoa, already does; the trimmed Milan table stops at 0x80000008).
            if (entry.function == ExtendedMaxLeaf) entry.eax = Math.Max(entry.eax, MemoryEncryptionLeaf);
            if (entry.function == MemoryEncryptionLeaf)
            {
                entry = leaf;
                placed = true;
            }
            else if (!placed && ComesAfterMemoryEncryptionLeaf(entry.function))
            {
                result.Add(leaf);
                placed = true;
            }
            result.Add(entry);
        }
        if (!placed) result.Add(leaf);
        return [.. result];
    }

    /// <summary>
    /// arch/x86/kvm/cpuid.c __do_cpuid_func case 0x8000001F, for a host whose kvm-amd offers SEV (null otherwise: "if
    /// (!kvm_cpu_cap_has(X86_FEATURE_SEV)) entry->eax = entry->ebx = entry->ecx = entry->edx = 0"):
    /// EAX = cpuid_entry_override(CPUID_8000_001F_EAX) — kvm_set_cpu_caps keeps only SME_COHERENT of the host's bits (SME
    /// and VM_PAGE_FLUSH are not offered) and svm/sev.c sev_set_cpu_caps sets SEV, SEV_ES and SEV_SNP with the VM types
    /// it enables (sev_snp_enabled implies sev_es_enabled implies sev_enabled); EBX keeps only the C-bit position, bits
    /// 5:0 ("Clear NumVMPL since KVM does not support VMPL": ~GENMASK(31, 12); "Enumerate '0' for PA bits reduction":
    /// ~GENMASK(11, 6)) — the position <see cref="GuestPhysicalMemory.CbitPosition"/> the emulator's page walk uses;
    /// ECX (encrypted guests at once = the highest ASID) and EDX (the lowest ASID of SEV without ES) pass through from
    /// the host: the EPYC's ASID counts (Milan 509, Genoa 1006) and a BIOS "SEV-ES ASID space limit" of 100, so ASIDs
    /// 1–99 are left for SEV-ES and SNP (sev_hardware_setup: sev_es_asid_count = min_sev_asid - 1 must be non-zero for
    /// those types to be offered).
    /// </summary>
    internal static kvm_cpuid_entry2? MemoryEncryption(EmulatorConfig config, X86CpuModel model)
    {
        var types = config.VmTypes;
        bool snp = types.Contains(KvmConstants.KVM_X86_SNP_VM);
        bool es = snp || types.Contains(KvmConstants.KVM_X86_SEV_ES_VM);
        bool sev = es || types.Contains(KvmConstants.KVM_X86_SEV_VM);
        if (!sev) return null;
        uint eax = EaxSev | EaxSmeCoherent | (es ? EaxSevEs : 0) | (snp ? EaxSevSnp : 0);
        uint maxAsid = ReferenceEquals(model, X86CpuModel.EpycGenoa) ? 1006u : 509u;
        return E(MemoryEncryptionLeaf, 0, 0, eax, GuestPhysicalMemory.CbitPosition, maxAsid, MinSevAsid);
    }

    /// <summary>
    /// kvm_dev_ioctl_get_cpuid's order (funcs[] = { 0, 0x80000000, CENTAUR_CPUID_SIGNATURE, KVM_CPUID_SIGNATURE }): an
    /// extended leaf above 0x8000001F or any later class.
    /// </summary>
    private static bool ComesAfterMemoryEncryptionLeaf(uint function) =>
        function > MemoryEncryptionLeaf || function is >= KvmCpuidSignature and < ExtendedMaxLeaf;

    /// <summary>CPUID.0x8000001F EDX of the modelled SEV host: the first ASID for SEV guests without ES.</summary>
    private const uint MinSevAsid = 100;
}
