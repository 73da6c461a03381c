// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The SEV-SNP attestation report the emulated PSP (<see cref="SnpPsp"/>) returns in MSG_REPORT_RSP, and the host's
/// view of the emulated chip's signing key. Layout: SEV-SNP Firmware ABI "ATTESTATION_REPORT Structure" (report
/// version 2; the guest's <c>struct snp_report_resp</c> data, include/uapi/linux/sev-guest.h), 0x4A0 bytes, signed
/// over bytes 0..0x29F with ECDSA P-384 / SHA-384 by the chip's VCEK; r and s little-endian, zero-extended to 72
/// bytes each. <b>The VCEK is the emulator's</b> (one random P-384 key per <see cref="EmulatedKernel"/>), not an AMD
/// key: AMD's certificate chain (ARK → ASK → VCEK) does not exist here.
/// </summary>
public static class SnpAttestation
{
    /// <summary>sizeof(struct attestation_report).</summary>
    public const int ReportSize = 0x4A0;

    /// <summary>The signed part of the report: bytes 0 .. 0x29F.</summary>
    public const int SignedLength = 0x2A0;

    /// <summary>MSG_REPORT_RSP: status (u32), report_size (u32), 24 reserved bytes, then the report.</summary>
    public const int ResponseReportOffset = 0x20;

    /// <summary>Report field offsets (ABI "ATTESTATION_REPORT Structure").</summary>
    public const int OffVersion = 0x00, OffGuestSvn = 0x04, OffPolicy = 0x08, OffFamilyId = 0x10, OffImageId = 0x20, OffVmpl = 0x30,
        OffSignatureAlgo = 0x34, OffCurrentTcb = 0x38, OffPlatformInfo = 0x40, OffFlags = 0x48, OffReportData = 0x50,
        OffMeasurement = 0x90, OffHostData = 0xC0, OffIdKeyDigest = 0xE0, OffAuthorKeyDigest = 0x110, OffReportId = 0x140,
        OffReportIdMa = 0x160, OffReportedTcb = 0x180, OffChipId = 0x1A0, OffCommittedTcb = 0x1E0, OffCurrentVersion = 0x1E8,
        OffCommittedVersion = 0x1EC, OffLaunchTcb = 0x1F0, OffSignatureR = 0x2A0, OffSignatureS = 0x2E8;

    /// <summary>The report version the model writes.</summary>
    public const uint ReportVersion = 2;

    /// <summary>SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384.</summary>
    public const uint SignatureAlgoEcdsaP384Sha384 = 1;

    /// <summary>
    /// The emulated chip's VCEK public key (X.509 SubjectPublicKeyInfo, DER) of <paramref name="kernel"/>: what a
    /// verifier would take from AMD's KDS for a real chip.
    /// </summary>
    public static byte[] VcekPublicKey(EmulatedKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return SnpPsp.Chip(kernel).Vcek.ExportSubjectPublicKeyInfo();
    }

    /// <summary>
    /// True when <paramref name="report"/> (<see cref="ReportSize"/> bytes) carries a valid ECDSA P-384 / SHA-384
    /// signature of its first <see cref="SignedLength"/> bytes by the key in <paramref name="vcekPublicKey"/>.
    /// </summary>
    public static bool VerifySignature(ReadOnlySpan<byte> report, ReadOnlySpan<byte> vcekPublicKey)
    {
        if (report.Length < ReportSize) return false;
        using var key = ECDsa.Create();
        key.ImportSubjectPublicKeyInfo(vcekPublicKey, out _);
        Span<byte> sig = stackalloc byte[96];
        // r and s are little-endian in 72-byte fields; IEEE P1363 wants them big-endian, 48 bytes each.
        for (int i = 0; i < 48; i++)
        {
            sig[47 - i] = report[OffSignatureR + i];
            sig[95 - i] = report[OffSignatureS + i];
        }
        return key.VerifyData(report[..SignedLength], sig, HashAlgorithmName.SHA384, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }

    /// <summary>Signs <paramref name="report"/>'s first <see cref="SignedLength"/> bytes into its signature field.</summary>
    internal static void Sign(ECDsa vcek, Span<byte> report)
    {
        byte[] sig = vcek.SignData(report[..SignedLength].ToArray(), HashAlgorithmName.SHA384, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        report[OffSignatureR..].Clear();
        for (int i = 0; i < 48; i++)
        {
            report[OffSignatureR + i] = sig[47 - i];
            report[OffSignatureS + i] = sig[95 - i];
        }
    }

    /// <summary>Writes a little-endian u64 field.</summary>
    internal static void U64(Span<byte> r, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(r[at..], v);

    /// <summary>Writes a little-endian u32 field.</summary>
    internal static void U32(Span<byte> r, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(r[at..], v);
}
