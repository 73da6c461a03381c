// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace KvmSharp.Packaging.Tests;

/// <summary>The kvmsharp .NET tool installed from the packed feed into a tool folder, then run as a user runs it.</summary>
[Collection(PackedFeedCollection.Name)]
public sealed class ToolPackageTests(PackedFeed feed)
{
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(2);

    private readonly Lazy<string> _toolPath = new(() => Install(feed));

    /// <summary>Installs the tool into a folder of its own; returns the folder.</summary>
    private static string Install(PackedFeed feed)
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        string tools = Path.Combine(feed.Root, $"tools-{Guid.NewGuid():N}");
        var install = DotnetCli.Dotnet(feed.Root, feed.Environment, InstallTimeout,
            "tool", "install", "KvmSharp.Cli", "--tool-path", tools, "--version", feed.Version, "--configfile", feed.NuGetConfig);
        Assert.True(install.ExitCode == 0, install.ToString());
        return tools;
    }

    private ProcessRun Kvmsharp(params string[] args) =>
        DotnetCli.Run(Path.Combine(_toolPath.Value, "kvmsharp"), feed.Root, feed.Environment, RunTimeout, args);

    [Fact]
    public void Installing_on_this_machine_picks_its_precompiled_runtime_package()
    {
        string rid = System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier;
        Assert.True(rid is "linux-x64" or "linux-arm64", $"this test expects a Linux x64/arm64 machine, not {rid}");
        string installed = Assert.Single(Directory.GetFiles(_toolPath.Value, "KvmSharp.Cli.dll", SearchOption.AllDirectories));
        Assert.Contains($"{Path.DirectorySeparatorChar}{rid}{Path.DirectorySeparatorChar}", installed, StringComparison.Ordinal);
        Assert.True(PackagedAssembly.IsReadyToRun(installed), $"{installed} is not ReadyToRun");
    }

    [Fact]
    public void The_installed_command_reports_the_packed_version()
    {
        var run = Kvmsharp("--version");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.StartsWith(feed.Version, run.Stdout.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_installed_command_reads_the_emulated_kernels_capabilities_as_json()
    {
        var run = Kvmsharp("caps", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", "sw-protected", "--in-place-conversion", "--json");
        Assert.True(run.ExitCode == 0, run.ToString());
        using var json = JsonDocument.Parse(run.Stdout);
        var flags = json.RootElement.GetProperty("capabilities").EnumerateArray()
            .Single(c => c.GetProperty("name").GetString() == "KVM_CAP_GUEST_MEMFD_FLAGS");
        Assert.Equal(3, flags.GetProperty("vm").GetInt64());
    }

    [SkippableFact]
    public void The_installed_command_answers_a_c_programs_dev_kvm_with_the_emulated_kernel()
    {
        // The preload library ships in this machine's runtime package: a C program that asks for guest_memfd gets it
        // from the emulated 6.18 kernel, whatever this host's kernel has.
        string source = Path.Combine(feed.Root, $"gmem-{Guid.NewGuid():N}.c");
        File.WriteAllText(source, """
            #include <fcntl.h>
            #include <stdio.h>
            #include <sys/ioctl.h>
            int main(void)
            {
                int kvm = open("/dev/kvm", O_RDWR);
                /* KVM_CHECK_EXTENSION = _IO(0xAE, 0x03); KVM_CAP_GUEST_MEMFD = 234, KVM_CAP_GUEST_MEMFD_FLAGS = 244 */
                printf("guest_memfd %d flags %d\n", ioctl(kvm, 0xAE03, 234), ioctl(kvm, 0xAE03, 244));
                return 0;
            }
            """);
        string program = Path.ChangeExtension(source, null);
        ProcessRun gcc;
        try
        {
            gcc = DotnetCli.Run("gcc", feed.Root, feed.Environment, RunTimeout, "-O2", "-o", program, source);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new SkipException($"gcc cannot run here ({e.Message}): the C program is built with it");
        }
        Assert.True(gcc.ExitCode == 0, gcc.ToString());
        var run = Kvmsharp("exec", "--kernel", "emulated", "--arch", "x86_64", "--", program);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("guest_memfd 1 flags 3", run.Stdout.Trim());
    }

    [KvmFact]
    public void The_installed_command_runs_the_hello_guest_on_this_machines_kvm()
    {
        var run = Kvmsharp("run", "hello");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("Hello from a KvmSharp micro-VM!", run.Stdout, StringComparison.Ordinal);
    }
}
