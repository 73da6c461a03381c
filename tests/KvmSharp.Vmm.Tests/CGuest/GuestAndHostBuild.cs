// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;

namespace KvmSharp.Vmm.Tests.CGuest;

/// <summary>
/// One C source of CGuest/ built twice, each once per test run: as a micro-VM guest (GuestSdk.CompilerArguments with
/// the SSE registers allowed, plus <paramref name="guestFlags"/>) and as a host program (-DISA_HOST plus
/// <paramref name="hostFlags"/>) that prints, for each seed given on its command line, one line of numbers: the
/// checksum, then its parts. The host's lines are what the guest must compute.
/// </summary>
internal sealed class GuestAndHostBuild(string sourceName, string[] guestFlags, string[] hostFlags, ulong[] seeds)
{
    private static string SourcePath(string name) => Path.Combine(AppContext.BaseDirectory, "CGuest", name);

    /// <summary>The guest ELF.</summary>
    public Lazy<GccBuild.Result> Guest { get; } = new(() => GccBuild.InTempDirectory(dir => GccBuild.Compile(dir,
        [.. GuestSdk.CompilerArguments.Where(a => a != "-mgeneral-regs-only"), .. guestFlags, "-Wall", "-Wextra", "-Werror",
            "-o", "out", SourcePath(sourceName)])));

    /// <summary>What the host-built program printed.</summary>
    public Lazy<GccBuild.Result> Host { get; } = new(() => GccBuild.InTempDirectory(dir =>
    {
        GccBuild.Compile(dir, ["-std=gnu11", .. hostFlags, "-Wall", "-Wextra", "-Werror", "-DISA_HOST", "-o", "host", SourcePath(sourceName)]);
        File.WriteAllText(Path.Combine(dir, "out"), GccBuild.Run(Path.Combine(dir, "host"), seeds.Select(s => s.ToString(CultureInfo.InvariantCulture)), dir));
    }));

    /// <summary>
    /// The guest ELF and the host's numbers, one row per seed ([0] the checksum, [1..] the parts); skips the calling
    /// test, naming <paramref name="what"/> (and <paramref name="hostNote"/> for the host build), when either build
    /// cannot be made.
    /// </summary>
    public (byte[] Guest, ulong[][] Expected) BuildOrSkip(string what, string hostNote = "")
    {
        var guest = Guest.Value;
        Skip.If(guest.Output is null, $"the {what} guest cannot be built: {guest.Unavailable}");
        var host = Host.Value;
        Skip.If(host.Output is null, $"the host build of the same source cannot be made{hostNote}: {host.Unavailable}");
        ulong[][] rows = [.. Encoding.ASCII.GetString(host.Output!).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ').Select(v => ulong.Parse(v, CultureInfo.InvariantCulture)).ToArray())];
        Assert.Equal(seeds.Length, rows.Length);
        return (guest.Output!, rows);
    }
}
