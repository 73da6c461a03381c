// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A freestanding C guest built with gcc -O2 -march=x86-64-v2 (the RHEL 9 baseline: SSE3, SSSE3, SSE4.1, SSE4.2,
/// POPCNT, CX16, LAHF/SAHF) runs on the emulated kernel and computes what the same source computes on this host
/// (CGuest/v2_guest.c, built once as a guest and once with -DV2_HOST as a host program). Emulated kernel only: kvm_pvm
/// hands guest SSE arithmetic to KVM's instruction emulator, which stops (ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator).
/// </summary>
public sealed class X86V2GuestTests
{
    private static readonly ulong[] Seeds = [1, 0x1234, 0xdead_beef_cafe_f00d, 42];

    private static readonly Lazy<GccBuild.Result> Guest = new(() => GccBuild.InTempDirectory(dir => GccBuild.Compile(dir,
        [.. GuestSdk.CompilerArguments.Where(a => a != "-mgeneral-regs-only"), "-march=x86-64-v2", "-Wall", "-Wextra", "-Werror",
            "-o", "out", Source])));

    /// <summary>The host's checksums, one line per seed, as the host-built program printed them.</summary>
    private static readonly Lazy<GccBuild.Result> Host = new(() => GccBuild.InTempDirectory(dir =>
    {
        GccBuild.Compile(dir, ["-std=gnu11", "-O2", "-march=x86-64-v2", "-Wall", "-Wextra", "-Werror", "-DV2_HOST", "-o", "host", Source]);
        File.WriteAllText(Path.Combine(dir, "out"), GccBuild.Run(Path.Combine(dir, "host"), Seeds.Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture)), dir));
    }));

    private static string Source => Path.Combine(AppContext.BaseDirectory, "CGuest", "v2_guest.c");

    [SkippableFact]
    public void A_gcc_x86_64_v2_guest_computes_the_host_checksums_on_the_emulated_kernel()
    {
        var guest = Guest.Value;
        Skip.If(guest.Output is null, $"the x86-64-v2 guest cannot be built: {guest.Unavailable}");
        var host = Host.Value;
        Skip.If(host.Output is null, $"the host build of the same source cannot be made: {host.Unavailable}");
        ulong[] expected = [.. System.Text.Encoding.ASCII.GetString(host.Output!).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => ulong.Parse(l, System.Globalization.CultureInfo.InvariantCulture))];
        Assert.Equal(Seeds.Length, expected.Length);

        using var k = TestKernel.Open(TestKernel.EmulatedName);
        using var vm = MicroVm.Create(GuestImage.Load(guest.Output!), k.Options(null));
        Assert.Equal(GuestOutcome.Exit, vm.Run().Outcome);
        for (int s = 0; s < Seeds.Length; s++)
            Assert.True(GuestRun.Value(vm, "v2_checksum", Seeds[s]) == expected[s], $"seed {Seeds[s]}: the guest's checksum differs from the host's 0x{expected[s]:X16}");
    }
}
