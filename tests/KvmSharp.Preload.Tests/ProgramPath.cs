// SPDX-License-Identifier: MIT

namespace KvmSharp.Preload.Tests;

/// <summary>Where a program the tests run (QEMU …) is installed: the first match on PATH, or null.</summary>
internal static class ProgramPath
{
    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
}
