// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Packaging.Tests;

/// <summary>
/// A user's project (Consumer/) restored from the packed feed: it builds with warnings as errors against the
/// packages alone and runs the typed API, the emulated kernel, the sandbox and the conformance suite — on /dev/kvm too when it opens.
/// </summary>
[Collection(PackedFeedCollection.Name)]
public sealed class ConsumerProjectTests(PackedFeed feed)
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(10);

    [Fact]
    public void A_project_that_references_the_packages_builds_and_runs_the_sdk_the_emulator_the_sandbox_and_the_suite()
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        string project = Path.Combine(feed.Root, "consumer");
        Directory.CreateDirectory(project);
        foreach (string file in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Consumer")))
            File.Copy(file, Path.Combine(project, Path.GetFileName(file)));
        // Stop MSBuild's upward search for Directory.Build.props/Directory.Packages.props at the project folder.
        File.WriteAllText(Path.Combine(project, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(project, "Directory.Packages.props"), "<Project />");
        File.Copy(feed.NuGetConfig, Path.Combine(project, "nuget.config"));

        var run = DotnetCli.Dotnet(project, feed.Environment, BuildTimeout,
            "run", "-c", "Release", "--disable-build-servers", $"-p:KvmSharpVersion={feed.Version}");
        Assert.True(run.ExitCode == 0, run.ToString());

        string[] lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Contains("emulated flags: Mmap, InitShared", lines);
        Assert.Contains("read back: 0x12345678", lines);
        Assert.Contains("private page: GuestMemoryFaultException EFAULT", lines);
        Assert.Contains("size 4095: EINVAL from KVM_CREATE_GUEST_MEMFD", lines);
        Assert.Contains("emulated micro-vm: Exit status 0 value 5050 memory GuestMemfd", lines);
        var conformance = lines.Single(l => l.StartsWith("conformance on the emulated kernel:", StringComparison.Ordinal));
        var counts = System.Text.RegularExpressions.Regex.Match(conformance, @"(\d+) passed, (\d+) failed, (\d+) skipped$");
        Assert.True(counts.Success, conformance);
        Assert.True(int.Parse(counts.Groups[1].Value, CultureInfo.InvariantCulture) >= 15, conformance);   // the suite ran
        Assert.Equal("0", counts.Groups[2].Value);
        if (KvmHost.IsAvailable)
        {
            Assert.Contains("real api version: 12", lines);
            Assert.Contains("real micro-vm: Exit status 0: Hello from a KvmSharp micro-VM!", lines);
        }
        else
        {
            Assert.DoesNotContain(lines, l => l.StartsWith("real", StringComparison.Ordinal));
        }
    }
}
