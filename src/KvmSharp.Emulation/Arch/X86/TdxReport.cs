// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// TDREPORT_STRUCT, the 1024-byte output of TDG.MR.REPORT, as intel/tdx-module include/tdx_api_defs.h lays it out
/// (td_report_t = report_mac_struct_t, tee_tcb_info_t, reserved[17], td_info_t; all PACKED, static-asserted sizes
/// 256 + 239 + 17 + 512 = 1024; Linux include/uapi/linux/tdx-guest.h TDX_REPORT_LEN = 1024, TDX_REPORTDATA_LEN = 64):
/// <list type="bullet">
/// <item>REPORTMACSTRUCT at 0: REPORTTYPE (type 0x81 = TDX, subtype 0, version 0 without service TDs:
/// TDX_REPORT_TYPE / TDX_REPORT_VERSION_NO_SERVTDS) at 0, reserved 12, CPUSVN 16 at 16, TEE_TCB_INFO_HASH 48 at 32,
/// TEE_INFO_HASH 48 at 80, REPORTDATA 64 at 128, reserved 32 at 192, MAC 32 at 224;</item>
/// <item>TEE_TCB_INFO at 256: VALID 8, TEE_TCB_SVN 16 at 264, MRSEAM 48 at 280, MRSIGNERSEAM 48 at 328, ATTRIBUTES 8 at
/// 376, TEE_TCB_SVN2 16 at 384, reserved 95;</item>
/// <item>TDINFO at 512: ATTRIBUTES at 512, XFAM at 520, MRTD at 528, MRCONFIGID at 576, MROWNER at 624, MROWNERCONFIG at
/// 672, RTMR0–3 at 720, 768, 816, 864, SERVTD_HASH at 912, reserved 64 at 960.</item>
/// </list>
/// TEE_INFO_HASH = SHA-384 of the 512-byte TDINFO (tdg_mr_report.c get_tdinfo_and_teeinfohash) and TEE_TCB_INFO_HASH
/// = SHA-384 of the 239-byte TEE_TCB_INFO; the CPU's SEAMOPS(SEAMREPORT) writes REPORTMACSTRUCT with a MAC only the CPU
/// can verify (TDG.MR.VERIFYREPORT / SGX EVERIFYREPORT2). <b>Emulator stand-in</b>: the MAC is HMAC-SHA256 with a random
/// key per emulated platform (<see cref="EmulatedKernel"/>) over REPORTMACSTRUCT's first 224 bytes (everything before
/// the MAC); CPUSVN, TEE_TCB_SVN are zero, MRSEAM is the SHA-384 of "KvmSharp emulated TDX module", MRSIGNERSEAM and
/// SERVTD_HASH are zero (Intel-signed module, no service TD binding: not modelled). The host checks a report with
/// <see cref="TdxAttestationInspection.VerifyReport"/>.
/// </summary>
internal static class TdxReport
{
    public const int Size = 1024, ReportDataSize = 64;

    public const int ReportTypeOffset = 0, CpuSvnOffset = 16, TeeTcbInfoHashOffset = 32, TeeInfoHashOffset = 80,
        ReportDataOffset = 128, MacOffset = 224, MacSize = 32;

    public const int TeeTcbInfoOffset = 256, TeeTcbInfoSize = 239, MrSeamOffset = 280;

    public const int TdInfoOffset = 512, TdInfoSize = 512;

    public const int AttributesOffset = 512, XfamOffset = 520, MrtdOffset = 528, MrConfigIdOffset = 576,
        MrOwnerOffset = 624, MrOwnerConfigOffset = 672, Rtmr0Offset = 720, ServtdHashOffset = 912;

    /// <summary>TDX_REPORT_TYPE (tdx_api_defs.h).</summary>
    public const byte TdxReportType = 0x81;

    /// <summary>TEE_TCB_INFO.VALID: "1 in the i-th bit: the field at offset 8 * i is populated" — TEE_TCB_SVN (8) and MRSEAM (24).</summary>
    private const ulong TeeTcbValid = (1UL << 1) | (1UL << 3);

    private static readonly ConditionalWeakTable<EmulatedKernel, byte[]> s_macKeys = [];

    /// <summary>The emulated platform's report MAC key (the stand-in for the CPU's report key).</summary>
    private static byte[] MacKey(EmulatedKernel kernel) => s_macKeys.GetValue(kernel, _ => RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// tdg_mr_report.c's report for sub-type 0: TDINFO from the TDCS (<see cref="TdxMeasurement"/>), the SEAM's
    /// TEE_TCB_INFO, REPORTTYPE, REPORTDATA, both hashes and the MAC.
    /// </summary>
    public static byte[] Build(EmulatedKernel kernel, TdxInfo td, ReadOnlySpan<byte> reportData)
    {
        var report = new byte[Size];
        var r = report.AsSpan();
        var m = TdxMeasurement.Of(td);
        lock (m) FillTdInfo(td, m, r); // get_tdinfo_and_teeinfohash holds the RTMR lock shared
        // TEE_TCB_INFO (the SEAM module's identity).
        BitConverter.TryWriteBytes(r[TeeTcbInfoOffset..], TeeTcbValid);
        SHA384.HashData("KvmSharp emulated TDX module"u8, r.Slice(MrSeamOffset, TdMeasurementState.DigestSize));
        // REPORTMACSTRUCT.
        r[ReportTypeOffset] = TdxReportType;
        reportData[..ReportDataSize].CopyTo(r[ReportDataOffset..]);
        Seal(kernel, r);
        return report;
    }

    /// <summary>
    /// TDINFO (get_tdinfo_and_teeinfohash: zeroed, then ATTRIBUTES, XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG,
    /// RTMR[0..3]; SERVTD_HASH stays zero here).
    /// </summary>
    private static void FillTdInfo(TdxInfo td, TdMeasurementState m, Span<byte> r)
    {
        BitConverter.TryWriteBytes(r[AttributesOffset..], td.Attributes);
        BitConverter.TryWriteBytes(r[XfamOffset..], td.Xfam);
        m.Mrtd.CopyTo(r[MrtdOffset..]);
        m.MrConfigId.CopyTo(r[MrConfigIdOffset..]);
        m.MrOwner.CopyTo(r[MrOwnerOffset..]);
        m.MrOwnerConfig.CopyTo(r[MrOwnerConfigOffset..]);
        for (int i = 0; i < TdMeasurementState.RtmrCount; i++)
            m.Rtmr[i].CopyTo(r[(Rtmr0Offset + i * TdMeasurementState.DigestSize)..]);
    }

    /// <summary>True when <paramref name="report"/>'s hashes match its TEE_TCB_INFO and TDINFO and its MAC is this platform's.</summary>
    public static bool Verify(EmulatedKernel kernel, ReadOnlySpan<byte> report)
    {
        if (report.Length != Size) return false;
        var copy = report.ToArray();
        Seal(kernel, copy);
        return CryptographicOperations.FixedTimeEquals(copy, report);
    }

    /// <summary>The two hashes and the MAC (SEAMOPS SEAMREPORT's part).</summary>
    private static void Seal(EmulatedKernel kernel, Span<byte> r)
    {
        SHA384.HashData(r.Slice(TeeTcbInfoOffset, TeeTcbInfoSize), r.Slice(TeeTcbInfoHashOffset, TdMeasurementState.DigestSize));
        SHA384.HashData(r.Slice(TdInfoOffset, TdInfoSize), r.Slice(TeeInfoHashOffset, TdMeasurementState.DigestSize));
        HMACSHA256.HashData(MacKey(kernel), r[..MacOffset], r.Slice(MacOffset, MacSize));
    }
}
