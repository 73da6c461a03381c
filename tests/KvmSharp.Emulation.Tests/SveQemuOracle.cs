// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The qemu oracle of the focused SVE tests: a hosted C program built static with aarch64-linux-gnu-gcc
/// (-march=armv8.2-a+sve) and run by qemu-aarch64 at 256-bit vectors; its output lines are what the emulator must
/// give. Skips the calling test, naming the package, when the compiler or qemu is missing.
/// </summary>
internal static class SveQemuOracle
{
    /// <summary>The non-empty lines <paramref name="source"/> prints, asserting there are <paramref name="expectedLines"/>.</summary>
    public static string[] Lines(string source, int expectedLines)
    {
        string dir = Directory.CreateTempSubdirectory("kvmsharp-sve-oracle").FullName;
        try
        {
            string c = Path.Combine(dir, "oracle.c"), binary = Path.Combine(dir, "oracle");
            File.WriteAllText(c, source);
            var (gcc, gccOutput) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-gcc", ["-O2", "-march=armv8.2-a+sve", "-static", "-o", binary, c]);
            Skip.If(gcc == -1, $"aarch64-linux-gnu-gcc (package gcc-aarch64-linux-gnu) is not available: {gccOutput}");
            Assert.True(gcc == 0, gccOutput);
            var (code, output) = Arm64SveCorpusTests.Exec("qemu-aarch64", ["-cpu", "max,sve256=on", binary]);
            Skip.If(code == -1, $"qemu-aarch64 (package qemu-user) is not available: {output}");
            Assert.True(code == 0, output);
            string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(expectedLines, lines.Length);
            return lines;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
