// SPDX-License-Identifier: MIT
using System.Reflection;

namespace KvmSharp.Packaging.Tests;

/// <summary>
/// src/ packed once for all packaging tests (`dotnet pack KvmSharp.Packages.slnf`) into a private feed, under a version
/// no earlier run used, with a private NuGet packages folder — so nothing stale from a cache can stand in for what was
/// just packed, and nothing of this run is left in the user's caches. Deleted afterwards.
/// </summary>
public sealed class PackedFeed : IDisposable
{
    private static readonly TimeSpan PackTimeout = TimeSpan.FromMinutes(20);

    public PackedFeed()
    {
        Root = Directory.CreateTempSubdirectory("kvmsharp-packaging").FullName;
        Feed = Directory.CreateDirectory(Path.Combine(Root, "feed")).FullName;
        Version = $"0.1.0-packagingtest.{DateTime.UtcNow:yyyyMMddHHmmss}";
        Environment = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(Root, "nuget-packages") };
        NuGetConfig = Path.Combine(Root, "nuget.config");
        File.WriteAllText(NuGetConfig, NuGetConfigXml());

        Pack = DotnetCli.Dotnet(RepositoryRoot, new Dictionary<string, string>(), PackTimeout,
            "pack", Path.Combine(RepositoryRoot, "KvmSharp.Packages.slnf"), "-c", "Release", "-o", Feed,
            "--artifacts-path", Path.Combine(Root, "artifacts"), "--disable-build-servers", $"-p:VersionSuffix={Version["0.1.0-".Length..]}");
    }

    /// <summary>The repository this test assembly was built from (recorded at build time).</summary>
    public static string RepositoryRoot { get; } = typeof(PackedFeed).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepositoryRoot").Value!;

    public string Root { get; }

    /// <summary>The folder the packages were packed into (a NuGet source).</summary>
    public string Feed { get; }

    /// <summary>The version every package of this run carries.</summary>
    public string Version { get; }

    /// <summary>Sources: the feed, then the machine's package folders, then nuget.org for third-party packages.</summary>
    public string NuGetConfig { get; }

    /// <summary>Variables for every restore of this run (the private packages folder).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>The `dotnet pack` run; tests assert it succeeded before using the feed.</summary>
    public ProcessRun Pack { get; }

    public string PackagePath(string id) => Path.Combine(Feed, $"{id}.{Version}.nupkg");

    private string NuGetConfigXml()
    {
        var sources = new List<(string Key, string Value)> { ("packed", Feed) };
        string userPackages = System.Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        if (Directory.Exists(userPackages)) sources.Add(("user-packages", userPackages));
        if (Directory.Exists("/opt/nuget/packages")) sources.Add(("machine-packages", "/opt/nuget/packages"));
        sources.Add(("nuget.org", "https://api.nuget.org/v3/index.json"));
        string adds = string.Join("\n", sources.Select(s => $"""    <add key="{s.Key}" value="{s.Value}" />"""));
        return $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
            {adds}
              </packageSources>
            </configuration>
            """;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A tool's build server may still hold a file for a moment; the folder is under /tmp.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PackedFeedCollection : ICollectionFixture<PackedFeed>
{
    public const string Name = "packed feed";
}
