// SPDX-License-Identifier: MIT

using System.Text.RegularExpressions;

namespace KvmSharp.Preload.Tests;

/// <summary>
/// An unchanged QEMU 10 launches an SEV-SNP guest with Debian bookworm's OVMF (2022.11) on the emulated kernel
/// (<c>kvmsharp exec --kernel emulated --arch x86_64</c>; no SNP hardware): KVM_SEV_INIT2 and the SNP launch, guest
/// memory in guest_memfd made private with KVM_SET_MEMORY_ATTRIBUTES, then OVMF's reset vector and SEC run — its GHCB
/// page converted to shared on the guest's first shared access (KVM_EXIT_MEMORY_FAULT → attributes cleared, the
/// guest_memfd range punched), its RAM pre-validated through GHCB page-state changes that reach QEMU as
/// KVM_HC_MAP_GPA_RANGE exits — until SEC reads the xAPIC with the C-bit set: a private access to 0xfee00000 that QEMU
/// cannot convert. That is where the same firmware stops on real SNP hardware (AMDESE/AMDSEV issue #236, kernel 6.11 +
/// QEMU 9.1.5, the same message); newer OVMF builds go on. QEMU stays paused after it, so the run ends by timeout.
/// </summary>
public sealed class QemuSnpTests
{
    /// <summary>QEMU ≥ 9.1 (KVM_SEV_INIT2, guest_memfd): bookworm-backports' 10.0, which .ci/run unpacks here.</summary>
    private const string DefaultQemu = "/opt/kvmsharp/qemu10/usr/bin/qemu-system-x86_64";
    private const string Firmware = "/usr/share/ovmf/OVMF.fd";

    private static string? FindQemu()
    {
        string path = Environment.GetEnvironmentVariable("KVMSHARP_QEMU10") is { Length: > 0 } p ? p : DefaultQemu;
        return File.Exists(path) ? path : null;
    }

    private static bool HasCpuidFaulting =>
        File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Split(' ').Contains("cpuid_fault"));

    [KvmFact]
    public void Qemu_10_launches_an_snp_guest_and_ovmf_converts_memory_until_it_stops_where_hardware_stops()
    {
        string? qemu = FindQemu();
        Skip.If(qemu is null, $"QEMU 10 is not at {DefaultQemu} nor in KVMSHARP_QEMU10 (.ci/run unpacks bookworm-backports' qemu-system-x86 there)");
        Skip.If(!File.Exists(Firmware), $"{Firmware} is missing (Debian: apt-get install ovmf)");
        // QEMU's sev.c reads the host's CPUID 0x8000001F itself; exec answers it through CPUID faulting (native/cpuid.c).
        Skip.IfNot(HasCpuidFaulting, "this CPU has no CPUID faulting (cpuid_fault in /proc/cpuinfo): QEMU would see no SEV host");
        string data = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(qemu)!, "..", "share", "qemu"));

        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64", "--trace"],
            "timeout", "30", qemu!, "-L", data, "-accel", "kvm", "-machine", "q35,confidential-guest-support=sev0",
            "-object", "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1", "-bios", Firmware,
            "-nodefaults", "-nographic", "-display", "none", "-m", "512M");
        string trace = run.Stderr;

        Assert.True(trace.Contains("KVM_CREATE_VM, KVM_X86_SNP_VM) = ", StringComparison.Ordinal), run.ToString());
        Assert.Contains("KVM_CREATE_GUEST_MEMFD, {size=0x20000000, flags=0}) = ", trace, StringComparison.Ordinal);
        Assert.Contains("KVM_SET_MEMORY_ATTRIBUTES, {address=0x0, size=0x20000000, attributes=KVM_MEMORY_ATTRIBUTE_PRIVATE", trace, StringComparison.Ordinal);
        // The GHCB page (OVMF's PcdOvmfSecGhcbBase): the guest's first shared access, converted by QEMU.
        int ghcb = trace.IndexOf("KVM_SET_MEMORY_ATTRIBUTES, {address=0x809000, size=0x1000, attributes=0,", StringComparison.Ordinal);
        Assert.True(ghcb > 0, run.ToString());
        Assert.Contains("FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0x809000, 0x1000) = 0", trace[ghcb..], StringComparison.Ordinal);
        // Page-state changes to private: KVM_HC_MAP_GPA_RANGE exits, each followed by QEMU's attribute change.
        int hypercalls = Regex.Count(trace, @"KVM_EXIT_HYPERCALL \{nr=12, [^\n]*\nioctl\(vm#1, KVM_SET_MEMORY_ATTRIBUTES, \{address=");
        Assert.True(hypercalls >= 3, $"{hypercalls} MAP_GPA_RANGE exits\n{run}");
        Assert.Contains("Convert non guest_memfd backed memory region (0xfee00000 ,+ 0x1000) to private", trace, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", trace, StringComparison.Ordinal);
        Assert.DoesNotContain("emulation failure", trace, StringComparison.Ordinal);
    }
}
