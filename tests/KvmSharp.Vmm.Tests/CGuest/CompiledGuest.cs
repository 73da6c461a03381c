// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.CGuest;

/// <summary>
/// One C source of CGuest/ built at most once per compiler ("gcc" and "clang" for x86-64, "arm64" for the cross gcc),
/// for the tests that run the same guest on both kernels with both compilers (<see cref="KernelsAndCompilers"/>).
/// </summary>
internal sealed class CompiledGuest(string fileName)
{
    private readonly Dictionary<string, Lazy<GccBuild.Result>> _built = new(StringComparer.Ordinal)
    {
        ["gcc"] = new(() => GccBuild.Guest(fileName, "gcc")),
        ["clang"] = new(() => GccBuild.Guest(fileName, "clang")),
        ["arm64"] = new(() => GccBuild.Arm64Guest(fileName)),
    };

    /// <summary>Both kernels × both x86-64 compilers the header supports (clang skips, with the reason, where it is missing).</summary>
    public static TheoryData<string, string> KernelsAndCompilers => new()
    {
        { TestKernel.RealName, "gcc" },
        { TestKernel.EmulatedName, "gcc" },
        { TestKernel.RealName, "clang" },
        { TestKernel.EmulatedName, "clang" },
    };

    /// <summary>The image <paramref name="compiler"/> built; skips the test, with the reason, when it could not.</summary>
    public GuestImage Image(string compiler)
    {
        var built = _built[compiler].Value;
        Skip.If(built.Output is null, $"{fileName} built by {compiler} is not available: {built.Unavailable}");
        return GuestImage.Load(built.Output!);
    }
}
