// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A freestanding C guest built with gcc -O2 -march=x86-64-v2 (the RHEL 9 baseline: SSE3, SSSE3, SSE4.1, SSE4.2,
/// POPCNT) or -march=x86-64-v3 (v2 plus AVX, AVX2, BMI1, BMI2, FMA, F16C, LZCNT, MOVBE: 256-bit vector loops, VEX
/// three-operand forms, FMA contraction, bit manipulation) runs on the emulated kernel and computes what the same
/// source built at the same level computes on this host (CGuest/isa_guest.c, built once as a guest and once with
/// -DISA_HOST as a host program). The micro-VM boots without CR4.OSXSAVE, so a v3 guest sets it and XCR0 =
/// x87|SSE|AVX itself (XSETBV) before its first AVX instruction. Emulated kernel only: kvm_pvm hands guest SIMD and VEX
/// instructions to KVM's instruction emulator, which stops (ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator).
/// </summary>
public sealed class X86IsaLevelGuestTests
{
    private static readonly ulong[] Seeds = [1, 0x1234, 0xdead_beef_cafe_f00d, 42];

    private static readonly Dictionary<string, GuestAndHostBuild> ByLevel = new()
    {
        ["x86-64-v2"] = Build("x86-64-v2"),
        ["x86-64-v3"] = Build("x86-64-v3"),
    };

    private static GuestAndHostBuild Build(string march) => new("isa_guest.c", [$"-march={march}"], ["-O2", $"-march={march}"], Seeds);

    [SkippableTheory]
    [InlineData("x86-64-v2")]
    [InlineData("x86-64-v3")]
    public void A_gcc_guest_of_the_isa_level_computes_the_host_checksums_on_the_emulated_kernel(string level)
    {
        var (elf, expected) = ByLevel[level].BuildOrSkip(level);

        using var k = TestKernel.Open(TestKernel.EmulatedName);
        using var vm = MicroVm.Create(GuestImage.Load(elf), k.Options(null));
        Assert.Equal(GuestOutcome.Exit, vm.Run().Outcome);
        for (int s = 0; s < Seeds.Length; s++)
        {
            if (GuestRun.Value(vm, "isa_checksum", Seeds[s]) == expected[s][0]) continue;
            // Which of the ten functions (part_of in isa_guest.c) computes something else?
            var parts = Enumerable.Range(0, 10).Where(p => GuestRun.Value(vm, "isa_part", Seeds[s], (ulong)p) != expected[s][p + 1]);
            Assert.Fail($"{level}, seed {Seeds[s]}: the guest's checksum differs from the host's 0x{expected[s][0]:X16}; parts that differ: {string.Join(", ", parts)}");
        }
    }
}
