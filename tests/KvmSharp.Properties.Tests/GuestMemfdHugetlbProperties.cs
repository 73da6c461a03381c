// SPDX-License-Identifier: MIT
using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Abi;
using KvmSharp.Emulation;

namespace KvmSharp.Properties.Tests;

/// <summary>
/// guest_memfd HugeTLB (unmerged; the 6.18-based branch's kvm_gmem_restructure and __maybe_split_fresh_folio):
/// random conversions, allocations and punches on a 2 MiB HugeTLB file keep "an allocated huge page is one whole
/// folio iff its 512 subpages are all private", the per-4K attributes equal a plain model, and the pool's allocated
/// count equals the allocated huge pages.
/// </summary>
public class GuestMemfdHugetlbProperties
{
    private const int Runs = 100;
    private const int HugePages = 4;
    private static readonly ulong Ps = (ulong)Environment.SystemPageSize;
    private static readonly int PerHuge = (int)((2UL << 20) / Ps);

    /// <summary>0 = make shared, 1 = make private, 2 = allocate a huge page, 3 = punch a huge page.</summary>
    public sealed record HugeOp(int Kind, int FirstPage, int Pages)
    {
        public override string ToString() => Kind switch
        {
            0 => $"shared({FirstPage},{Pages})",
            1 => $"private({FirstPage},{Pages})",
            2 => $"alloc(huge {FirstPage / PerHuge})",
            _ => $"punch(huge {FirstPage / PerHuge})",
        };
    }

    private static readonly Gen<HugeOp> Op =
        from kind in Gen.Frequency((4, Gen.Constant(0)), (4, Gen.Constant(1)), (2, Gen.Constant(2)), (1, Gen.Constant(3)))
        from huge in Gen.Choose(0, HugePages - 1)
        from within in Gen.Frequency((3, Gen.Choose(0, PerHuge - 1)), (1, Gen.Elements(0, PerHuge - 1)))
        from pages in Gen.Frequency((4, Gen.Choose(1, 4)), (1, Gen.Choose(1, 2 * PerHuge)), (1, Gen.Constant(PerHuge)))
        select new HugeOp(kind, huge * PerHuge + within, Math.Min(pages, HugePages * PerHuge - (huge * PerHuge + within)));

    private static readonly Arbitrary<HugeOp[]> OpsArb = Arb.From(Gen.ArrayOf(Op).Select(a => a.Take(30).ToArray()));

    [Fact]
    public void A_huge_page_is_whole_iff_all_its_subpages_are_private() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Runs), Prop.ForAll(OpsArb, ops =>
        {
            var config = EmulatorConfig.X86_64(inPlaceConversion: true).WithGuestMemfdHugetlb(GuestMemfdHugetlbEncoding.RfcV2FlagBits, pages2M: HugePages);
            using var k = new EmulatedKernel(config);
            using var kvm = Kvm.Open(k);
            using var vm = kvm.CreateVm(VmType.SwProtected);
            using var gmem = vm.CreateHugetlbGuestMemfd((ulong)HugePages << 21, GuestMemfdFlags.Mmap, GuestMemfdHugePageSize.Size2M);
            var shared = new bool[HugePages * PerHuge];
            var allocated = new bool[HugePages];
            foreach (var op in ops)
            {
                int h = op.FirstPage / PerHuge;
                switch (op.Kind)
                {
                    case 0 or 1:
                        if (op.Kind == 0) gmem.MakeShared((ulong)op.FirstPage * Ps, (ulong)op.Pages * Ps);
                        else gmem.MakePrivate((ulong)op.FirstPage * Ps, (ulong)op.Pages * Ps);
                        for (int i = op.FirstPage; i < op.FirstPage + op.Pages; i++) shared[i] = op.Kind == 0;
                        break;
                    case 2:
                        gmem.Allocate((long)h << 21, 2L << 20);
                        allocated[h] = true;
                        break;
                    default:
                        gmem.PunchHole((long)h << 21, 2L << 20);
                        allocated[h] = false;
                        break;
                }
                for (int p = 0; p < HugePages; p++)
                {
                    Assert.Equal(0, GuestMemfdHugetlbInspection.HugePage(k, gmem.Handle, (ulong)p << 21, out var page));
                    bool allPrivate = !shared.Skip(p * PerHuge).Take(PerHuge).Any(s => s);
                    Assert.True(page.Allocated == allocated[p], $"after {op}: huge page {p} allocated={page.Allocated}, model {allocated[p]}");
                    Assert.True(!page.Allocated || page.Whole == allPrivate, $"after {op}: huge page {p} whole={page.Whole}, all private={allPrivate}");
                }
                Assert.Equal(allocated.Count(a => a), GuestMemfdHugetlbInspection.Pool(k, 21)!.Allocated);
                var broken = EmulatorInvariants.Check(k);
                Assert.True(broken.Count == 0, string.Join("; ", broken));
            }
            // The attributes stay per 4 KiB.
            for (int i = 0; i < shared.Length; i += 37) Assert.Equal(shared[i], gmem.IsShared((ulong)i * Ps, Ps));
            return true;
        }));
}
