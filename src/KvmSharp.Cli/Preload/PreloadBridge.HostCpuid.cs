// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Cli.Preload;

public static partial class PreloadBridge
{
    /// <summary>CPUID Fn8000_001F, AMD's memory-encryption leaf (AMD APM Vol. 3, E.4.17).</summary>
    private const uint MemoryEncryptionLeaf = 0x8000_001f;

    /// <summary>Fn8000_001F EAX bit 0, SME: every SEV-capable EPYC has it; KVM does not pass it on to guests.</summary>
    private const uint Sme = 1;

    /// <summary>
    /// Fn8000_001F EBX bits 11:6, PhysAddrReduction, of the emulated host: 1, the value QEMU's SEV documentation pairs
    /// with cbitpos=51. KVM reports 0 there to guests ("Enumerate '0' for PA bits reduction").
    /// </summary>
    private const uint PhysAddrReductionOfOne = 1u << 6;

    /// <summary>
    /// The program's own CPUID of <paramref name="leaf"/> as the emulated host's CPU answers it (native/cpuid.c asks once,
    /// at start, and answers the program's faulting CPUID with it): 0 with EAX..EDX written to <paramref name="regs"/>,
    /// or 1 when this machine's answer stands. Only the memory-encryption leaf differs, and only on an x86 kernel that
    /// offers SEV: the leaf KVM_GET_SUPPORTED_CPUID reports (arch/x86/kvm/cpuid.c __do_cpuid_func 0x8000001F, derived
    /// from the host's) with the two host bits KVM masks put back — SME in EAX, PhysAddrReduction in EBX. QEMU's
    /// sev.c checks the C-bit position there against its sev-guest object before KVM_SEV_INIT2.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_host_cpuid")]
    public static long HostCpuid(uint leaf, uint subleaf, nint regs) => Guard("host cpuid", () =>
    {
        _ = subleaf; // the memory-encryption leaf has no subleaves
        if (s_emulated is null || leaf != MemoryEncryptionLeaf) return 1;
        if (s_emulated.Config.Architecture != KvmSharp.Emulation.Architecture.X86_64) return 1;
        using var kvm = Kvm.Open(s_emulated, proposals: s_emulated.Config.Proposals);
        var entry = kvm.GetSupportedCpuid().FirstOrDefault(e => e.Function == MemoryEncryptionLeaf);
        // KVM sets SEV (bit 1) only where kvm-amd offers it (sev_set_cpu_caps); without it this host has no SEV.
        if ((entry.Eax & 2) == 0) return 1;
        int[] values = [(int)(entry.Eax | Sme), (int)(entry.Ebx | PhysAddrReductionOfOne), (int)entry.Ecx, (int)entry.Edx];
        Marshal.Copy(values, 0, regs, values.Length);
        return 0;
    });
}
