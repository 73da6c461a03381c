// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>
/// An unchanged QEMU (qemu-system-x86_64 -accel kvm, the "pc" machine) boots a flat BIOS image (QemuBiosGuest) that
/// prints a line on its 16550 and ends the VM through isa-debug-exit — on the real kernel and on the emulated one like
/// it. QEMU exercises what the C programs here do not: KVM_CAP_X86_USER_SPACE_MSR with an MSR filter, KVM_CAP_MAX_VCPU_ID,
/// KVM_GET/SET_SREGS2, KVM_TPR_ACCESS_REPORTING and KVM_SET_VAPIC_ADDR at every vCPU reset, the in-kernel PIC, IOAPIC
/// and PIT, and the serial port's interrupt line through KVM_IRQ_LINE_STATUS while the guest polls it.
/// </summary>
public sealed class QemuTests
{
    private const string Qemu = "qemu-system-x86_64";

    [KvmFact]
    public void Qemu_runs_a_bios_guest_to_the_same_serial_output_and_exit_status_on_both_kernels()
    {
        string? qemu = ProgramPath.Find(Qemu);
        Skip.If(qemu is null, $"{Qemu} is not installed (Debian: apt-get install qemu-system-x86)");
        string bios = Path.Combine(Path.GetTempPath(), $"kvmsharp-qemu-bios-{Environment.ProcessId}.bin");
        File.WriteAllBytes(bios, QemuBiosGuest.Image());
        try
        {
            var real = ExecRun.Of(["--kernel", "linux"], Command(qemu!, bios));
            Skip.If(real.Stderr.Contains("Could not access KVM kernel module", StringComparison.Ordinal), $"QEMU cannot use this host's KVM\n{real}");
            Assert.True(real.ExitCode == QemuBiosGuest.ExitStatus, $"the real kernel\n{real}");
            Assert.Equal(QemuBiosGuest.Line, real.Stdout);

            var emulated = ExecRun.Of(["--kernel", "emulated"], Command(qemu!, bios));
            Assert.True(emulated.ExitCode == real.ExitCode, $"the emulated kernel\n{emulated}");
            Assert.Equal(real.Stdout, emulated.Stdout);
        }
        finally
        {
            File.Delete(bios);
        }
    }

    // The smallest "pc": no default devices, no display, COM1 on stdio; the VM ends through isa-debug-exit, and a guest
    // that never gets there is ended by timeout(1) (status 124) rather than hanging the test.
    private static string[] Command(string qemu, string bios) =>
    [
        "timeout", "120", qemu, "-accel", "kvm", "-M", "pc", "-bios", bios, "-nodefaults", "-nographic",
        "-serial", "stdio", "-display", "none", "-no-reboot",
        "-device", $"isa-debug-exit,iobase=0x{QemuBiosGuest.DebugExitPort:x},iosize=0x04",
    ];
}
