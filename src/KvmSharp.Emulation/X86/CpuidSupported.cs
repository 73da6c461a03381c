// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The emulator's answers to KVM_GET_SUPPORTED_CPUID and KVM_GET_EMULATED_CPUID. The values are machine-specific on a
/// real kernel (arch/x86/kvm/cpuid.c kvm_dev_ioctl_get_cpuid asks the host CPU and masks it with kvm_cpu_caps), so
/// this is a fixed, plausible table: a trimmed copy of what this host (AMD, Linux 6.18 kvm_pvm) reported, limited to
/// the leaves a VMM needs. The order is the kernel's: basic leaves, extended leaves, then the KVM leaves
/// (kvm_dev_ioctl_get_cpuid's funcs[] = { 0, 0x80000000, CENTAUR_CPUID_SIGNATURE, KVM_CPUID_SIGNATURE }).
/// Unlike the kernel, leaf 0's maximum (0xd) does not promise every basic leaf below it.
/// </summary>
internal static partial class CpuidSupported
{
    private const uint Sig = KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

    // "AuthenticAMD" as EBX, EDX, ECX.
    private const uint AmdEbx = 0x6874_7541, AmdEdx = 0x6974_6e65, AmdEcx = 0x444d_4163;

    /// <summary>KVM_CPUID_SIGNATURE (arch/x86/include/uapi/asm/kvm_para.h).</summary>
    public const uint KvmCpuidSignature = 0x4000_0000;

    /// <summary>KVM_CPUID_FEATURES (arch/x86/include/uapi/asm/kvm_para.h).</summary>
    public const uint KvmCpuidFeatures = 0x4000_0001;

    /// <summary>KVM_GET_SUPPORTED_CPUID on the AMD EPYC Milan kvm_pvm machines (X86CpuModel.EpycMilan).</summary>
    public static readonly kvm_cpuid_entry2[] EpycMilan =
    [
        E(0x0, 0, 0, 0x0000_000d, AmdEbx, AmdEcx, AmdEdx),
        // ECX: SSE3, SSSE3, CX16, SSE4.1, SSE4.2, x2APIC, POPCNT, TSC deadline, XSAVE, AVX, hypervisor — SSE3, SSSE3, SSE4.1/4.2,
        // POPCNT (x86-64-v2, X86Emulator.Sse41.cs), XSAVE and AVX since the interpreter
        // runs their instructions (PTEST/PINSRQ/PEXTRQ, XSETBV/XGETBV, the VEX moves), as this host offers them.
        E(0x1, 0, 0, 0x00a0_0f11, 0x0102_0800, 0x8120_2000 | (1u << 0) | (1u << 9) | (1u << 12) | (1u << 19) | (1u << 20) | (1u << 22) | (1u << 23) | (1u << 26) | (1u << 28) | (1u << 29), 0x078b_fbff),
        // FMA (ECX 12), MOVBE (ECX 22), F16C (ECX 29), BMI1/BMI2 (7.0 EBX 3/8) and ABM/LZCNT (80000001 ECX 5): x86-64-v3, run by the interpreter
        // (X86Emulator.Bmi.cs, Fma.cs, F16c.cs, IntegerExtras.cs) as this host's CPU does; kvm_pvm's table hides them.
        // EBX: FSGSBASE, AVX2 (the 256-bit integer VEX forms), and this host's bits 23-24.
        E(0x7, 0, Sig, 0, 0x0180_0002 | (1u << 3) | (1u << 5) | (1u << 8), 0x0000_0004, 0xa800_0000),
        // XCR0 x87|SSE|AVX|PKRU (0x207); EBX/ECX: the XSAVE area size for that set.
        E(0xd, 0, Sig, 0x0000_0207, 0x0000_0988, 0x0000_0988, 0),
        E(0xd, 1, Sig, 0, 0, 0, 0),
        // Size (EAX) and standard offset (EBX) of components 2 (AVX) and 9 (PKRU).
        E(0xd, 2, Sig, 0x0000_0100, 0x0000_0240, 0, 0),
        E(0xd, 9, Sig, 0x0000_0008, 0x0000_0980, 0, 0),
        E(0x8000_0000, 0, 0, 0x8000_0008, AmdEbx, AmdEcx, AmdEdx),
        E(0x8000_0001, 0, 0, 0x00a0_0f11, 0x4000_0000, 0x0040_0393 | (1u << 5), 0x23d3_fbff),
        // 48 physical / 48 virtual address bits.
        E(0x8000_0008, 0, 0, 0x0000_3030, 0x110a_d205, 0x0000_7001, 0),
        // __do_cpuid_func KVM_CPUID_SIGNATURE: EAX = KVM_CPUID_FEATURES, "KVMKVMKVM\0\0\0".
        E(KvmCpuidSignature, 0, 0, KvmCpuidFeatures, 0x4b4d_564b, 0x564b_4d56, 0x0000_004d),
        // KVM_FEATURE_* bits as this host offers them (CLOCKSOURCE … PV_SCHED_YIELD, ASYNC_PF_INT, MSI_EXT_DEST_ID).
        E(KvmCpuidFeatures, 0, 0, 0x0100_7efb, 0, 0, 0),
    ];

    /// <summary>
    /// KVM_GET_EMULATED_CPUID, as this host answers it: __do_cpuid_func_emulated gives leaf 0 (EAX = 7), leaf 1 ECX =
    /// MOVBE and an empty leaf 7.0 (RDPID only when the host lacks it).
    /// </summary>
    public static readonly kvm_cpuid_entry2[] Emulated =
    [
        E(0x0, 0, 0, 0x7, 0, 0, 0),
        E(0x1, 0, 0, 0, 0, 1u << 22, 0),
        E(0x7, 0, Sig, 0, 0, 0, 0),
    ];

    private static kvm_cpuid_entry2 E(uint function, uint index, uint flags, uint eax, uint ebx, uint ecx, uint edx) =>
        new() { function = function, index = index, flags = flags, eax = eax, ebx = ebx, ecx = ecx, edx = edx };
}
