// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// An SEV-SNP guest message (SEV-SNP Firmware ABI, "Guest Messages"; the guest side is
/// drivers/virt/coco/sev-guest/sev-guest.c and arch/x86/coco/sev/core.c enc_payload / verify_and_dec_payload): one
/// 4 KiB page, a 0x60-byte <c>struct snp_guest_msg_hdr</c> (arch/x86/include/asm/sev.h) and the AES-256-GCM encrypted
/// payload. The key is the VMPCK the header names, the IV the 8-byte sequence number (little-endian) followed by four
/// zero bytes, the additional data the header from <c>algo</c> to its end (AAD_LEN 48), the 16-byte tag goes to
/// <c>authtag</c>. Used by the emulated PSP (<see cref="SnpPsp"/>) and by hosts and tests that act as the guest.
/// </summary>
public static class SnpGuestMessage
{
    /// <summary>sizeof(struct snp_guest_msg_hdr).</summary>
    public const int HeaderSize = 0x60;

    /// <summary>The largest payload: PAGE_SIZE − the header (struct snp_guest_msg payload[]).</summary>
    public const int PayloadCapacity = 0x1000 - HeaderSize;

    /// <summary>AUTHTAG_LEN: the AES-GCM tag length the guest driver uses.</summary>
    public const int AuthTagLength = 16;

    /// <summary>VMPCK_KEY_LEN: a VM platform communication key is 32 bytes (AES-256).</summary>
    public const int VmpckLength = 32;

    /// <summary>enum aead_algo SNP_AEAD_AES_256_GCM.</summary>
    public const byte AlgoAes256Gcm = 1;

    /// <summary>MSG_HDR_VER: the header version the guest driver writes.</summary>
    public const byte HeaderVersion = 1;

    /// <summary>enum msg_type (arch/x86/include/asm/sev.h): SNP_MSG_REPORT_REQ.</summary>
    public const byte MsgReportReq = 5;

    /// <summary>enum msg_type: SNP_MSG_REPORT_RSP.</summary>
    public const byte MsgReportRsp = 6;

    /// <summary>struct snp_guest_msg_hdr field offsets.</summary>
    public const int OffAuthTag = 0x00, OffSeqno = 0x20, OffAlgo = 0x30, OffHdrVersion = 0x31, OffHdrSize = 0x32,
        OffMsgType = 0x34, OffMsgVersion = 0x35, OffMsgSize = 0x36, OffMsgVmpck = 0x3c;

    /// <summary>The AAD: the header from <c>algo</c> on (AAD_LEN = 48 bytes).</summary>
    private const int AadLength = HeaderSize - OffAlgo;

    /// <summary>The header fields of a message page.</summary>
    /// <param name="Seqno">msg_seqno.</param>
    /// <param name="Algo">algo.</param>
    /// <param name="HdrVersion">hdr_version.</param>
    /// <param name="HdrSize">hdr_sz.</param>
    /// <param name="MsgType">msg_type.</param>
    /// <param name="MsgVersion">msg_version.</param>
    /// <param name="MsgSize">msg_sz (the plaintext length).</param>
    /// <param name="Vmpck">msg_vmpck.</param>
    public readonly record struct Header(ulong Seqno, byte Algo, byte HdrVersion, ushort HdrSize, byte MsgType, byte MsgVersion,
        ushort MsgSize, byte Vmpck);

    /// <summary>Reads the header of <paramref name="page"/> (at least <see cref="HeaderSize"/> bytes).</summary>
    public static Header ReadHeader(ReadOnlySpan<byte> page) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(page[OffSeqno..]), page[OffAlgo], page[OffHdrVersion],
        BinaryPrimitives.ReadUInt16LittleEndian(page[OffHdrSize..]), page[OffMsgType], page[OffMsgVersion],
        BinaryPrimitives.ReadUInt16LittleEndian(page[OffMsgSize..]), page[OffMsgVmpck]);

    /// <summary>
    /// enc_payload: a 4 KiB message page with the guest driver's header (algo AES-256-GCM, hdr_version 1, hdr_sz
    /// 0x60, <paramref name="msgType"/>, <paramref name="msgVersion"/>, <paramref name="seqno"/>,
    /// <paramref name="vmpckId"/>, msg_sz = the plaintext length) and <paramref name="plaintext"/> sealed with
    /// <paramref name="vmpck"/>.
    /// </summary>
    public static byte[] Seal(ReadOnlySpan<byte> vmpck, byte vmpckId, ulong seqno, byte msgType, byte msgVersion, ReadOnlySpan<byte> plaintext)
    {
        // enc_payload: "if (WARN_ON((sz + ctx->authsize) > sizeof(msg->payload))) return -EBADMSG;"
        if (plaintext.Length + AuthTagLength > PayloadCapacity) throw new ArgumentException("payload too large", nameof(plaintext));
        var page = new byte[0x1000];
        WriteHeader(page, new Header(seqno, AlgoAes256Gcm, HeaderVersion, HeaderSize, msgType, msgVersion, (ushort)plaintext.Length, vmpckId));
        Encrypt(vmpck, page, plaintext);
        return page;
    }

    /// <summary>Writes <paramref name="h"/> into <paramref name="page"/>'s header (the tag and reserved bytes untouched).</summary>
    public static void WriteHeader(Span<byte> page, Header h)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(page[OffSeqno..], h.Seqno);
        page[OffAlgo] = h.Algo;
        page[OffHdrVersion] = h.HdrVersion;
        BinaryPrimitives.WriteUInt16LittleEndian(page[OffHdrSize..], h.HdrSize);
        page[OffMsgType] = h.MsgType;
        page[OffMsgVersion] = h.MsgVersion;
        BinaryPrimitives.WriteUInt16LittleEndian(page[OffMsgSize..], h.MsgSize);
        page[OffMsgVmpck] = h.Vmpck;
    }

    /// <summary>
    /// Encrypts <paramref name="plaintext"/> into <paramref name="page"/>'s payload under the header already written
    /// (its msg_seqno gives the IV, its bytes from algo on the AAD) and stores the tag in authtag.
    /// </summary>
    public static void Encrypt(ReadOnlySpan<byte> vmpck, Span<byte> page, ReadOnlySpan<byte> plaintext)
    {
        using var gcm = new AesGcm(vmpck, AuthTagLength);
        Span<byte> iv = stackalloc byte[12];
        Iv(page, iv);
        page[..AuthTagLength].Clear();
        gcm.Encrypt(iv, plaintext, page.Slice(HeaderSize, plaintext.Length), page[..AuthTagLength], page.Slice(OffAlgo, AadLength));
    }

    /// <summary>
    /// verify_and_dec_payload's aesgcm_decrypt: the payload of msg_sz bytes authenticated and decrypted with
    /// <paramref name="vmpck"/>; null when msg_sz does not fit the page or the tag does not verify.
    /// </summary>
    public static byte[]? Open(ReadOnlySpan<byte> vmpck, ReadOnlySpan<byte> page)
    {
        var h = ReadHeader(page);
        // "if (unlikely((resp_msg_hdr->msg_sz + ctx->authsize) > sizeof(resp_msg->payload))) return -EBADMSG;"
        if (h.MsgSize + AuthTagLength > PayloadCapacity) return null;
        using var gcm = new AesGcm(vmpck, AuthTagLength);
        Span<byte> iv = stackalloc byte[12];
        Iv(page, iv);
        var plain = new byte[h.MsgSize];
        try
        {
            gcm.Decrypt(iv, page.Slice(HeaderSize, h.MsgSize), page[..AuthTagLength], plain, page.Slice(OffAlgo, AadLength));
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
        return plain;
    }

    /// <summary>"memcpy(iv, &amp;hdr-&gt;msg_seqno, min(sizeof(iv), sizeof(hdr-&gt;msg_seqno)))": the seqno, then zeros.</summary>
    private static void Iv(ReadOnlySpan<byte> page, Span<byte> iv)
    {
        iv.Clear();
        page.Slice(OffSeqno, 8).CopyTo(iv);
    }
}
