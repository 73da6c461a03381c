// SPDX-License-Identifier: MIT
using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Properties.Tests;

/// <summary>
/// The shrinkers really shrink: deliberately false properties run through FsCheck with the same arbitraries as the
/// real properties, and the counterexample FsCheck settles on must be the known minimal one. The last failing input
/// the property saw is the shrunk one (every later candidate passed), so it is captured there.
/// </summary>
public class ShrinkingTests
{
    private static readonly ulong Ps = (ulong)Environment.SystemPageSize;

    private static (T Shrunk, string Message) FirstFailureShrunk<T>(Arbitrary<T> arb, Func<T, bool> property)
    {
        T? last = default;
        bool failed = false;
        var ex = Assert.ThrowsAny<Exception>(() => Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(500),
            Prop.ForAll(arb, (T input) =>
            {
                bool ok = property(input);
                if (!ok)
                {
                    last = input;
                    failed = true;
                }
                return ok;
            })));
        Assert.True(failed);
        return (last!, ex.Message);
    }

    /// <summary>
    /// "No memslot create is ever refused with EEXIST" is false (kvm_set_memory_region refuses overlaps). The minimal
    /// counterexample: two creates of one page each at GPA page 0, with slot ids 0 and 1.
    /// </summary>
    [Fact]
    public void Overlapping_slots_shrink_to_two_one_page_creates_at_gpa_0()
    {
        var (ops, message) = FirstFailureShrunk(EmulatorProperties.SlotOpsArb, ops => !AnyCreateRefusedWithEexist(ops));

        Assert.Contains("Shrunk", message, StringComparison.Ordinal);
        Assert.Equal(2, ops.Count);
        Assert.All(ops, op => Assert.Equal(new EmulatorProperties.SlotOp(false, op.Id, 0, 1), op));
        Assert.Equal([0, 1], ops.Select(o => o.Id).Order());
    }

    /// <summary>The generic sequence shrinker alone: "no element above 10" shrinks to the single element 11.</summary>
    [Fact]
    public void Integer_lists_shrink_to_the_single_smallest_failing_element()
    {
        var arb = Arb.From(Gen.Choose(0, 1000).ListOf().Select(l => l.ToList()),
            l => Shrinking.Sequence(l, x => Shrinking.Toward(x, 0)));
        var (list, _) = FirstFailureShrunk(arb, l => l.All(x => x <= 10));
        Assert.Equal([11], list);
    }

    private static bool AnyCreateRefusedWithEexist(List<EmulatorProperties.SlotOp> ops)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        foreach (var op in ops)
        {
            var region = new kvm_userspace_memory_region2
            {
                slot = (uint)op.Id,
                guest_phys_addr = op.Page * Ps,
                memory_size = op.Delete ? 0 : op.Pages * Ps,
                userspace_addr = 0x7000_0000_0000UL,
            };
            try
            {
                vm.SetUserMemoryRegion2(region);
            }
            catch (KvmException ex) when (ex.Errno == Errno.EEXIST)
            {
                return true;
            }
            catch (KvmException)
            {
                // EINVAL (a delete of a missing slot, a size change): not what this property is about.
            }
        }
        return false;
    }
}
