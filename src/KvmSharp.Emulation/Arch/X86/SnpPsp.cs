// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The SEV-SNP side of the modelled PSP (<see cref="SevFirmware"/>): the secrets page SNP_LAUNCH_UPDATE fills for
/// page type SECRETS, and SEV_CMD_SNP_GUEST_REQUEST (SEV-SNP Firmware ABI "SNP_GUEST_REQUEST" and "Guest
/// Messages"), which KVM issues for a guest's VMGEXIT (arch/x86/kvm/svm/sev.c snp_handle_guest_req). Per chip (one
/// per <see cref="EmulatedKernel"/>): a random VCEK (ECDSA P-384), a chip ID and a fixed TCB. Per guest context: four
/// random VMPCKs, one message sequence number per VMPCK, the report ID, and what SNP_LAUNCH_FINISH fixed (host data,
/// ID block, measurement). MSG_REPORT_REQ, MSG_KEY_REQ (<see cref="SnpDerivedKey"/>) and MSG_TSC_INFO_REQ
/// (<see cref="SnpTscInfo"/>) are modelled; other message types (CPUID, EXPORT/IMPORT/ABSORB, VMRK) are not: the
/// firmware answers them INVALID_PARAM here.
/// </summary>
internal static class SnpPsp
{
    // struct sev_snp_id_authentication (SNP ABI 8.18, as QEMU's target/i386/sev.h spells it): id_key_alg, auth_key_algo,
    // reserved[56], id_block_sig[512], id_key[1028], reserved2[60], id_key_sig[512], author_key[1028], reserved3[892].
    private const int IdAuthIdKey = 0x240, IdAuthAuthorKey = 0x880, IdAuthKeySize = 1028;

    // include/uapi/linux/psp-sev.h enum sev_ret_code (after "crypto: ccp: Fix uAPI definitions of PSP errors").
    public const uint SEV_RET_INVALID_PARAM = 0x16;
    public const uint SEV_RET_AEAD_OFLOW = 0x1D;

    /// <summary>struct snp_secrets_page (arch/x86/include/asm/sev.h): version, imien, fms, gosvw, vmpck0..3.</summary>
    public const int SecretsVersion = 0x00, SecretsFms = 0x08, SecretsGosvw = 0x10, SecretsVmpck0 = 0x20;

    /// <summary>The secrets page layout version the model writes (ABI "Secrets Page Format").</summary>
    private const uint SecretsPageVersion = 2;

    /// <summary>struct snp_report_req (include/uapi/linux/sev-guest.h): user_data[64], vmpl, rsvd[28].</summary>
    private const int ReportReqSize = 96, ReportReqVmpl = 64;

    /// <summary>
    /// The emulated chip's TCB_VERSION (byte 0 boot loader, 1 TEE, 2-5 reserved, 6 SNP, 7 microcode), current =
    /// committed = launch = reported: boot loader 3, TEE 0, SNP 0x15, microcode 0xD3 — a model value.
    /// </summary>
    internal const ulong ChipTcb = 0xD315_0000_0000_0003;

    /// <summary>The emulated chip.</summary>
    internal sealed class ChipState
    {
        public readonly ECDsa Vcek = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        public readonly byte[] ChipId = RandomNumberGenerator.GetBytes(64);
    }

    /// <summary>One SNP guest context's firmware state.</summary>
    internal sealed class GuestContext
    {
        public readonly byte[][] Vmpck = [.. Enumerable.Range(0, 4).Select(_ => RandomNumberGenerator.GetBytes(SnpGuestMessage.VmpckLength))];
        /// <summary>The last sequence number per VMPCK: the firmware's response's (0 before the first request).</summary>
        public readonly ulong[] Seqno = new ulong[4];
        public readonly byte[] ReportId = RandomNumberGenerator.GetBytes(32);
        public byte[] HostData = new byte[32];
        public byte[]? IdBlock;
        public byte[]? IdAuth;
        public bool AuthorKey;
        public byte[] Measurement = new byte[48];
        /// <summary>KVM's sev->guest_resp_buf (snp_guest_req_init: a zeroed page), copied to the guest after each request.</summary>
        public readonly byte[] RespBuf = new byte[0x1000];
    }

    private static readonly ConditionalWeakTable<EmulatedKernel, ChipState> s_chips = [];
    private static readonly ConditionalWeakTable<SevInfo, GuestContext> s_guests = [];

    public static ChipState Chip(EmulatedKernel kernel) => s_chips.GetValue(kernel, _ => new ChipState());

    public static GuestContext Guest(SevInfo sev) => s_guests.GetValue(sev, _ => new GuestContext());

    /// <summary>
    /// SNP_LAUNCH_UPDATE of PAGE_TYPE_SECRETS: the firmware writes the secrets page (its source contents are not
    /// used): the layout version, the VMPCKs at 0x20, 0x40, 0x60, 0x80, TSC_FACTOR at 0x160 (<see cref="SnpTscInfo"/>,
    /// 0 in the model); the rest zero (IMIEN, FMS, GOSVW and the OS area are not modelled).
    /// </summary>
    public static byte[] SecretsPage(SevInfo sev)
    {
        var g = Guest(sev);
        var page = new byte[0x1000];
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(SecretsVersion), SecretsPageVersion);
        for (int i = 0; i < 4; i++) g.Vmpck[i].CopyTo(page, SecretsVmpck0 + i * SnpGuestMessage.VmpckLength);
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(SnpTscInfo.SecretsTscFactor), SnpTscInfo.TscFactor);
        return page;
    }

    /// <summary>
    /// SNP_LAUNCH_FINISH succeeded: keeps HOST_DATA, the ID block and its authentication structure, and the launch
    /// measurement (48 bytes: SHA-384 over the emulator's launch digest; not AMD's measurement, see
    /// <see cref="SevFirmware"/>).
    /// </summary>
    public static void LaunchFinished(SevInfo sev, byte[] hostData, byte[]? idBlock, byte[]? idAuth, bool authorKey)
    {
        var g = Guest(sev);
        g.HostData = hostData;
        g.IdBlock = idBlock;
        g.IdAuth = idAuth;
        g.AuthorKey = authorKey;
        byte[] digest = sev.LaunchDigest?.GetCurrentHash() ?? new byte[32];
        g.Measurement = SHA384.HashData([.. Encoding.ASCII.GetBytes("KvmSharp emulated SNP measurement"), .. digest]);
    }

    /// <summary>
    /// SEV_CMD_SNP_GUEST_REQUEST with the request page <paramref name="request"/>: the firmware status (0 or a
    /// sev_ret_code); on success the encrypted response is in <see cref="GuestContext.RespBuf"/>, on failure the
    /// buffer is left as it was.
    /// </summary>
    public static uint GuestRequest(EmulatedKernel kernel, SevInfo sev, ReadOnlySpan<byte> request)
    {
        // SNP_GUEST_REQUEST needs the guest context in the RUNNING state (after SNP_LAUNCH_FINISH).
        if (sev.FirmwareState != SevGuestState.Running) return SevFirmware.SEV_RET_INVALID_GUEST_STATE;
        var g = Guest(sev);
        var h = SnpGuestMessage.ReadHeader(request);
        // The header must be the one the ABI defines: AES-256-GCM, header version 1, header size 0x60, a VMPCK 0-3,
        // and a payload that fits the page; anything else is INVALID_PARAM (as modelled).
        if (h.Algo != SnpGuestMessage.AlgoAes256Gcm || h.HdrVersion != SnpGuestMessage.HeaderVersion ||
            h.HdrSize != SnpGuestMessage.HeaderSize || h.Vmpck > 3 || h.MsgSize + SnpGuestMessage.AuthTagLength > SnpGuestMessage.PayloadCapacity)
            return SEV_RET_INVALID_PARAM;
        // The sequence number must be one greater than the last one used with this VMPCK (the firmware's response
        // took seqno + 1, so a guest's next request is + 2: sev-guest snp_inc_msg_seqno "+= 2"). Its response needs
        // seqno + 1: a request at the top of the range overflows the counter (AEAD_OFLOW).
        if (h.Seqno == ulong.MaxValue) return SEV_RET_AEAD_OFLOW;
        if (h.Seqno != g.Seqno[h.Vmpck] + 1) return SEV_RET_INVALID_PARAM;
        // Authenticated decryption under the VMPCK the header names; a bad tag (or the wrong key) is INVALID_PARAM.
        byte[]? plain = SnpGuestMessage.Open(g.Vmpck[h.Vmpck], request);
        if (plain is null) return SEV_RET_INVALID_PARAM;
        // Only MSG_REPORT_REQ, MSG_KEY_REQ and MSG_TSC_INFO_REQ version 1 are modelled.
        byte[] response;
        byte responseType;
        if (h.MsgType == SnpGuestMessage.MsgReportReq && h.MsgVersion == 1)
            (response, responseType) = (ReportResponse(kernel, sev, g, plain, requesterVmpl: h.Vmpck), SnpGuestMessage.MsgReportRsp);
        else if (h.MsgType == SnpDerivedKey.MsgKeyReq && h.MsgVersion == 1)
            (response, responseType) = (SnpDerivedKey.Response(kernel, sev, g, plain, requesterVmpl: h.Vmpck), SnpDerivedKey.MsgKeyRsp);
        else if (h.MsgType == SnpTscInfo.MsgTscInfoReq && h.MsgVersion == 1)
            (response, responseType) = (SnpTscInfo.Response(sev, plain), SnpTscInfo.MsgTscInfoRsp);
        else return SEV_RET_INVALID_PARAM;

        // The response: MSG_REPORT_RSP / MSG_KEY_RSP / MSG_TSC_INFO_RSP, the request's version and VMPCK, seqno + 1, encrypted the same way.
        ulong respSeqno = h.Seqno + 1;
        g.Seqno[h.Vmpck] = respSeqno;
        Array.Clear(g.RespBuf);
        SnpGuestMessage.WriteHeader(g.RespBuf, h with { Seqno = respSeqno, MsgType = responseType, MsgSize = (ushort)response.Length });
        SnpGuestMessage.Encrypt(g.Vmpck[h.Vmpck], g.RespBuf, response);
        return SevFirmware.SEV_RET_SUCCESS;
    }

    /// <summary>
    /// MSG_REPORT_RSP's plaintext: status, report_size, reserved, the signed report. A request shorter than
    /// struct snp_report_req, or a VMPL above 3 or below the requester's (VMPCK n belongs to VMPL n), gets status
    /// INVALID_PARAM and no report.
    /// </summary>
    private static byte[] ReportResponse(EmulatedKernel kernel, SevInfo sev, GuestContext g, byte[] req, int requesterVmpl)
    {
        var rsp = new byte[SnpAttestation.ResponseReportOffset + SnpAttestation.ReportSize];
        uint vmpl = req.Length >= ReportReqSize ? BinaryPrimitives.ReadUInt32LittleEndian(req.AsSpan(ReportReqVmpl)) : uint.MaxValue;
        if (vmpl > 3 || vmpl < requesterVmpl)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(rsp, SEV_RET_INVALID_PARAM);
            return rsp[..SnpAttestation.ResponseReportOffset];
        }
        BinaryPrimitives.WriteUInt32LittleEndian(rsp.AsSpan(4), SnpAttestation.ReportSize);
        var r = rsp.AsSpan(SnpAttestation.ResponseReportOffset);
        var chip = Chip(kernel);
        SnpAttestation.U32(r, SnpAttestation.OffVersion, SnpAttestation.ReportVersion);
        SnpAttestation.U64(r, SnpAttestation.OffPolicy, sev.Policy);
        if (g.IdBlock is { } id)
        {
            // struct sev_snp_id_block: ld[48], family_id[16] at 0x30, image_id[16] at 0x40, version, guest_svn at 0x54.
            id.AsSpan(0x30, 16).CopyTo(r[SnpAttestation.OffFamilyId..]);
            id.AsSpan(0x40, 16).CopyTo(r[SnpAttestation.OffImageId..]);
            SnpAttestation.U32(r, SnpAttestation.OffGuestSvn, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(0x54)));
        }
        SnpAttestation.U32(r, SnpAttestation.OffVmpl, vmpl);
        SnpAttestation.U32(r, SnpAttestation.OffSignatureAlgo, SnpAttestation.SignatureAlgoEcdsaP384Sha384);
        SnpAttestation.U64(r, SnpAttestation.OffCurrentTcb, ChipTcb);
        // FLAGS: AUTHOR_KEY_EN (bit 0) from SNP_LAUNCH_FINISH, MASK_CHIP_KEY 0, SIGNING_KEY 0 (VCEK).
        SnpAttestation.U32(r, SnpAttestation.OffFlags, g.AuthorKey ? 1u : 0u);
        req.AsSpan(0, 64).CopyTo(r[SnpAttestation.OffReportData..]);
        g.Measurement.CopyTo(r[SnpAttestation.OffMeasurement..]);
        g.HostData.CopyTo(r[SnpAttestation.OffHostData..]);
        // ID_KEY_DIGEST / AUTHOR_KEY_DIGEST: SHA-384 of the ID key and (with AUTHOR_KEY_EN) the author key of the ID
        // authentication structure (SNP ABI 8.18; QEMU target/i386/sev.h struct sev_snp_id_authentication:
        // id_key[1028] at 0x240, author_key[1028] at 0x880).
        if (g.IdAuth is { } auth)
        {
            SHA384.HashData(auth.AsSpan(IdAuthIdKey, IdAuthKeySize)).CopyTo(r[SnpAttestation.OffIdKeyDigest..]);
            if (g.AuthorKey) SHA384.HashData(auth.AsSpan(IdAuthAuthorKey, IdAuthKeySize)).CopyTo(r[SnpAttestation.OffAuthorKeyDigest..]);
        }
        g.ReportId.CopyTo(r[SnpAttestation.OffReportId..]);
        // REPORT_ID_MA: no migration agent is bound, all ones.
        r.Slice(SnpAttestation.OffReportIdMa, 32).Fill(0xff);
        SnpAttestation.U64(r, SnpAttestation.OffReportedTcb, ChipTcb);
        chip.ChipId.CopyTo(r[SnpAttestation.OffChipId..]);
        SnpAttestation.U64(r, SnpAttestation.OffCommittedTcb, ChipTcb);
        SnpAttestation.U64(r, SnpAttestation.OffLaunchTcb, ChipTcb);
        SnpAttestation.Sign(chip.Vcek, r);
        return rsp;
    }
}
