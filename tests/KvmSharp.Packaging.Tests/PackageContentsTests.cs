// SPDX-License-Identifier: MIT
using System.IO.Compression;
using System.Xml.Linq;

namespace KvmSharp.Packaging.Tests;

/// <summary>What each package holds and depends on, read from the .nupkg files `dotnet pack` produced.</summary>
[Collection(PackedFeedCollection.Name)]
public sealed class PackageContentsTests(PackedFeed feed)
{
    /// <summary>Library packages and the packages each must depend on (ours at the same version, third-party by id).</summary>
    public static TheoryData<string, string[]> Libraries => new()
    {
        { "KvmSharp.Interop", [] },
        { "KvmSharp", ["KvmSharp.Interop"] },
        { "KvmSharp.Emulation", ["KvmSharp.Interop", "Iced"] },
        { "KvmSharp.Vmm", ["KvmSharp", "Iced"] },
        { "KvmSharp.Conformance", ["KvmSharp", "KvmSharp.Emulation", "KvmSharp.Vmm", "Iced", "xunit.assert"] },
    };

    [Fact]
    public void Pack_produces_exactly_the_five_libraries_and_the_tool_with_its_three_runtime_packages()
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        string[] packed = [.. Directory.GetFiles(feed.Feed, "*.nupkg").Select(Path.GetFileName).Order()!];
        string[] expected = [.. new[]
            {
                "KvmSharp", "KvmSharp.Interop", "KvmSharp.Emulation", "KvmSharp.Vmm", "KvmSharp.Conformance",
                "KvmSharp.Cli", "KvmSharp.Cli.linux-x64", "KvmSharp.Cli.linux-arm64", "KvmSharp.Cli.any",
            }.Select(id => $"{id}.{feed.Version}.nupkg").Order()];
        Assert.Equal(expected, packed);   // no test, benchmark or fuzzer package
    }

    [Theory]
    [MemberData(nameof(Libraries))]
    public void A_library_package_holds_its_assembly_its_docs_the_readme_and_its_dependencies(string id, string[] dependencies)
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        using var package = ZipFile.OpenRead(feed.PackagePath(id));
        string[] entries = [.. package.Entries.Select(e => e.FullName)];
        Assert.Contains($"lib/net10.0/{id}.dll", entries);
        Assert.Contains($"lib/net10.0/{id}.xml", entries);   // IntelliSense docs
        Assert.Contains("README.md", entries);
        Assert.DoesNotContain(entries, e => e.Contains("Tests", StringComparison.Ordinal) || e.Contains("Fuzzing", StringComparison.Ordinal));

        var nuspec = Nuspec(package, id);
        XNamespace ns = nuspec.Root!.Name.Namespace;
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        Assert.Equal(feed.Version, metadata.Element(ns + "version")!.Value);
        Assert.Equal("MIT", metadata.Element(ns + "license")!.Value);
        Assert.Equal("README.md", metadata.Element(ns + "readme")!.Value);
        Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")!.Value));

        var declared = metadata.Descendants(ns + "dependency").ToDictionary(d => d.Attribute("id")!.Value, d => d.Attribute("version")!.Value);
        Assert.Equal(dependencies.Order(), declared.Keys.Order());
        foreach (string ours in dependencies.Where(d => d.StartsWith("KvmSharp", StringComparison.Ordinal)))
            Assert.Equal(feed.Version, declared[ours]);
    }

    [Fact]
    public void The_sandbox_package_ships_the_guest_abi_a_guest_author_reads()
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        using var package = ZipFile.OpenRead(feed.PackagePath("KvmSharp.Vmm"));
        var abi = package.GetEntry("GUEST-ABI.md");
        Assert.NotNull(abi);
        using var reader = new StreamReader(abi.Open());
        Assert.Equal(File.ReadAllText(Path.Combine(PackedFeed.RepositoryRoot, "src", "KvmSharp.Vmm", "GUEST-ABI.md")), reader.ReadToEnd());
    }

    [Fact]
    public void The_tool_package_names_kvmsharp_and_a_runtime_package_per_platform()
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        using var package = ZipFile.OpenRead(feed.PackagePath("KvmSharp.Cli"));
        var settings = XDocument.Load(package.GetEntry("tools/any/any/DotnetToolSettings.xml")!.Open());
        Assert.Equal("kvmsharp", settings.Descendants("Command").Single().Attribute("Name")!.Value);
        var runtimes = settings.Descendants("RuntimeIdentifierPackage")
            .ToDictionary(p => p.Attribute("RuntimeIdentifier")!.Value, p => p.Attribute("Id")!.Value);
        Assert.Equal(new Dictionary<string, string>
        {
            ["linux-x64"] = "KvmSharp.Cli.linux-x64",
            ["linux-arm64"] = "KvmSharp.Cli.linux-arm64",
            ["any"] = "KvmSharp.Cli.any",
        }, runtimes);
        // A tool carries its dependencies inside; a nuspec dependency would make `dotnet tool install` refuse it.
        Assert.DoesNotContain(Nuspec(package, "KvmSharp.Cli").Descendants(), e => e.Name.LocalName == "dependency");
    }

    [Theory]
    [InlineData("linux-x64", true)]
    [InlineData("linux-arm64", true)]
    [InlineData("any", false)]
    public void Each_runtime_package_holds_everything_the_command_runs_precompiled_where_kvm_is(string rid, bool readyToRun)
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        string id = $"KvmSharp.Cli.{rid}";
        using var package = ZipFile.OpenRead(feed.PackagePath(id));
        string folder = $"tools/net10.0/{rid}/";
        string[] entries = [.. package.Entries.Select(e => e.FullName)];
        foreach (string assembly in new[] { "KvmSharp.Cli", "KvmSharp", "KvmSharp.Interop", "KvmSharp.Emulation", "KvmSharp.Vmm",
                     "KvmSharp.Conformance", "KvmSharp.Fuzzing", "Iced", "System.CommandLine", "Spectre.Console" })
            Assert.Contains($"{folder}{assembly}.dll", entries);
        var settings = XDocument.Load(package.GetEntry($"{folder}DotnetToolSettings.xml")!.Open());
        Assert.Equal("kvmsharp", settings.Descendants("Command").Single().Attribute("Name")!.Value);
        Assert.Equal(readyToRun, PackagedAssembly.IsReadyToRun(package.GetEntry($"{folder}KvmSharp.Cli.dll")!));
        Assert.Equal(readyToRun, PackagedAssembly.IsReadyToRun(package.GetEntry($"{folder}KvmSharp.Emulation.dll")!));
        // `kvmsharp exec`'s preload library is native code for the machine that packed: only in that machine's package.
        bool packedHere = rid == System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier;
        Assert.Equal(packedHere, entries.Contains($"{folder}libkvmsharp-preload.so"));
    }

    private static XDocument Nuspec(ZipArchive package, string id)
    {
        using var stream = package.GetEntry($"{id}.nuspec")!.Open();
        return XDocument.Load(stream);
    }
}
