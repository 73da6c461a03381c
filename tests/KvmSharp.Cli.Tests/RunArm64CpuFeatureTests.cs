// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli.Tests;

/// <summary>
/// A C guest built for Armv8.4 (FEAT_SHA3's EOR3, FEAT_JSCVT's FJCVTZS) runs on the emulated arm64 CPU that offers
/// them (<c>--arm64-cpu neoverse-v1</c>) and takes an undefined-instruction exception on the one that does not
/// (<c>neoverse-n1</c>), as hardware would: the choice of CPU decides what a guest may use.
/// </summary>
public sealed class RunArm64CpuFeatureTests : IDisposable
{
    private const string Source = """
        #define KVMSHARP_GUEST_MEMFUNCS
        #include "kvmsharp_guest.h"

        void _start(void) {}

        /* FEAT_SHA3's EOR3: a ^ b ^ all ones. */
        kvms_u64 eor3(kvms_u64 a, kvms_u64 b)
        {
            kvms_u64 r;
            __asm__ volatile("fmov d0, %1\n\tfmov d1, %2\n\tmovi v2.16b, #0xff\n\teor3 v0.16b, v0.16b, v1.16b, v2.16b\n\tfmov %0, d0"
                             : "=r"(r) : "r"(a), "r"(b) : "v0", "v1", "v2");
            return r;
        }

        /* FEAT_JSCVT's FJCVTZS: JavaScript's ToInt32 of the double with these bits. */
        kvms_u64 jscvt(kvms_u64 bits)
        {
            kvms_u64 r;
            __asm__ volatile("fmov d0, %1\n\tfjcvtzs %w0, d0" : "=r"(r) : "r"(bits) : "v0", "cc");
            return r;
        }
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("kvmsharp-arm64-cpu").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [SkippableFact]
    public void Armv8_4_instructions_run_on_neoverse_v1_and_are_undefined_on_neoverse_n1()
    {
        string elf = Arm64GuestCompiler.Build(Path.Combine(_root, "guest"), Source, "-march=armv8.4-a+sha3");
        // 4294967298.75 (0x41F00000002C0000): ToInt32 truncates to 4294967298 and wraps to 2.
        var v1 = CliRun.Of("run", elf, "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", "neoverse-v1",
            "--call", "eor3:3855,65280", "--call", "jscvt:0x41F00000002C0000");
        Assert.True(v1.ExitCode == 0, v1.Stdout + v1.Stderr);
        string[] lines = v1.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith($"eor3(3855, 65280): exit status 0, result {~(3855UL ^ 65280UL)} ", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("jscvt(4751297606878756864): exit status 0, result 2 ", lines[1], StringComparison.Ordinal);

        foreach (string call in new[] { "eor3:1,2", "jscvt:0" })
        {
            var n1 = CliRun.Of("run", elf, "--kernel", "emulated", "--arch", "arm64", "--arm64-cpu", "neoverse-n1", "--call", call);
            Assert.NotEqual(0, n1.ExitCode);
            Assert.Contains("exception: undefined instruction (EC 0x00)", n1.Stdout, StringComparison.Ordinal);
        }
    }
}
