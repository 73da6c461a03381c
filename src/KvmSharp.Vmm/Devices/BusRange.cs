// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Devices;

/// <summary>[Base, Base + Length) on a bus. Zero-length and overflowing ranges cannot be made.</summary>
public readonly record struct BusRange
{
    /// <summary>The range [<paramref name="base"/>, <paramref name="base"/> + <paramref name="length"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is 0, or the range runs past
    /// <see cref="ulong.MaxValue"/>.</exception>
    public BusRange(ulong @base, ulong length)
    {
        if (length == 0) throw new ArgumentOutOfRangeException(nameof(length), $"bus range at 0x{@base:X} has zero length");
        if (@base > ulong.MaxValue - length)
            throw new ArgumentOutOfRangeException(nameof(length), $"bus range 0x{@base:X} + 0x{length:X} overflows");
        Base = @base;
        Length = length;
    }

    /// <summary>The first address (port) of the range.</summary>
    public ulong Base { get; }

    /// <summary>How many addresses (ports) the range covers; never 0.</summary>
    public ulong Length { get; }

    /// <summary>One past the last address (cannot overflow: checked at construction).</summary>
    public ulong End => Base + Length;

    /// <summary>True when <paramref name="address"/> lies in [Base, End).</summary>
    public bool Contains(ulong address) => address >= Base && address < End;

    /// <summary>True when the two ranges share at least one address.</summary>
    public bool Overlaps(BusRange other) => Base < other.End && other.Base < End;

    /// <summary>The range as "[0x3F8, 0x400)".</summary>
    public override string ToString() => $"[0x{Base:X}, 0x{End:X})";
}
