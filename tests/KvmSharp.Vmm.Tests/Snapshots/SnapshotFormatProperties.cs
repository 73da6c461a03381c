// SPDX-License-Identifier: MIT
using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>
/// Random damage to a valid snapshot file: byte flips (with the checksum left as it is, or recomputed so the parser
/// alone must judge the bytes) and cuts. ReadFrom may only answer with a snapshot or a
/// <see cref="MicroVmSnapshotFormatException"/> whose offset lies inside the input; never with another exception.
/// </summary>
public sealed class SnapshotFormatProperties
{
    private const int Runs = 1500;

    /// <summary>Flips (offset, xor) then an optional cut. Half the flips land in the header and image section.</summary>
    public sealed record Damage(IReadOnlyList<(int Offset, byte Xor)> Flips, bool FixChecksum, int? Cut)
    {
        public override string ToString() =>
            $"flips [{string.Join(", ", Flips.Select(f => $"{f.Offset}^0x{f.Xor:X2}"))}]{(FixChecksum ? " + checksum fixed" : "")}{(Cut is int c ? $", cut at {c}" : "")}";

        public byte[] ApplyTo(byte[] original)
        {
            byte[] bytes = (byte[])original.Clone();
            foreach (var (offset, xor) in Flips) bytes[offset] ^= xor;
            if (FixChecksum) SnapshotSamples.FixChecksum(bytes);
            return Cut is int cut ? bytes[..cut] : bytes;
        }
    }

    private static readonly byte[] s_valid = SnapshotSamples.Counter;

    private static Gen<Damage> Damages(bool fixChecksum, bool cut)
    {
        int structure = 48 + SnapshotSamples.ImageLength(s_valid) + 8;
        Gen<int> offset = Gen.OneOf(Gen.Choose(0, structure - 1), Gen.Choose(0, s_valid.Length - 1));
        Gen<(int, byte)> flip = from at in offset
                                from xor in Gen.Choose(1, 255)
                                select (at, (byte)xor);
        Gen<int?> cuts = cut
            ? Gen.OneOf(Gen.Choose(0, structure), Gen.Choose(0, s_valid.Length - 1)).Select(c => (int?)c)
            : Gen.Constant<int?>(null);
        return from flips in Gen.Choose(cut ? 0 : 1, 4).SelectMany(n => Gen.ArrayOf(flip, n))
               from at in cuts
               select new Damage(flips, fixChecksum, at);
    }

    private static void CheckAll(Gen<Damage> damages, Func<byte[], MicroVmSnapshotFormatException?, MicroVmSnapshot?, bool> expectation) =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Runs), Prop.ForAll(Arb.From(damages), damage =>
        {
            byte[] input = damage.ApplyTo(s_valid);
            MicroVmSnapshot? read = null;
            MicroVmSnapshotFormatException? error = null;
            try
            {
                read = SnapshotSamples.Read(input);
            }
            catch (MicroVmSnapshotFormatException e)
            {
                error = e;
            }
            // Any other exception escapes and fails the property with FsCheck's shrunk damage.
            if (error is not null && (error.Offset < 0 || error.Offset > input.Length)) return false;
            return expectation(input, error, read);
        }));

    /// <summary>With the checksum as written, any real change is refused.</summary>
    [Fact]
    public void Flipped_bytes_are_always_refused_with_the_format_exception() =>
        CheckAll(Damages(fixChecksum: false, cut: false), (input, error, _) => error is not null || input.AsSpan().SequenceEqual(s_valid));

    /// <summary>Cuts (after any flips) are refused.</summary>
    [Fact]
    public void Cut_inputs_are_always_refused_with_the_format_exception() =>
        CheckAll(Damages(fixChecksum: false, cut: true), (_, error, _) => error is not null);

    /// <summary>
    /// With a recomputed checksum the parser sees the flipped fields themselves. What it accepts is a snapshot it
    /// writes back byte for byte (the format has one encoding per snapshot); the rest is the format exception.
    /// </summary>
    [Fact]
    public void Flipped_fields_with_a_valid_checksum_are_refused_or_read_back_exactly() =>
        CheckAll(Damages(fixChecksum: true, cut: false), (input, error, read) =>
            error is not null || SnapshotSamples.Bytes(read!).AsSpan().SequenceEqual(input));
}
