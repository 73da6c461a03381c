// SPDX-License-Identifier: MIT
namespace KvmSharp.Samples.Tests;

/// <summary>
/// Runs every sample's Main in this process, as a newcomer would run it, and checks its exit code and the lines its
/// README promises. One class: its tests run one after another, which the shared Console needs.
/// </summary>
public sealed class SampleTests
{
    [Fact]
    public void GuestMemfdBasics_runs_a_guest_on_guest_memfd_and_shows_typed_errors()
    {
        // On this host: /dev/kvm when it has guest_memfd, else the emulated kernel (the sample says which).
        string output = AssertRuns(() => GuestMemfdBasics.Program.Main([]));
        AssertGuestMemfdBasics(output);
    }

    [Fact]
    public void GuestMemfdBasics_on_the_emulated_kernel()
    {
        string output = AssertRuns(() => GuestMemfdBasics.Program.Main(["--emulated"]));
        Assert.Contains("kernel: emulated, because --emulated was given", output, StringComparison.Ordinal);
        AssertGuestMemfdBasics(output);
    }

    [Fact]
    public void ConversionFlowOnEmulator_converts_refuses_faults_and_falls_back()
    {
        string output = AssertRuns(ConversionFlowOnEmulator.Program.Main);
        string[] expected =
        [
            "VM types: Default, SwProtected, Sev, SevEs, Snp, Tdx",
            "SwProtected GuestMemfdUse=SoleMemory, flags=MMAP|INIT_SHARED, gmem attributes=0x8",
            "page at file offset 0x1000 is private: IsShared=False",
            "host read refused: PrivatePage at file offset 0x1000, errno=EFAULT",
            "guest exit: KVM_EXIT_HLT; guest read the private secret and answered 0x5EC2E7C0FFEE0002",
            "converted back to shared: host reads 0x5EC2E7C0FFEE0001 (contents preserved)",
            "KVM_EXIT_MEMORY_FAULT gpa=0x1000 size=0x1000 flags=0x8 (private access)",
            "after 1 conversion the guest validated the page, read it and halted",
            "GuestMemfdUse: default VM None, SW_PROTECTED PrivateBacking; flags 0",
            "MMAP refused: KVM_CREATE_GUEST_MEMFD EINVAL",
            "OK: every expectation held.",
        ];
        foreach (string line in expected) Assert.Contains(line, output, StringComparison.Ordinal);
    }

    [Fact]
    public void SandboxServer_answers_every_outcome_and_reports_telemetry()
    {
        // /dev/kvm when it opens: on a kernel without guest_memfd the pool's micro-VMs use host memory.
        string output = AssertRuns(() => SandboxServer.Program.Main([]).GetAwaiter().GetResult());
        AssertSandboxServer(output);
    }

    [Fact]
    public void SandboxServer_on_the_emulated_kernel_uses_guest_memfd()
    {
        string output = AssertRuns(() => SandboxServer.Program.Main(["--emulated"]).GetAwaiter().GetResult());
        Assert.Contains("memory: guest_memfd", output, StringComparison.Ordinal);
        AssertSandboxServer(output);
    }

    private static void AssertGuestMemfdBasics(string output)
    {
        string[] expected =
        [
            "SupportedGuestMemfdFlags (VM):       MMAP|INIT_SHARED",
            "GuestMemfdUse (VM): SoleMemory",
            "guest exit: KVM_EXIT_HLT",
            "host wrote 41, guest answered 42",
            "typed error: KvmException operation=mmap errno=ENODEV (19)",
            "refused access: BeyondEndOfFile at file offset 0x10000 (+8), errno=EFAULT",
            "bytes before the end of the file: 0xAAAAAAAA (unchanged)",
            "OK: every expectation held.",
        ];
        foreach (string line in expected) Assert.Contains(line, output, StringComparison.Ordinal);
    }

    private static void AssertSandboxServer(string output)
    {
        string[] expected =
        [
            "spin, client gives up      -> 499 client closed the request; guest stopped",
            "spin until the limit       -> 504 guest stopped: Timeout",
            "divide by zero             -> 500 guest crashed: divide error (#DE)",
            "write to port 0x1234       -> 500 guest misbehaved: port 0x1234",
            "item 99 (backend down)     -> 502 host function failed: the price backend is down for item 99",
            "item 7 (not sold)          -> 404 no such item (guest exit status 4)",
            "quote item 2 x 11          -> 200 total 13200",
            "calls by outcome: cancelled=1, exception=1, exit=13, host_function_failed=1, timeout=1, unknown_port=1",
            "host calls: 14",
            "OK: every request got the response it should.",
        ];
        foreach (string line in expected) Assert.Contains(line, output, StringComparison.Ordinal);
    }

    /// <summary>Runs <paramref name="main"/> with the console captured; asserts exit code 0 and returns what it printed.</summary>
    private static string AssertRuns(Func<int> main)
    {
        TextWriter original = Console.Out;
        using var captured = new StringWriter();
        int exitCode;
        Console.SetOut(captured);
        try
        {
            exitCode = main();
        }
        finally
        {
            Console.SetOut(original);
        }
        string output = captured.ToString();
        Assert.True(exitCode == 0, $"exit code {exitCode}; output:\n{output}");
        return output;
    }
}
