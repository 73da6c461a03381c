// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp;

/// <summary>One certificate of an SNP certificate table: its GUID and its DER bytes.</summary>
/// <param name="Guid">The certificate's kind (<see cref="SnpCertificateTable.VcekGuid"/>, …).</param>
/// <param name="Data">The certificate (DER).</param>
public sealed record SnpCertificateEntry(Guid Guid, byte[] Data);

/// <summary>
/// The certificate table an SNP guest reads after an extended guest request (GHCB specification 2.0, "SNP Extended
/// Guest Request"; drivers/virt/coco/sev-guest, struct cert_table): entries of { GUID (16 bytes, RFC 4122 byte
/// order), offset (u32, from the table's start), length (u32) }, ended by an all-zero entry, then the certificates.
/// </summary>
public static class SnpCertificateTable
{
    /// <summary>Bytes per table entry (and of the zero terminator).</summary>
    public const int EntrySize = 24;

    /// <summary>VCEK (versioned chip endorsement key) certificate.</summary>
    public static readonly Guid VcekGuid = new("63da758d-e664-4564-adc5-f4b93be8accd");
    /// <summary>VLEK (versioned loaded endorsement key) certificate.</summary>
    public static readonly Guid VlekGuid = new("a8074bc2-a25a-483e-aae6-39c045a0b8a1");
    /// <summary>ASK (AMD SEV signing key) certificate.</summary>
    public static readonly Guid AskGuid = new("4ab7b379-bbac-4fe4-a02f-05aef327c782");
    /// <summary>ARK (AMD root key) certificate.</summary>
    public static readonly Guid ArkGuid = new("c0b406a4-a803-4952-9743-3fb6014cd0ae");

    /// <summary>Builds the table: entries, terminator, then each certificate in order.</summary>
    public static byte[] Build(IReadOnlyList<SnpCertificateEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        int offset = (entries.Count + 1) * EntrySize;
        int total = offset + entries.Sum(e => e.Data.Length);
        var table = new byte[total];
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Guid == Guid.Empty) throw new ArgumentException("an entry's GUID cannot be zero (the terminator)", nameof(entries));
            var at = table.AsSpan(i * EntrySize, EntrySize);
            e.Guid.TryWriteBytes(at[..16], bigEndian: true, out _);
            BinaryPrimitives.WriteUInt32LittleEndian(at[16..], (uint)offset);
            BinaryPrimitives.WriteUInt32LittleEndian(at[20..], (uint)e.Data.Length);
            e.Data.CopyTo(table, offset);
            offset += e.Data.Length;
        }
        return table;
    }

    /// <summary>The pages (4 KiB) <paramref name="table"/> needs: what an ENOSPC answer tells the guest.</summary>
    public static ulong PagesNeeded(ReadOnlySpan<byte> table) => ((ulong)table.Length + 4095) / 4096;

    /// <summary>Reads a table up to its zero entry; entries pointing outside <paramref name="table"/> throw.</summary>
    /// <exception cref="FormatException">No terminator, or an entry outside the buffer.</exception>
    public static IReadOnlyList<SnpCertificateEntry> Parse(ReadOnlySpan<byte> table)
    {
        var list = new List<SnpCertificateEntry>();
        for (int at = 0; ; at += EntrySize)
        {
            if (at + EntrySize > table.Length) throw new FormatException("certificate table without a zero entry");
            var e = table.Slice(at, EntrySize);
            if (!e.ContainsAnyExcept((byte)0)) return list;
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(e[20..]);
            if ((ulong)offset + length > (ulong)table.Length) throw new FormatException($"entry {at / EntrySize} lies outside the table");
            list.Add(new SnpCertificateEntry(new Guid(e[..16], bigEndian: true), table.Slice((int)offset, (int)length).ToArray()));
        }
    }
}
