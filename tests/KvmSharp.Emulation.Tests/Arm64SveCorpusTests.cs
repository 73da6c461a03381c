// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Emulation.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The SVE corpus (sve_guest.c: sums, saxpy/daxpy, byte copy and compare, reductions, conditional stores, selects,
/// widening, gathers, conversions, structure-of-arrays loops (LD2–LD4 / ST2–ST4), scatter stores, and hand-written
/// first-fault / non-fault loops (LDFF1, LDNF1, RDFFR(S), SETFFR, WRFFR) whose results do not depend on how many
/// elements each load delivered — the raw guest runs with the MMU off, where MemNF[] never reads Device memory) built by aarch64-linux-gnu-gcc -O3 -march=armv8.2-a+sve, run (1) natively under
/// qemu-user (qemu-aarch64 -cpu max,sveN=on, the oracle) and (2) as a raw guest on an SVE vCPU of the emulated arm64
/// kernel (Neoverse-V1-like: 128- and 256-bit vectors) with ZCR_EL1.LEN giving the same vector length; both print
/// the digest of every loop's results, which must agree. Skips, with the reason, without the cross compiler (package
/// gcc-aarch64-linux-gnu) or qemu-aarch64 (package qemu-user).
/// </summary>
public class Arm64SveCorpusTests
{
    /// <summary>Where the guest is linked (-Ttext): <see cref="SveElfGuest"/>'s layout.</summary>
    private const ulong TextBase = SveElfGuest.TextBase;

    private static readonly string[] Flags =
        ["-O3", "-march=armv8.2-a+sve", "-mstrict-align", "-fno-tree-loop-distribute-patterns", "-fno-math-errno", "-Wall", "-Wextra", "-Werror"];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Built = new(Build);

    // Copied beside the test assembly (the csproj): a CI build maps source paths to /_/ (deterministic), so the
    // caller's file path does not lead to it.
    private static string Source() => Path.Combine(AppContext.BaseDirectory, "sve_guest.c");

    private static (byte[]?, string?, string?) Build()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"kvmsharp-sve-corpus-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string guest = Path.Combine(dir, "guest.elf"), hosted = Path.Combine(dir, "hosted");
        // -mstrict-align: the raw guest runs with the MMU off, where every access is Device memory (unaligned ones fault).
        string? why = Gcc([.. Flags, "-ffreestanding", "-nostdlib", "-static", "-fno-pic", "-no-pie", $"-Wl,-Ttext=0x{TextBase:X}",
                           "-Wl,-e,sve_run", "-Wl,--build-id=none", "-o", guest, Source()])
                      ?? Gcc([.. Flags, "-DHOSTED", "-static", "-o", hosted, Source()]);
        return why is null ? (File.ReadAllBytes(guest), hosted, null) : (null, null, why);
    }

    private static string? Gcc(string[] args)
    {
        var (code, output) = Exec("aarch64-linux-gnu-gcc", args);
        // Only a missing compiler skips; a compile error in sve_guest.c fails the test.
        if (code == -1) return $"aarch64-linux-gnu-gcc (package gcc-aarch64-linux-gnu) is not available: {output}";
        Assert.True(code == 0, $"aarch64-linux-gnu-gcc failed ({code}): {output}");
        return null;
    }

    internal static (int Code, string Output) Exec(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, stdout + stderr);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }

    /// <summary>qemu-aarch64 -cpu max,sve{bits}=on: the digest the hosted build prints, or null (with the reason) without qemu.</summary>
    private static ulong Qemu(string hosted, int bits)
    {
        var (code, output) = Exec("qemu-aarch64", ["-cpu", $"max,sve{bits}=on", hosted]);
        Skip.If(code == -1, $"qemu-aarch64 (package qemu-user) is not available: {output}");
        Assert.True(code == 0, $"qemu-aarch64 failed ({code}): {output}");
        return Convert.ToUInt64(output.Trim(), 16);
    }

    /// <summary>
    /// sve_run on an SVE vCPU of the Neoverse V1-like host (<see cref="SveElfGuest.Run"/>) at ZCR_EL1.LEN =
    /// <paramref name="len"/> and, when given, the KVM_REG_ARM64_SVE_VLS maximum <paramref name="maxVq"/>. Returns X0.
    /// </summary>
    internal static ulong RunEmulated(byte[] elf, ulong len, int? maxVq = null) =>
        SveElfGuest.Run(elf, Arm64CpuModel.NeoverseV1, len, (x0, _) => x0, maxVq);

    [SkippableTheory]
    [InlineData(128, 0UL, null)]
    [InlineData(256, 1UL, null)]
    [InlineData(256, 15UL, null)]   // ZCR_EL1.LEN beyond the maximum: the largest implemented length (256)
    [InlineData(128, 1UL, 1)]       // KVM_REG_ARM64_SVE_VLS caps the VM at 128 bits whatever ZCR_EL1 asks
    public void Compiled_sve_loops_give_the_digest_qemu_gives_at_the_same_vector_length(int bits, ulong len, int? maxVq)
    {
        var (guest, hosted, why) = Built.Value;
        Skip.If(guest is null, why);
        ulong expected = Qemu(hosted!, bits);
        ulong actual = RunEmulated(guest!, len, maxVq);
        Assert.True(expected == actual, $"VL {bits}: qemu 0x{expected:X16}, emulator 0x{actual:X16}");
    }
}
