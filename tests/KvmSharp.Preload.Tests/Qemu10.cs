// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// Where the SEV-SNP tests find QEMU ≥ 9.1 (KVM_SEV_INIT2, guest_memfd) and why they skip without it: bookworm-backports'
/// 10.0, which .ci/run unpacks to /opt/kvmsharp/qemu10 (or KVMSHARP_QEMU10), and the host's CPUID faulting, through
/// which `exec` answers QEMU's own CPUID 0x8000001F for the emulated SEV host (native/cpuid.c).
/// </summary>
internal static class Qemu10
{
    private const string DefaultPath = "/opt/kvmsharp/qemu10/usr/bin/qemu-system-x86_64";

    /// <summary>The QEMU 10 binary, or a skip that names where it was looked for.</summary>
    public static string Require()
    {
        string path = Environment.GetEnvironmentVariable("KVMSHARP_QEMU10") is { Length: > 0 } p ? p : DefaultPath;
        Skip.If(!File.Exists(path), $"QEMU 10 is not at {DefaultPath} nor in KVMSHARP_QEMU10 (.ci/run unpacks bookworm-backports' qemu-system-x86 there)");
        Skip.IfNot(HasCpuidFaulting, "this CPU has no CPUID faulting (cpuid_fault in /proc/cpuinfo): QEMU would see no SEV host");
        return path;
    }

    /// <summary>QEMU's data directory (-L) beside the binary: its option ROMs and firmware descriptors.</summary>
    public static string DataDir(string qemu) =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(qemu)!, "..", "share", "qemu"));

    /// <summary>QEMU's confidential-guest object for an SEV-SNP guest (C-bit 51 as the emulated host's CPUID says).</summary>
    public const string Snp = "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1";

    /// <summary>
    /// An SEV-ES guest (policy NODBG | ES) launched with KVM_SEV_INIT2 on a KVM_X86_SEV_ES_VM: without
    /// legacy-vm-type=off QEMU asks for the legacy KVM_SEV_ES_INIT on a type-0 VM, ENOTTY as on upstream SVM.
    /// </summary>
    public const string SevEs = "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=0x5,legacy-vm-type=off";

    /// <summary>A plain SEV guest (policy NODBG), KVM_SEV_INIT2 on a KVM_X86_SEV_VM.</summary>
    public const string Sev = "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=0x1,legacy-vm-type=off";

    /// <summary>
    /// The arguments of a confidential guest (<paramref name="confidential"/>: <see cref="Snp"/>, <see cref="SevEs"/> or
    /// <see cref="Sev"/>) with <paramref name="firmware"/> as its flash and no devices but what <paramref name="more"/> adds.
    /// </summary>
    public static string[] Guest(string qemu, string firmware, string confidential, params string[] more) =>
    [
        qemu, "-L", DataDir(qemu), "-accel", "kvm", "-machine", "q35,confidential-guest-support=sev0",
        "-object", confidential, "-bios", firmware, "-nodefaults", "-nographic", "-display", "none", "-m", "512M", .. more,
    ];

    private static bool HasCpuidFaulting =>
        File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Split(' ').Contains("cpuid_fault"));
}
