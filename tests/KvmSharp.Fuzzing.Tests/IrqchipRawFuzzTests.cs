// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// The raw fuzzer reaches the in-kernel irqchip (src/KvmSharp.Emulation/X86/Irqchip): every irqchip request is called,
/// each gets past its argument checks now and then, and no invariant (IrqchipInvariants among them) breaks.
/// </summary>
[Collection(nameof(RawIoctlFuzzerTests))]
public class IrqchipRawFuzzTests
{
    [Fact]
    public void The_irqchip_requests_get_past_their_checks_and_break_nothing()
    {
        var report = new RawIoctlFuzzer().Run(300_000, 3);
        Assert.True(report.Clean, $"{report.Exceptions} exceptions, {report.InvariantViolations} invariant violations, {report.Leaks} leaks: " +
            string.Join("\n", report.Findings.Select(f => $"{f.Kind} at {f.Input}: {f.Op}: {f.Detail}")));
        foreach (string name in new[] { "KVM_CREATE_IRQCHIP", "KVM_IRQ_LINE", "KVM_IRQ_LINE_STATUS", "KVM_GET_IRQCHIP", "KVM_SET_IRQCHIP",
            "KVM_SET_GSI_ROUTING", "KVM_SIGNAL_MSI", "KVM_GET_LAPIC", "KVM_SET_LAPIC" })
        {
            Assert.True(report.Outcomes.TryGetValue("ioctl " + name, out var outcome), $"{name} was never called");
            Assert.True(outcome.Ok > 0, $"{name} never succeeded ({outcome.Failed} failures)");
            Assert.True(outcome.Failed > 0, $"{name} never failed ({outcome.Ok} successes)");
        }
    }
}
