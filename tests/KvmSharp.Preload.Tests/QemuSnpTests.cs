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
/// QEMU 9.1.5, the same message); newer OVMF builds go on (<see cref="QemuSnpShellTests"/>). QEMU stays paused after it,
/// so the run ends by timeout.
/// </summary>
public sealed class QemuSnpTests
{
    private const string Firmware = "/usr/share/ovmf/OVMF.fd";

    [KvmFact]
    public void Qemu_10_launches_an_snp_guest_and_ovmf_converts_memory_until_it_stops_where_hardware_stops()
    {
        string qemu = Qemu10.Require();
        Skip.If(!File.Exists(Firmware), $"{Firmware} is missing (Debian: apt-get install ovmf)");
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64", "--trace"], ["timeout", "30", .. Qemu10.Guest(qemu, Firmware, Qemu10.Snp)]);
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
