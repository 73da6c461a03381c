// SPDX-License-Identifier: MIT

using System.Text.RegularExpressions;

namespace KvmSharp.Preload.Tests;

/// <summary>
/// An unchanged QEMU 10 boots an SEV-SNP, an SEV-ES and a plain SEV guest with Debian trixie's OVMF (2025.02) on the
/// emulated kernel to the UEFI shell and powers it off from there, with no SEV hardware. Under SNP, SEC validates
/// memory and checks it runs at VMPL0 (RMPADJUST); under SNP and SEV-ES, PEI and DXE run with their GHCB (#VC for port
/// I/O, MSRs, CPUID, MMIO — the xAPIC timer through the in-kernel local APIC); BDS starts the built-in shell on COM1,
/// and <c>reset -s</c> typed at its prompt
/// (PythonPrograms/uefi_shell_reset.py) ends in an ACPI power-off that makes QEMU exit 0. .ci/run unpacks the
/// firmware to /opt/kvmsharp/ovmf-trixie (bookworm's 2022.11 stops in SEC: <see cref="QemuSnpTests"/>).
/// </summary>
public sealed partial class QemuSnpShellTests
{
    private const string Firmware = "/opt/kvmsharp/ovmf-trixie/usr/share/ovmf/OVMF.fd";
    private const string Python = "/usr/bin/python3";

    [GeneratedRegex(@"\x1b\[[0-9;=?]*[A-Za-z]")]
    private static partial Regex Ansi();

    private static string Script => Path.Combine(AppContext.BaseDirectory, "PythonPrograms", "uefi_shell_reset.py");

    [KvmTheory]
    [InlineData("snp")]
    [InlineData("sev-es")]
    [InlineData("sev")]
    public void Ovmf_2025_boots_a_confidential_guest_to_the_uefi_shell_and_powers_off(string type)
    {
        string confidential = type switch { "snp" => Qemu10.Snp, "sev-es" => Qemu10.SevEs, _ => Qemu10.Sev };
        string qemu = Qemu10.Require();
        Skip.If(!File.Exists(Firmware), $"{Firmware} is missing (.ci/run unpacks trixie's ovmf package there)");
        Skip.If(!File.Exists(Python), $"{Python} is not installed (Debian: apt-get install python3)");

        // The interpreter boots OVMF in 2.5–3 minutes on this machine; 15 are allowed for a loaded CI host.
        var run = ExecRun.Of(["--kernel", "emulated", "--arch", "x86_64"],
            ["timeout", "900", Python, Script, .. Qemu10.Guest(qemu, Firmware, confidential, "-serial", "stdio")]);

        Assert.True(run.ExitCode == 0, run.ToString());
        // The console draws with cursor moves and colours between characters: compare its text alone.
        string console = Ansi().Replace(run.Stdout, "");
        Assert.Contains("BdsDxe: starting Boot0001 \"EFI Internal Shell\"", console, StringComparison.Ordinal);
        Assert.Contains("UEFI Interactive Shell", console, StringComparison.Ordinal);
        Assert.Contains("Shell> reset -s", console, StringComparison.Ordinal); // the shell echoed the command it ran
        Assert.DoesNotContain("X64 Exception Type", console, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", run.Stderr, StringComparison.Ordinal);
    }
}
