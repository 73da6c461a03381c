// SPDX-License-Identifier: MIT
using System.Text.Json;
using KvmSharp.Cli.Commands;
using KvmSharp.Emulation;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// The <c>run</c> verb, through the whole command line in process. On the real kernel, guest memory is what /dev/kvm
/// offers (<c>--memory auto</c>): a guest_memfd, or host memory with one line on stderr saying why; the tests expect
/// whichever this machine has, and the emulated kernels (the full x86_64 preset with guest_memfd, and a VM type
/// without it) cover the other on every host.
/// </summary>
public sealed class RunCommandTests
{
    /// <summary>Why /dev/kvm has no guest_memfd for a default micro-VM (null when it has), asked once like the CLI does.</summary>
    private static readonly Lazy<string?> NoGuestMemfd = new(() =>
    {
        using var kvm = Kvm.Open();
        using var vm = kvm.CreateVm();
        return GuestMemory.GuestMemfdUnavailableReason(vm);
    });

    private static string ExpectedMemory => NoGuestMemfd.Value is null ? "guest_memfd" : "host";

    private static (int Code, string Output) Invoke(params string[] args)
    {
        var run = CliRun.Of(["run", .. args]);
        return (run.ExitCode, run.Stdout);
    }

    /// <summary>Auto on the real kernel: silent with a guest_memfd, else exactly one line that says why and what else to ask for.</summary>
    private static void AssertAutoNote(CliRun run)
    {
        if (NoGuestMemfd.Value is string why)
        {
            string line = Assert.Single(run.StderrLines);
            Assert.Equal($"kvmsharp: {Kvm.DefaultPath}: {why}; the guest runs in ordinary host memory " +
                "(--memory guest-memfd refuses; --kernel emulated --arch x86_64 gives guest_memfd)", line);
        }
        else
        {
            Assert.Empty(run.Stderr);
        }
    }

    [KvmFact]
    public void Run_hello_streams_the_console_then_the_outcome()
    {
        var run = CliRun.Of("run", "hello");
        Assert.Equal(0, run.ExitCode);
        Assert.StartsWith(Hello.Greeting, run.Stdout, StringComparison.Ordinal);
        Assert.Contains("exit status 0", run.Stdout, StringComparison.Ordinal);
        AssertAutoNote(run);
    }

    [KvmFact]
    public void Run_sum_json_has_outcome_status_result_console_rip_and_memory()
    {
        var run = CliRun.Of("run", "sum", "--json");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout); // stdout is the JSON object alone: the note goes to stderr
        var root = doc.RootElement;
        Assert.Equal("exit", root.GetProperty("outcome").GetString());
        Assert.Equal(0, root.GetProperty("status").GetInt32());
        Assert.Equal(5050UL, root.GetProperty("result").GetUInt64());
        Assert.Equal("", root.GetProperty("console").GetString());
        Assert.True(root.GetProperty("rip").GetUInt64() > 0);
        Assert.Equal(ExpectedMemory, root.GetProperty("memory").GetString());
        AssertAutoNote(run);
    }

    [KvmFact]
    public void Memory_guest_memfd_runs_in_a_guest_memfd_or_refuses_with_the_kernels_reason()
    {
        var run = CliRun.Of("run", "sum", "--json", "--memory", "guest-memfd");
        if (NoGuestMemfd.Value is string why)
        {
            Assert.Equal(ExitCodes.KernelError, run.ExitCode);
            Assert.Empty(run.Stdout);
            string line = Assert.Single(run.StderrLines); // one line, no stack trace
            Assert.Equal($"kvmsharp: --memory guest-memfd: {Kvm.DefaultPath}: {why} " +
                "(--memory auto or --memory host runs the guest in ordinary host memory; --kernel emulated --arch x86_64 gives guest_memfd)", line);
        }
        else
        {
            Assert.Equal(0, run.ExitCode);
            using var doc = JsonDocument.Parse(run.Stdout);
            Assert.Equal("guest_memfd", doc.RootElement.GetProperty("memory").GetString());
            Assert.Empty(run.Stderr);
        }
    }

    [KvmFact]
    public void Memory_host_runs_in_host_memory_without_a_note()
    {
        var run = CliRun.Of("run", "sum", "--json", "--memory", "host");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.Equal(5050UL, doc.RootElement.GetProperty("result").GetUInt64());
        Assert.Equal("host", doc.RootElement.GetProperty("memory").GetString());
        Assert.Empty(run.Stderr); // asked for, not a fallback
    }

    [Theory]
    [InlineData("auto", "guest_memfd")]
    [InlineData("guest-memfd", "guest_memfd")]
    [InlineData("host", "host")]
    public void On_an_emulated_kernel_with_guest_memfd_every_memory_choice_is_what_was_asked(string choice, string memory)
    {
        // The full x86_64 preset has guest_memfd whatever this machine has: auto takes it, silently.
        var run = CliRun.Of("run", "sum", "--json", "--kernel", "emulated", "--arch", "x86_64", "--memory", choice);
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.Equal(5050UL, doc.RootElement.GetProperty("result").GetUInt64());
        Assert.Equal(memory, doc.RootElement.GetProperty("memory").GetString());
        Assert.Empty(run.Stderr);
    }

    [Fact]
    public void The_emulated_kernel_like_this_host_has_guest_memfd_as_this_host_does()
    {
        // --kernel emulated is built like this machine's kernel (HostMatching): without guest_memfd here when
        // /dev/kvm has none, so auto falls back the same way and names the preset that has it.
        bool hostHasGuestMemfd = HostMatching.HostHasGuestMemfd ?? true;
        var run = CliRun.Of("run", "sum", "--json", "--kernel", "emulated");
        Assert.Equal(0, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.Equal(5050UL, doc.RootElement.GetProperty("result").GetUInt64());
        Assert.Equal(hostHasGuestMemfd ? "guest_memfd" : "host", doc.RootElement.GetProperty("memory").GetString());
        if (hostHasGuestMemfd)
        {
            Assert.Empty(run.Stderr);
        }
        else
        {
            string note = Assert.Single(run.StderrLines);
            Assert.StartsWith("kvmsharp: emulated (like this host: x86_64, 6.18 without CONFIG_KVM_GUEST_MEMFD): this kernel has no guest_memfd", note, StringComparison.Ordinal);
            Assert.EndsWith("(--memory guest-memfd refuses; --arch x86_64 gives guest_memfd)", note, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_vm_type_whose_guest_memfd_cannot_be_mapped_falls_back_to_host_memory_or_is_refused()
    {
        // Emulated mainline x86: guest_memfd exists, but SW_PROTECTED VMs get no MMAP|INIT_SHARED (no in-place
        // conversion), so a micro-VM of that type cannot live in one. Runs on every host.
        string[] args = ["run", "hello", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", "sw-protected"];
        var auto = CliRun.Of(args);
        Assert.Equal(0, auto.ExitCode);
        Assert.StartsWith(Hello.Greeting, auto.Stdout, StringComparison.Ordinal);
        string note = Assert.Single(auto.StderrLines);
        Assert.StartsWith("kvmsharp: emulated (x86_64, all VM types, 6.18): VM type SwProtected: KVM_CAP_GUEST_MEMFD_FLAGS = 0x", note, StringComparison.Ordinal);
        Assert.EndsWith("; the guest runs in ordinary host memory (--memory guest-memfd refuses)", note, StringComparison.Ordinal);

        var refused = CliRun.Of([.. args, "--memory", "guest-memfd"]);
        Assert.Equal(ExitCodes.KernelError, refused.ExitCode);
        Assert.Empty(refused.Stdout);
        string line = Assert.Single(refused.StderrLines);
        Assert.Contains("lacks MMAP|INIT_SHARED", line, StringComparison.Ordinal);
        Assert.EndsWith("(--memory auto or --memory host runs the guest in ordinary host memory)", line, StringComparison.Ordinal);
    }

    [KvmFact]
    public void Exit_code_is_the_guest_status_or_125_when_it_did_not_exit()
    {
        Assert.Equal(42, Invoke("exit42").Code);
        var (code, output) = Invoke("loop", "--timeout", "100ms", "--json");
        Assert.Equal(RunCommand.GuestDidNotExit, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("timeout", doc.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("result").ValueKind);
        using var port = JsonDocument.Parse(Invoke("badport", "--json").Output);
        Assert.Equal("unknown_port", port.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(0x1234, port.RootElement.GetProperty("port").GetInt32());
    }

    [KvmFact]
    public void A_cpu_exception_is_outcome_exception_with_vector_error_code_and_cr2_in_the_json()
    {
        var (code, output) = Invoke("pagefault", "--json");
        Assert.Equal(RunCommand.GuestDidNotExit, code);
        using var doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        ulong fault = Misbehaving.PageFaultImage().Resolve(Misbehaving.FaultSymbol);
        Assert.Equal("exception", root.GetProperty("outcome").GetString());
        Assert.Equal((14, 0x2UL, Misbehaving.UnmappedAddress, fault),
            (root.GetProperty("vector").GetInt32(), root.GetProperty("error_code").GetUInt64(), root.GetProperty("cr2").GetUInt64(), root.GetProperty("rip").GetUInt64()));
        Assert.Equal($"page fault (#PF) at rip 0x{fault:X}: cr2 0xDEAD0000, error code 0x2 (write, not present)", root.GetProperty("detail").GetString());

        // #DE pushes no error code and has no CR2: neither field is there.
        using var divide = JsonDocument.Parse(Invoke("divide", "--json").Output);
        Assert.Equal(("exception", 0), (divide.RootElement.GetProperty("outcome").GetString(), divide.RootElement.GetProperty("vector").GetInt32()));
        Assert.False(divide.RootElement.TryGetProperty("error_code", out _));
        Assert.False(divide.RootElement.TryGetProperty("cr2", out _));
        // Nor does an ending that is not an exception have a vector.
        using var triple = JsonDocument.Parse(Invoke("triplefault", "--json").Output);
        Assert.Equal("shutdown", triple.RootElement.GetProperty("outcome").GetString());
        Assert.False(triple.RootElement.TryGetProperty("vector", out _));
    }

    [KvmFact]
    public void A_cpu_exception_is_one_line_naming_it()
    {
        var (code, output) = Invoke("ud");
        Assert.Equal(RunCommand.GuestDidNotExit, code);
        ulong fault = Misbehaving.InvalidOpcodeImage().Resolve(Misbehaving.FaultSymbol);
        Assert.StartsWith($"exception: invalid opcode (#UD) at rip 0x{fault:X} (rip 0x{fault:X}, 1 exits, ", output, StringComparison.Ordinal);
    }

    [KvmFact]
    public void An_elf_file_runs_from_disk()
    {
        string path = Path.GetTempFileName();
        try
        {
            var p = new GuestProgram();
            var start = p.Export("_start");
            p.Place(ref start);
            p.ExitWith(3);
            File.WriteAllBytes(path, p.BuildElf(start));
            Assert.Equal(3, Invoke(path, "--mem", "4M").Code);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("2M", 2UL << 20)]
    [InlineData("2MiB", 2UL << 20)]
    [InlineData("4096k", 4UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("2097152", 2UL << 20)]
    public void Sizes_parse(string text, ulong bytes) => Assert.Equal(bytes, RunCommand.ParseSize(text));

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("1s", 1000)]
    [InlineData("1.5s", 1500)]
    [InlineData("2m", 120_000)]
    public void Durations_parse(string text, int milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), RunCommand.ParseDuration(text));

    [Theory]
    [InlineData("--mem", "lots")]
    [InlineData("--mem", "3M")]
    [InlineData("--timeout", "-1s")]
    [InlineData("--timeout", "soon")]
    public void Bad_values_are_usage_errors(string option, string value)
    {
        var run = CliRun.Of("run", "hello", option, value);
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Single(run.StderrLines);
        Assert.StartsWith("kvmsharp: ", run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("lots")]
    [InlineData("gmem")]
    public void Memory_takes_only_auto_guest_memfd_or_host(string value)
    {
        var run = CliRun.Of("run", "hello", "--memory", value);
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.StartsWith($"kvmsharp: Argument '{value}' not recognized", run.StderrLines[0], StringComparison.Ordinal);
        Assert.Contains("guest-memfd", run.StderrLines[0], StringComparison.Ordinal);
        Assert.Empty(run.Stdout);
    }

    [Fact]
    public void A_missing_file_is_a_usage_error()
    {
        var run = CliRun.Of("run", "/nonexistent/guest.elf");
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains("/nonexistent/guest.elf", run.Stderr, StringComparison.Ordinal);
    }

    [KvmFact]
    public void Trace_instructions_prints_each_instruction_after_the_outcome_and_where_the_limit_cut_it()
    {
        var run = CliRun.Of("run", "sum", "--trace-instructions", "5");
        Assert.Equal(0, run.ExitCode);
        string[] lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int outcome = Array.FindIndex(lines, l => l.StartsWith("exit status 0, result 5050", StringComparison.Ordinal));
        Assert.True(outcome >= 0, run.Stdout);
        ulong sum = Sum.Image().Resolve("sum");
        Assert.Equal(
            [$"0x{sum:X}  xor eax,eax", $"0x{sum + 2:X}  xor ecx,ecx", $"0x{sum + 4:X}  cmp rcx,rsi"],
            lines[(outcome + 1)..(outcome + 4)]);
        Assert.Equal(outcome + 7, lines.Length);
        Assert.StartsWith("(trace limit 5 reached", lines[^1], StringComparison.Ordinal);
    }

    [KvmFact]
    public void Trace_instructions_in_json_is_an_array_of_rip_bytes_and_text_the_same_on_both_kernels()
    {
        string[] Trace(params string[] more)
        {
            var run = CliRun.Of(["run", "sum", "--json", "--trace-instructions", "1000", .. more]);
            Assert.Equal(0, run.ExitCode);
            using var doc = JsonDocument.Parse(run.Stdout);
            var root = doc.RootElement;
            Assert.Equal(5050UL, root.GetProperty("result").GetUInt64());
            Assert.False(root.GetProperty("trace_truncated").GetBoolean());
            return [.. root.GetProperty("trace").EnumerateArray().Select(i =>
                $"{i.GetProperty("rip").GetUInt64():X} {i.GetProperty("bytes").GetString()} {i.GetProperty("text").GetString()}")];
        }
        string[] real = Trace();
        // Two XORs, six instructions per input byte, the last CMP/JAE and RET, the trampoline's four.
        Assert.Equal(2 + 100 * 6 + 3 + 4, real.Length);
        Assert.Equal($"{Sum.Image().Resolve("sum"):X} 31c0 xor eax,eax", real[0]);
        Assert.EndsWith(" ee out dx,al", real[^1], StringComparison.Ordinal);
        Assert.Equal(real, Trace("--kernel", "emulated"));
    }

    [Fact]
    public void Trace_instructions_without_the_option_adds_nothing_and_a_bad_limit_is_a_usage_error()
    {
        var plain = CliRun.Of("run", "sum", "--json", "--kernel", "emulated");
        using (var doc = JsonDocument.Parse(plain.Stdout))
        {
            Assert.False(doc.RootElement.TryGetProperty("trace", out _));
        }
        var bad = CliRun.Of("run", "sum", "--kernel", "emulated", "--trace-instructions", "-1");
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("TraceInstructions", bad.Stderr, StringComparison.Ordinal);
    }
}
