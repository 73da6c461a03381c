// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// <c>-- ring [rounds]</c>: <see cref="DirtyRingBenchmarks"/>' scenarios timed interleaved, C and SDK back to back in
/// a rotating order every round (<see cref="DirtyLogProbe.Measure"/>): the empty poll (harvest nothing + reset) and
/// rounds of a guest writing 8 and 128 pages, then harvest + reset.
/// </summary>
internal static class DirtyRingProbe
{
    public static int Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100;
        foreach (int pages in new[] { 0, 8, 128 })
        {
            int guestPages = Math.Max(pages, 1);
            using var sdk = DirtyRingVm.Create(guestPages);
            CReferenceDirtyLog.OpenRing(DirtyLogVm.MemorySize, DirtyRingVm.RingBytes, DirtyLogVm.Code(guestPages), DirtyLogVm.CodeGpa);
            try
            {
                if (pages == 0)
                {
                    DirtyLogProbe.Measure("(c) empty ring poll: harvest + KVM_RESET_DIRTY_RINGS", rounds, batch: 100,
                        ("C", () => CReferenceDirtyLog.Check(CReferenceDirtyLog.RingPoll(), "ring poll")),
                        ("SDK Harvest(span) + Reset", () => sdk.Poll()),
                        ("SDK Harvest(span) only", () => sdk.Vcpu.DirtyRing.Harvest(sdk.Entries)),
                        ("SDK ResetDirtyRings() only", () => sdk.Vm.ResetDirtyRings()),
                        ("C harvest only", () => CReferenceDirtyLog.RingHarvest()));
                }
                else
                {
                    DirtyLogProbe.Measure($"(c) guest writes {pages} pages, then harvest + reset", rounds, batch: pages <= 8 ? 20 : 3,
                        ("C", () => CReferenceDirtyLog.Check(CReferenceDirtyLog.RingRound(), "ring round")),
                        ("SDK run + Harvest + Reset", () => { sdk.Run(); sdk.Poll(); }));
                }
            }
            finally
            {
                CReferenceDirtyLog.Close();
            }
        }
        return 0;
    }
}
