// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SVE REVB/REVH/REVW/RBIT and CLASTA/CLASTB (vectors) against qemu-aarch64 -cpu max (A64Interpreter.SvePermute.cs),
/// with <see cref="Arm64Sve2Tests"/>' program and helpers (four windows of data, P1 a data-made predicate). Until
/// session 27 the interpreter decoded REVB/REVH as CLASTA/CLASTB (vectors) and ran them wrongly without stopping —
/// gcc -O3 emits REVB for a byte-swap loop. Skips, with the reason, without the cross compiler or qemu-aarch64.
/// </summary>
public class Arm64SveReverseTests
{
    private static readonly string[] Cases =
    [
        "revb z0.h, p1/m, z1.h",
        "revb z0.s, p1/m, z1.s",
        "revb z0.d, p1/m, z1.d",
        "revh z0.s, p1/m, z1.s",
        "revh z0.d, p1/m, z1.d",
        "revw z0.d, p1/m, z1.d",
        "revb z0.d, p0/m, z1.d",
        "rbit z0.b, p1/m, z1.b",
        "rbit z0.h, p1/m, z1.h",
        "rbit z0.s, p1/m, z1.s",
        "rbit z0.d, p1/m, z1.d",
        "clasta z0.b, p1, z0.b, z1.b",
        "clastb z0.b, p1, z0.b, z1.b",
        "clasta z0.h, p1, z0.h, z1.h",
        "clastb z0.s, p1, z0.s, z1.s",
        "clasta z0.d, p1, z0.d, z1.d",
        "clastb z0.d, p0, z0.d, z1.d",
        "pfalse p3.b\nclastb z0.s, p3, z0.s, z1.s",
    ];

    private static readonly Lazy<(byte[]? Guest, string? Hosted, string? Why)> Built =
        new(() => Arm64Sve2Tests.Build(Arm64Sve2Tests.Program(Cases, [], 0), "sve-reverse", "-Wno-unused-function", "-Wno-unused-const-variable"));

    [SkippableTheory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void Reverse_and_conditional_extract_give_the_digests_qemu_gives(int bits) =>
        Arm64Sve2Tests.CompareWithQemu(Built.Value, [.. Cases.Select(c => c.Replace("\n", "; "))], bits);
}
