// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// A guest image as bytes, canonically (segments by address, exports by ordinal name), so equal images encode
/// equally whatever order they were built in:
/// <code>
/// u8 kind (0 = ELF, 1 = flat); u64 entry
/// u32 segment count; per segment: u64 address, u64 memory size, u64 data length, data
/// u32 export count;  per export:  u16 name length, UTF-8 name, u64 address
/// [u32 branch protection]  only when not 0 (an arm64 ELF's GNU_PROPERTY_AARCH64_FEATURE_1_AND bits), so every image
///                          without it encodes, and is named, as before
/// </code>
/// The SHA-256 of these bytes names the image (<see cref="GuestImage.Digest"/>).
/// </summary>
internal static class ImageEncoding
{
    public static byte[] Encode(GuestImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var stream = new MemoryStream();
        Span<byte> buffer = stackalloc byte[24];
        stream.WriteByte(image.Kind == GuestImageKind.Elf ? (byte)0 : (byte)1);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, image.Entry);
        stream.Write(buffer[..8]);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)image.Segments.Count);
        stream.Write(buffer[..4]);
        foreach (ImageSegment segment in image.Segments.OrderBy(s => s.Address))
        {
            BinaryPrimitives.WriteUInt64LittleEndian(buffer, segment.Address);
            BinaryPrimitives.WriteUInt64LittleEndian(buffer[8..], segment.MemorySize);
            BinaryPrimitives.WriteUInt64LittleEndian(buffer[16..], (ulong)segment.Data.Length);
            stream.Write(buffer);
            stream.Write(segment.Data.Span);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)image.Exports.Count);
        stream.Write(buffer[..4]);
        foreach (var (name, address) in image.Exports.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(name);
            BinaryPrimitives.WriteUInt16LittleEndian(buffer, checked((ushort)utf8.Length));
            stream.Write(buffer[..2]);
            stream.Write(utf8);
            BinaryPrimitives.WriteUInt64LittleEndian(buffer, address);
            stream.Write(buffer[..8]);
        }
        if (image.BranchProtection != BranchProtection.None)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)image.BranchProtection);
            stream.Write(buffer[..4]);
        }
        return stream.ToArray();
    }

    public static byte[] Digest(GuestImage image) => SHA256.HashData(Encode(image));
}
