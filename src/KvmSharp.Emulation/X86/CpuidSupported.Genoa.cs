// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86;

internal static partial class CpuidSupported
{
    /// <summary>
    /// KVM_GET_SUPPORTED_CPUID on the AMD EPYC Genoa kvm_pvm machine (Linux 6.18.44, read Dec 5 2026): all 75 entries
    /// as that host answers (so a 64-entry buffer is E2BIG there as here), with the interpreter's bits added as in
    /// <see cref="EpycMilan"/>.
    /// </summary>
    public static readonly Abi.kvm_cpuid_entry2[] EpycGenoa =
    [
        E(0x0, 0, 0, 0x0000_001c, 0x6874_7541, 0x444d_4163, 0x6974_6e65),
        // ECX as on Milan: SSE3, SSSE3, SSE4.1/4.2, POPCNT, XSAVE and AVX added for the interpreter (see EpycMilan); EBX[31:24] is the APIC ID of
        // the CPU the ioctl ran on, CPU 1 here as on Milan.
        E(0x1, 0, 0, 0x00a1_0f11, 0x0102_0800, 0x8120_2000 | (1u << 0) | (1u << 9) | (1u << 12) | (1u << 19) | (1u << 20) | (1u << 22) | (1u << 23) | (1u << 26) | (1u << 28) | (1u << 29), 0x078b_fbff),
        E(0x2, 0, 0, 0, 0, 0, 0),
        E(0x3, 0, 0, 0, 0, 0, 0),
        E(0x4, 0, Sig, 0, 0, 0, 0),
        E(0x5, 0, 0, 0, 0, 0, 0),
        E(0x6, 0, 0, 0x0000_0004, 0, 0, 0),
        // EBX: AVX2 added for the interpreter, as on Milan.
        E(0x7, 0, Sig, 0x0000_0001, 0x0180_0002 | (1u << 3) | (1u << 5) | (1u << 8), 0x0000_0104, 0x2000_0000),
        E(0x7, 1, Sig, 0, 0, 0, 0),
        E(0x8, 0, 0, 0, 0, 0, 0),
        E(0x9, 0, 0, 0, 0, 0, 0),
        E(0xa, 0, 0, 0, 0, 0, 0),
        // EDX: the x2APIC ID of the CPU the ioctl ran on, CPU 1 as in leaf 1.
        E(0xb, 0, Sig, 0, 0, 0, 0x0000_0001),
        E(0xc, 0, 0, 0, 0, 0, 0),
        // XCR0 x87|SSE|AVX|opmask|ZMM_Hi256|Hi16_ZMM (0xe7), no PKRU; EBX/ECX: the XSAVE area size for that set.
        E(0xd, 0, Sig, 0x0000_00e7, 0x0000_0980, 0x0000_0980, 0),
        E(0xd, 1, Sig, 0, 0, 0, 0),
        // Size (EAX) and standard offset (EBX) of components 2 (AVX), 5, 6 and 7 (AVX-512).
        E(0xd, 2, Sig, 0x0000_0100, 0x0000_0240, 0, 0),
        E(0xd, 5, Sig, 0x0000_0040, 0x0000_0340, 0, 0),
        E(0xd, 6, Sig, 0x0000_0200, 0x0000_0380, 0, 0),
        E(0xd, 7, Sig, 0x0000_0400, 0x0000_0580, 0, 0),
        E(0xe, 0, 0, 0, 0, 0, 0),
        E(0xf, 0, Sig, 0, 0, 0, 0),
        E(0x10, 0, Sig, 0, 0, 0, 0),
        E(0x11, 0, 0, 0, 0, 0, 0),
        E(0x12, 0, Sig, 0, 0, 0, 0),
        E(0x13, 0, 0, 0, 0, 0, 0),
        E(0x14, 0, Sig, 0, 0, 0, 0),
        E(0x15, 0, 0, 0, 0, 0, 0),
        E(0x16, 0, 0, 0, 0, 0, 0),
        E(0x17, 0, Sig, 0, 0, 0, 0),
        E(0x18, 0, Sig, 0, 0, 0, 0),
        E(0x19, 0, 0, 0, 0, 0, 0),
        E(0x1a, 0, 0, 0, 0, 0, 0),
        E(0x1b, 0, 0, 0, 0, 0, 0),
        E(0x1c, 0, 0, 0, 0, 0, 0),
        E(0x8000_0000, 0, 0, 0x8000_0021, 0x6874_7541, 0x444d_4163, 0x6974_6e65),
        E(0x8000_0001, 0, 0, 0x00a1_0f11, 0x4000_0000, 0x0040_0393 | (1u << 5), 0x23d3_fbff),
        E(0x8000_0002, 0, 0, 0, 0, 0, 0),
        E(0x8000_0003, 0, 0, 0, 0, 0, 0),
        E(0x8000_0004, 0, 0, 0, 0, 0, 0),
        E(0x8000_0005, 0, 0, 0xff48_ff40, 0xff48_ff40, 0x2008_0140, 0x2008_0140),
        E(0x8000_0006, 0, 0, 0x5c00_2200, 0x6c00_4200, 0x0400_6140, 0x0a00_9140),
        E(0x8000_0007, 0, 0, 0, 0, 0, 0x0000_0100),
        E(0x8000_0008, 0, 0, 0x0000_3030, 0x5002_0005, 0x0000_7001, 0),
        E(0x8000_0009, 0, 0, 0, 0, 0, 0),
        E(0x8000_000a, 0, 0, 0, 0, 0, 0),
        E(0x8000_000b, 0, 0, 0, 0, 0, 0),
        E(0x8000_000c, 0, 0, 0, 0, 0, 0),
        E(0x8000_000d, 0, 0, 0, 0, 0, 0),
        E(0x8000_000e, 0, 0, 0, 0, 0, 0),
        E(0x8000_000f, 0, 0, 0, 0, 0, 0),
        E(0x8000_0010, 0, 0, 0, 0, 0, 0),
        E(0x8000_0011, 0, 0, 0, 0, 0, 0),
        E(0x8000_0012, 0, 0, 0, 0, 0, 0),
        E(0x8000_0013, 0, 0, 0, 0, 0, 0),
        E(0x8000_0014, 0, 0, 0, 0, 0, 0),
        E(0x8000_0015, 0, 0, 0, 0, 0, 0),
        E(0x8000_0016, 0, 0, 0, 0, 0, 0),
        E(0x8000_0017, 0, 0, 0, 0, 0, 0),
        E(0x8000_0018, 0, 0, 0, 0, 0, 0),
        E(0x8000_0019, 0, 0, 0, 0, 0, 0),
        E(0x8000_001a, 0, 0, 0x0000_0006, 0, 0, 0),
        E(0x8000_001b, 0, 0, 0, 0, 0, 0),
        E(0x8000_001c, 0, 0, 0, 0, 0, 0),
        E(0x8000_001d, 0, Sig, 0x0000_0121, 0x01c0_003f, 0x0000_003f, 0),
        E(0x8000_001d, 1, Sig, 0x0000_0122, 0x01c0_003f, 0x0000_003f, 0),
        E(0x8000_001d, 2, Sig, 0x0000_0143, 0x01c0_003f, 0x0000_07ff, 0x0000_0002),
        E(0x8000_001d, 3, Sig, 0x0000_4163, 0x03c0_003f, 0x0000_7fff, 0x0000_0001),
        E(0x8000_001d, 4, Sig, 0, 0, 0, 0),
        E(0x8000_001e, 0, 0, 0, 0, 0, 0),
        E(0x8000_001f, 0, 0, 0, 0, 0, 0),
        E(0x8000_0020, 0, 0, 0, 0, 0, 0),
        E(0x8000_0021, 0, 0, 0x0000_0204, 0, 0x0000_0006, 0),
        E(KvmCpuidSignature, 0, 0, KvmCpuidFeatures, 0x4b4d_564b, 0x564b_4d56, 0x0000_004d),
        E(KvmCpuidFeatures, 0, 0, 0x0100_7efb, 0, 0, 0),
    ];
}
