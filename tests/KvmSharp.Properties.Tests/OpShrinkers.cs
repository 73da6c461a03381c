// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Properties.Tests;

/// <summary>
/// Shrinkers of the generated calls of <see cref="EmulatorProperties"/>: each moves one field toward its simplest
/// value (create rather than delete, slot 0, GPA page 0, one page, aligned offsets, a plain mode), so a failing
/// sequence is reported as the fewest, smallest calls that still fail.
/// </summary>
internal static class OpShrinkers
{
    private static readonly long Ps = Environment.SystemPageSize;

    public static IEnumerable<EmulatorProperties.SlotOp> Slot(EmulatorProperties.SlotOp op)
    {
        if (op.Delete) yield return op with { Delete = false };
        foreach (int id in Shrinking.Toward(op.Id, 0)) yield return op with { Id = id };
        foreach (ulong page in Shrinking.Toward(op.Page, 0UL)) yield return op with { Page = page };
        foreach (ulong pages in Shrinking.Toward(op.Pages, 1UL)) yield return op with { Pages = pages };
    }

    /// <summary>
    /// Slot sequences also shift every GPA down together: overlaps only depend on the relative layout, and field-wise
    /// moves alone get stuck at a pair like [1, +1) / [1, +1), where moving either slot alone ends the overlap.
    /// </summary>
    public static IEnumerable<List<EmulatorProperties.SlotOp>> Slots(List<EmulatorProperties.SlotOp> ops)
    {
        ulong min = ops.Count == 0 ? 0 : ops.Min(o => o.Page);
        if (min > 0) yield return ops.Select(o => o with { Page = o.Page - min }).ToList();
        foreach (var shorter in Shrinking.Sequence(ops, Slot)) yield return shorter;
    }

    public static IEnumerable<EmulatorProperties.FallocOp> Falloc(EmulatorProperties.FallocOp op)
    {
        if (op.HostWrite)
        {
            foreach (long page in Shrinking.Toward(op.Offset, 0)) yield return op with { Offset = page };
            foreach (int value in Shrinking.Toward(op.Value, 1)) yield return op with { Value = (byte)value };
            yield break;
        }
        // KEEP_SIZE, then KEEP_SIZE|PUNCH_HOLE: the two modes guest_memfd accepts.
        foreach (int mode in new[] { 1, 3 }.Where(m => m < op.Mode)) yield return op with { Mode = mode };
        foreach (long offset in Shrinking.Extent(op.Offset, Ps)) yield return op with { Offset = offset };
        foreach (long length in Shrinking.Extent(op.Length, Ps)) yield return op with { Length = length };
    }

    public static IEnumerable<EmulatorProperties.ConvertOp> Convert(EmulatorProperties.ConvertOp op)
    {
        if (op.Kind != EmulatorProperties.ConvertOp.Convert)
        {
            foreach (ulong page in Shrinking.Toward(op.Offset, 0UL)) yield return op with { Offset = page };
            yield break;
        }
        foreach (long offset in Shrinking.Extent((long)op.Offset, Ps)) yield return op with { Offset = (ulong)offset };
        foreach (long size in Shrinking.Extent((long)op.Size, Ps)) yield return op with { Size = (ulong)size };
        // Invalid attribute bits toward PRIVATE, PRIVATE toward shared.
        if (op.Attributes != 0 && op.Attributes != KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE)
            yield return op with { Attributes = KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE };
        if (op.Attributes != 0) yield return op with { Attributes = 0 };
    }

    /// <summary>A conversion input: the sequence shrinks with the creation flag kept, then INIT_SHARED is dropped.</summary>
    public static IEnumerable<(bool InitShared, List<EmulatorProperties.ConvertOp> Ops)> Conversions((bool InitShared, List<EmulatorProperties.ConvertOp> Ops) input)
    {
        foreach (var ops in Shrinking.Sequence(input.Ops, Convert)) yield return (input.InitShared, ops);
        if (input.InitShared) yield return (false, input.Ops);
    }
}
