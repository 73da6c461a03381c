// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// An unchanged QEMU boots its own default firmware, SeaBIOS (Debian's bios-256k.bin, what "-M pc" loads without
/// -bios), to "No bootable device." — on the real kernel and on the emulated one like it, with the same debug-console
/// log line by line. SeaBIOS runs real mode, then 32-bit protected mode; it probes fw_cfg (its DMA interface too),
/// the i440FX's PCI devices and their BARs, the PIIX's ELCR, ACPI tables, the ATA controllers and the PS/2 keyboard,
/// relocates itself, locks its shadow RAM (WBINVD first) and runs QEMU's kvmvapic option ROM; "-boot reboot-timeout=0"
/// makes it reset at once after the failed boot, which "-no-reboot" turns into QEMU's exit (status 0). With QEMU's
/// default CPU SeaBIOS also reads kvmclock (MSR_KVM_SYSTEM_TIME_NEW, X86/KvmClockMsrs.cs).
/// </summary>
public sealed class SeaBiosTests
{
    private const string Qemu = "qemu-system-x86_64";
    private const string Firmware = "/usr/share/seabios/bios-256k.bin";

    [KvmTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Qemu_boots_seabios_to_the_same_log_on_both_kernels(bool kvmclock)
    {
        string? qemu = ProgramPath.Find(Qemu);
        Skip.If(qemu is null, $"{Qemu} is not installed (Debian: apt-get install qemu-system-x86)");
        Skip.If(!File.Exists(Firmware), $"{Firmware} is missing (Debian: apt-get install seabios)");

        var real = ExecRun.Of(["--kernel", "linux"], Command(qemu!, kvmclock));
        Skip.If(real.Stderr.Contains("Could not access KVM kernel module", StringComparison.Ordinal), $"QEMU cannot use this host's KVM\n{real}");
        Assert.True(real.ExitCode == 0, $"the real kernel\n{real}");
        Assert.StartsWith("SeaBIOS (version ", real.Stdout, StringComparison.Ordinal);
        Assert.Contains("\nRunning on KVM\n", real.Stdout, StringComparison.Ordinal);
        Assert.Contains("\nNo bootable device.  Retrying in 0 seconds.\nRebooting.\n", real.Stdout, StringComparison.Ordinal);
        Assert.Equal(kvmclock, real.Stdout.Contains("\nkvmclock: at ", StringComparison.Ordinal));

        var emulated = ExecRun.Of(["--kernel", "emulated"], Command(qemu!, kvmclock));
        Assert.True(emulated.ExitCode == real.ExitCode, $"the emulated kernel\n{emulated}");
        Assert.Equal(WithoutTscRate(real.Stdout), WithoutTscRate(emulated.Stdout));
    }

    // With kvmclock SeaBIOS logs the TSC rate kvmclock gives it ("kvmclock: stable tsc, 2596 MHz", "CPU Mhz=2596
    // (kvmclock)"): the host's on the real kernel, the emulated TSC's 1 GHz on the emulated one. Every other line
    // must be the same.
    private static string WithoutTscRate(string log) => string.Join('\n', log.Split('\n')
        .Where(l => !l.StartsWith("kvmclock: stable tsc, ", StringComparison.Ordinal) && !l.StartsWith("CPU Mhz=", StringComparison.Ordinal)));

    // The smallest "pc" with SeaBIOS's log (its debug port 0x402) on stdio; QEMU's default CPU (kvmclock on) or one
    // without kvmclock, where SeaBIOS times itself with the ACPI PM timer ("Using pmtimer") and the log is the same on
    // every run. A guest that never ends is ended by timeout(1) (status 124) rather than hanging the test.
    private static string[] Command(string qemu, bool kvmclock) =>
    [
        "timeout", "120", qemu, "-accel", "kvm", "-M", "pc", .. (kvmclock ? Array.Empty<string>() : ["-cpu", "qemu64,kvmclock=off"]),
        "-bios", Firmware, "-nodefaults", "-nographic", "-display", "none", "-no-reboot", "-boot", "reboot-timeout=0",
        "-chardev", "stdio,id=dbg", "-device", "isa-debugcon,iobase=0x402,chardev=dbg",
    ];
}
