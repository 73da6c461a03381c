// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A freestanding C guest of ordinary loops built with gcc -O3 -march=x86-64-v3 (CGuest/v3_loops_guest.c: table
/// lookups, conditional loads and stores, complex multiplies, saxpy, dot products, widening sums, searches, converts)
/// runs on the emulated kernel and computes what the same source built with the same flags computes on this host
/// (-DISA_HOST). gcc's generic tuning emits VPMASKMOVD/Q, VFMADDSUB/VFMSUBADD and VPERMILPS/PD but no gathers;
/// -mtune=haswell also emits all eight AVX2 gathers (VGATHERDPS/DPD/QPS/QPD, VPGATHERDD/DQ/QD/QQ). Emulated kernel
/// only: kvm_pvm hands guest VEX instructions to KVM's instruction emulator, which stops
/// (ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator).
/// </summary>
public sealed class X86V3LoopsGuestTests
{
    private const int Parts = 7;
    private static readonly ulong[] Seeds = [1, 0x1234, 0xdead_beef_cafe_f00d, 42, 7];

    private static readonly Dictionary<string, GuestAndHostBuild> ByTuning = new()
    {
        ["generic"] = Build(["-O3", "-march=x86-64-v3"]),
        ["haswell"] = Build(["-O3", "-march=x86-64-v3", "-mtune=haswell"]),
    };

    private static GuestAndHostBuild Build(string[] flags) => new("v3_loops_guest.c", flags, flags, Seeds);

    [SkippableTheory]
    [InlineData("generic")]
    [InlineData("haswell")]
    public void A_gcc_O3_v3_guest_of_gathers_masked_moves_and_fmaddsub_computes_the_host_checksums(string tuning)
    {
        var (elf, expected) = ByTuning[tuning].BuildOrSkip(tuning, " (a host without AVX2/FMA has no oracle)");

        using var k = TestKernel.Open(TestKernel.EmulatedName);
        using var vm = MicroVm.Create(GuestImage.Load(elf), k.Options(null));
        Assert.Equal(GuestOutcome.Exit, vm.Run().Outcome);
        for (int s = 0; s < Seeds.Length; s++)
        {
            var whole = vm.Call("v3_checksum", Seeds[s]);
            if (whole.IsSuccess && whole.Value == expected[s][0]) continue;
            if (!whole.IsSuccess) vm.Reset();
            // Which function (part_of in v3_loops_guest.c) computes something else, or stops?
            var parts = new List<string>();
            for (int p = 0; p < Parts; p++)
            {
                var r = vm.Call("v3_part", Seeds[s], (ulong)p);
                if (!r.IsSuccess)
                {
                    parts.Add($"{p} ({r.Detail})");
                    vm.Reset();
                }
                else if (r.Value != expected[s][p + 1]) parts.Add($"{p} (0x{r.Value:X16}, the host's 0x{expected[s][p + 1]:X16})");
            }
            Assert.Fail($"{tuning}, seed {Seeds[s]}: the guest's checksum ({whole.Detail}) differs from the host's 0x{expected[s][0]:X16}; parts that differ: {string.Join(", ", parts)}");
        }
    }
}
