// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp run</c> of a C guest built with -mbranch-protection=standard (BTI landing pads and signed return
/// addresses): on the emulated Neoverse V2 its pages are guarded and its return addresses signed, which the JSON says,
/// and an indirect jump off a landing pad ends as a branch target exception; on N1 (neither feature) the same jump runs.
/// </summary>
public sealed class RunArm64BranchProtectionTests : IDisposable
{
    private const string Source = """
        #include "kvmsharp_guest.h"

        void _start(void) {}

        /* BR X1 to a plain MOV: BTYPE 11 there needs BTI j or jc on a guarded page. */
        long jump(long a)
        {
            long r;
            __asm__ volatile("adr x1, 1f\n\tbr x1\n1:\tmov %0, %1" : "=r"(r) : "r"(a) : "x1");
            return r;
        }
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("kvmsharp-arm64-bti").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [SkippableFact]
    public void A_standard_branch_protection_guest_is_guarded_and_signed_on_neoverse_v2_and_neither_on_n1()
    {
        string elf = Arm64GuestCompiler.Build(Path.Combine(_root, "guest"), Source, "-mbranch-protection=standard");

        var v2 = CliRun.Of("run", elf, "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", "neoverse-v2", "--call", "jump:5", "--json");
        Assert.NotEqual(0, v2.ExitCode);
        using (var doc = JsonDocument.Parse(v2.Stdout))
        {
            var root = doc.RootElement;
            Assert.Equal("exception", root.GetProperty("outcome").GetString());
            Assert.Contains("branch target exception (EC 0x0D)", root.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.True(root.GetProperty("bti_guarded").GetBoolean());
            Assert.True(root.GetProperty("return_addresses_signed").GetBoolean());
        }

        var n1 = CliRun.Of("run", elf, "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", "neoverse-n1", "--call", "jump:5", "--json");
        Assert.True(n1.ExitCode == 0, n1.Stdout + n1.Stderr);
        using (var doc = JsonDocument.Parse(n1.Stdout))
        {
            var root = doc.RootElement;
            Assert.Equal(5UL, root.GetProperty("result").GetUInt64());
            Assert.False(root.GetProperty("bti_guarded").GetBoolean());
            Assert.False(root.GetProperty("return_addresses_signed").GetBoolean());
        }

        // An x86-64 run has no such fields.
        using var x86 = JsonDocument.Parse(CliRun.Of("run", "sum", "--kernel", "emulated", "--arch", "x86_64", "--json").Stdout);
        Assert.False(x86.RootElement.TryGetProperty("bti_guarded", out _));
    }
}
