// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Devices;

/// <summary>[Base, Base + Length) on a bus. Zero-length and overflowing ranges cannot be made.</summary>
public readonly record struct BusRange
{
    public BusRange(ulong @base, ulong length)
    {
        if (length == 0) throw new ArgumentOutOfRangeException(nameof(length), $"bus range at 0x{@base:X} has zero length");
        if (@base > ulong.MaxValue - length)
            throw new ArgumentOutOfRangeException(nameof(length), $"bus range 0x{@base:X} + 0x{length:X} overflows");
        Base = @base;
        Length = length;
    }

    public ulong Base { get; }

    public ulong Length { get; }

    /// <summary>One past the last address (cannot overflow: checked at construction).</summary>
    public ulong End => Base + Length;

    public bool Contains(ulong address) => address >= Base && address < End;

    public bool Overlaps(BusRange other) => Base < other.End && other.Base < End;

    public override string ToString() => $"[0x{Base:X}, 0x{End:X})";
}
