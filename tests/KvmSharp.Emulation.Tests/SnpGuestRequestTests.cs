// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Security.Cryptography;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SEV-SNP guest requests (attestation) through the GHCB on the emulator (this host has no SEV): SVM_VMGEXIT_GUEST_REQUEST
/// and SVM_VMGEXIT_EXT_GUEST_REQUEST (arch/x86/kvm/svm/sev.c 6.18 snp_handle_guest_req / snp_handle_ext_guest_req,
/// sev_es_validate_vmgexit), answered by the modelled PSP (SnpPsp: SNP_GUEST_REQUEST, MSG_REPORT_REQ → MSG_REPORT_RSP
/// signed with the emulated VCEK). The guest reads its VMPCK0 from the secrets page SNP_LAUNCH_UPDATE created and
/// hands it to the host, which then plays the guest driver's part (enc_payload / verify_and_dec_payload) for each
/// request: the guest copies the host's command (exit code, exit infos, RAX, RBX, the valid bitmap) into
/// its GHCB, VMGEXITs, and reports sw_exit_info_1/2 and RBX back.
/// </summary>
public sealed class SnpGuestRequestTests
{
    private const ulong SecretsGpa = 0x0;
    internal const ulong CertsGpa = 0xD000;
    internal const ulong RequestGpa = 0xB000, ResponseGpa = 0xC000;
    internal const ulong Command = SevEsGuest.Report + 0x200, Result = SevEsGuest.Report + 0x300;
    private const ulong Vmpck0Copy = SevEsGuest.Report + 0x100;
    internal const ulong GuestRequest = 0x8000_0011;
    internal const ulong ExtGuestRequest = 0x8000_0012;
    private const int Rax = 0x1f8, Rbx = 0x318;

    /// <summary>include/uapi/linux/sev-guest.h: SNP_GUEST_ERR(vmm_error, fw_error) has the firmware error in bits 31:0.</summary>
    private const ulong InvalidParam = 0x16;

    private static readonly byte[] s_hostData = [.. Enumerable.Range(0x40, 32).Select(i => (byte)i)];

    /// <summary>The guest: register the GHCB, copy VMPCK0..3 to the shared report page, then loop: exit to the host
    /// (GHCB IOIO OUT to port 0x80), run the host's command through the GHCB, report its result.</summary>
    private static void Program(Assembler a)
    {
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb | 0x012); // GHCB_MSR_REG_GPA_REQ
        SevEsGuest.Vmgexit(a);
        // struct snp_secrets_page: vmpck0..3 at 0x20..0x9f (the private page, through the C-bit mapping).
        a.mov(rsi, (long)(SecretsGpa + 0x20));
        a.mov(rdi, (long)(SevEsGuest.SharedAlias + Vmpck0Copy));
        for (int i = 0; i < 16; i++)
        {
            a.mov(rax, __qword_ptr[rsi + 8 * i]);
            a.mov(__qword_ptr[rdi + 8 * i], rax);
        }
        var loop = a.CreateLabel();
        a.Label(ref loop);
        SevEsGuest.SetGhcb(a, Rax, 0);
        SevEsGuest.GhcbRequest(a, 0x7b, (0x80UL << 16) | (1UL << 4), 0, validLow: 1UL << (Rax / 8)); // SVM_EXIT_IOIO, OUT
        a.mov(rsi, (long)(SevEsGuest.SharedAlias + Command));
        a.mov(rbx, (long)(SevEsGuest.SharedAlias + SevEsGuest.Ghcb));
        foreach (var (from, to) in new[] { (0, 0x390), (8, 0x398), (16, 0x3a0), (24, Rax), (32, Rbx), (40, 0x3f0), (48, 0x3f8) })
        {
            a.mov(rax, __qword_ptr[rsi + from]);
            a.mov(__qword_ptr[rbx + to], rax);
        }
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb);
        SevEsGuest.Vmgexit(a);
        a.mov(rbx, (long)(SevEsGuest.SharedAlias + SevEsGuest.Ghcb));
        a.mov(rdi, (long)(SevEsGuest.SharedAlias + Result));
        foreach (var (from, to) in new[] { (0x398, 0), (0x3a0, 8), (Rbx, 16) })
        {
            a.mov(rax, __qword_ptr[rbx + from]);
            a.mov(__qword_ptr[rdi + to], rax);
        }
        a.jmp(loop);
    }

    /// <summary>A 96-byte ID block (ld, family_id 0x11.., image_id 0x22.., version 1, guest_svn 7, policy) and a 4 KiB ID auth.</summary>
    private static (byte[] Block, byte[] Auth) IdBlock()
    {
        var block = new byte[96];
        block.AsSpan(0x30, 16).Fill(0x11);
        block.AsSpan(0x40, 16).Fill(0x22);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(0x50), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(0x54), 7);
        var auth = new byte[4096];
        for (int i = 0; i < auth.Length; i++) auth[i] = (byte)(i * 7);
        return (block, auth);
    }

    /// <summary>
    /// Launches the guest with a secrets page at GPA 0 and SNP_LAUNCH_FINISH with host data (and an ID block);
    /// <paramref name="init"/> replaces the plain KVM_SEV_INIT2.
    /// </summary>
    internal static SevEsGuest Launch(bool idBlock = false, Action<SnpLaunch>? init = null, EmulatorConfig? config = null) =>
        SevEsGuest.Create(VmType.Snp, Program, snpInit: init, config: config, snpFinish: l =>
    {
        var src = new PinnedArray<byte>(0x1000, 0x1000);
        src.Span.Fill(0x5a); // the firmware ignores the source of a SECRETS page
        l.Update(SecretsGpa >> 12, (nint)src.Address, 0x1000, SnpPageType.Secrets);
        GC.KeepAlive(src);
        var (block, auth) = IdBlock();
        if (idBlock) l.Finish(s_hostData, block, auth);
        else l.Finish(s_hostData);
    });

    /// <summary>Runs to the guest's first IO exit and returns the VMPCK0 it read from its secrets page.</summary>
    internal static byte[] Start(SevEsGuest g)
    {
        ExpectIoExit(g);
        var key = new byte[32];
        g.Memory.Read(Vmpck0Copy, key);
        return key;
    }

    /// <summary>VMPCK <paramref name="n"/> as the guest copied it (after <see cref="Start"/>).</summary>
    internal static byte[] Vmpck(SevEsGuest g, int n)
    {
        var key = new byte[32];
        g.Memory.Read(Vmpck0Copy + (ulong)n * 32, key);
        return key;
    }

    internal static void ExpectIoExit(SevEsGuest g)
    {
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
    }

    /// <summary>One GHCB request of the host's choosing: sw_exit_info_1, sw_exit_info_2 and RBX afterwards.</summary>
    internal static (ulong Info1, ulong Info2, ulong Rbx) Issue(SevEsGuest g, ulong exitCode, ulong info1, ulong info2,
        ulong rax = 0, ulong rbx = 0, bool raxRbxValid = false)
    {
        WriteCommand(g, exitCode, info1, info2, rax, rbx, raxRbxValid);
        ExpectIoExit(g);
        return (g.Memory.Read<ulong>(Result), g.Memory.Read<ulong>(Result + 8), g.Memory.Read<ulong>(Result + 16));
    }

    /// <summary>
    /// The command the guest copies into its GHCB: sw_exit_code and sw_exit_info_1/2 (always valid), RAX and RBX (valid
    /// bits 63 and 99 when <paramref name="raxRbxValid"/>).
    /// </summary>
    internal static void WriteCommand(SevEsGuest g, ulong exitCode, ulong info1, ulong info2, ulong rax, ulong rbx, bool raxRbxValid)
    {
        ulong low = raxRbxValid ? 1UL << (Rax / 8) : 0;
        ulong high = (1UL << (0x390 / 8 - 64)) | (1UL << (0x398 / 8 - 64)) | (1UL << (0x3a0 / 8 - 64)) | (raxRbxValid ? 1UL << (Rbx / 8 - 64) : 0);
        ulong[] cmd = [exitCode, info1, info2, rax, rbx, low, high];
        for (int i = 0; i < cmd.Length; i++) g.Memory.Write(Command + (ulong)i * 8, cmd[i]);
    }

    /// <summary>struct snp_report_req: user_data, vmpl.</summary>
    internal static byte[] ReportReq(byte fill, uint vmpl = 0)
    {
        var req = new byte[96];
        req.AsSpan(0, 64).Fill(fill);
        BinaryPrimitives.WriteUInt32LittleEndian(req.AsSpan(64), vmpl);
        return req;
    }

    internal static void WriteRequest(SevEsGuest g, byte[] page) => g.Memory.Write(RequestGpa, page);

    internal static byte[] ResponsePage(SevEsGuest g)
    {
        var page = new byte[0x1000];
        g.Memory.Read(ResponseGpa, page);
        return page;
    }

    /// <summary>The guest driver's verify_and_dec_payload checks, then the decrypted MSG_REPORT_RSP.</summary>
    internal static byte[] OpenReportResponse(byte[] vmpck, byte[] page, ulong requestSeqno)
    {
        var h = SnpGuestMessage.ReadHeader(page);
        Assert.Equal(requestSeqno + 1, h.Seqno);
        Assert.Equal(SnpGuestMessage.MsgReportRsp, h.MsgType);
        Assert.Equal((byte)1, h.MsgVersion);
        var plain = SnpGuestMessage.Open(vmpck, page);
        Assert.NotNull(plain);
        return plain;
    }

    internal static byte[] Report(byte[] rsp)
    {
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(rsp));
        Assert.Equal((uint)SnpAttestation.ReportSize, BinaryPrimitives.ReadUInt32LittleEndian(rsp.AsSpan(4)));
        return rsp[SnpAttestation.ResponseReportOffset..];
    }

    [Fact]
    public void A_report_request_through_the_ghcb_returns_a_report_signed_by_the_emulated_vcek_with_the_launch_fields()
    {
        using var g = Launch(idBlock: true);
        byte[] vmpck = Start(g);
        Assert.NotEqual(new byte[32], vmpck);
        WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(0xA5)));
        var (info1, info2, _) = Issue(g, GuestRequest, RequestGpa, ResponseGpa);
        Assert.Equal((0UL, 0UL), (info1, info2));

        byte[] report = Report(OpenReportResponse(vmpck, ResponsePage(g), 1));
        byte[] vcek = SnpAttestation.VcekPublicKey(g.Kernel);
        Assert.True(SnpAttestation.VerifySignature(report, vcek));
        Span<byte> r = report;
        Assert.Equal(SnpAttestation.ReportVersion, BinaryPrimitives.ReadUInt32LittleEndian(r[SnpAttestation.OffVersion..]));
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(r[SnpAttestation.OffGuestSvn..]));
        Assert.Equal(SnpLaunch.PolicyReservedMustBeOne | SnpLaunch.PolicySmt, BinaryPrimitives.ReadUInt64LittleEndian(r[SnpAttestation.OffPolicy..]));
        Assert.Equal(Enumerable.Repeat((byte)0x11, 16), r.Slice(SnpAttestation.OffFamilyId, 16).ToArray());
        Assert.Equal(Enumerable.Repeat((byte)0x22, 16), r.Slice(SnpAttestation.OffImageId, 16).ToArray());
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(r[SnpAttestation.OffVmpl..]));
        Assert.Equal(SnpAttestation.SignatureAlgoEcdsaP384Sha384, BinaryPrimitives.ReadUInt32LittleEndian(r[SnpAttestation.OffSignatureAlgo..]));
        Assert.Equal(Enumerable.Repeat((byte)0xA5, 64), r.Slice(SnpAttestation.OffReportData, 64).ToArray());
        Assert.Equal(s_hostData, r.Slice(SnpAttestation.OffHostData, 32).ToArray());
        // id_key[1028] at 0x240 of the ID authentication structure (QEMU's struct sev_snp_id_authentication); no
        // AUTHOR_KEY_EN at SNP_LAUNCH_FINISH, so no author key digest.
        Assert.Equal(SHA384.HashData(IdBlock().Auth.AsSpan(0x240, 1028)), r.Slice(SnpAttestation.OffIdKeyDigest, 48).ToArray());
        Assert.Equal(new byte[48], r.Slice(SnpAttestation.OffAuthorKeyDigest, 48).ToArray());
        Assert.NotEqual(new byte[48], r.Slice(SnpAttestation.OffMeasurement, 48).ToArray());
        Assert.NotEqual(new byte[32], r.Slice(SnpAttestation.OffReportId, 32).ToArray());
        Assert.Equal(Enumerable.Repeat((byte)0xff, 32), r.Slice(SnpAttestation.OffReportIdMa, 32).ToArray());
        Assert.NotEqual(new byte[64], r.Slice(SnpAttestation.OffChipId, 64).ToArray());
        Assert.Equal(BinaryPrimitives.ReadUInt64LittleEndian(r[SnpAttestation.OffCurrentTcb..]),
            BinaryPrimitives.ReadUInt64LittleEndian(r[SnpAttestation.OffReportedTcb..]));

        // A changed byte breaks the signature.
        report[SnpAttestation.OffReportData] ^= 1;
        Assert.False(SnpAttestation.VerifySignature(report, vcek));
    }

    [Fact]
    public void Sequence_numbers_advance_by_two_and_the_same_launch_measures_the_same_while_report_ids_differ_per_guest()
    {
        byte[] first, second;
        using (var g = Launch())
        {
            byte[] vmpck = Start(g);
            WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(1)));
            Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
            first = Report(OpenReportResponse(vmpck, ResponsePage(g), 1));
            // The next request is seqno 3 (snp_inc_msg_seqno: "+= 2"); its response 4.
            WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 3, SnpGuestMessage.MsgReportReq, 1, ReportReq(2)));
            Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
            byte[] again = Report(OpenReportResponse(vmpck, ResponsePage(g), 3));
            Assert.Equal(first.AsSpan(SnpAttestation.OffReportId, 32).ToArray(), again.AsSpan(SnpAttestation.OffReportId, 32).ToArray());
            Assert.Equal(Enumerable.Repeat((byte)2, 64), again.AsSpan(SnpAttestation.OffReportData, 64).ToArray());
        }
        using (var g = Launch())
        {
            byte[] vmpck = Start(g);
            WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(1)));
            Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
            second = Report(OpenReportResponse(vmpck, ResponsePage(g), 1));
        }
        Assert.Equal(first.AsSpan(SnpAttestation.OffMeasurement, 48).ToArray(), second.AsSpan(SnpAttestation.OffMeasurement, 48).ToArray());
        Assert.NotEqual(first.AsSpan(SnpAttestation.OffReportId, 32).ToArray(), second.AsSpan(SnpAttestation.OffReportId, 32).ToArray());
    }

    [Fact]
    public void Bad_messages_get_invalid_param_in_sw_exit_info_2_the_response_page_keeps_the_last_response_and_the_counter_stays()
    {
        using var g = Launch();
        byte[] vmpck = Start(g);
        WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(1)));
        Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
        byte[] last = ResponsePage(g);

        var bad = new List<(string What, byte[] Page)>
        {
            ("replayed seqno", SnpGuestMessage.Seal(vmpck, 0, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(1))),
            ("skipped seqno", SnpGuestMessage.Seal(vmpck, 0, 5, SnpGuestMessage.MsgReportReq, 1, ReportReq(1))),
            ("sealed with VMPCK0, header names VMPCK1", SnpGuestMessage.Seal(vmpck, 1, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(1))),
            ("MSG_CPUID_REQ (not modelled)", SnpGuestMessage.Seal(vmpck, 0, 3, 1, 1, new byte[32])),
            ("MSG_KEY_REQ version 2 (not modelled)", SnpGuestMessage.Seal(vmpck, 0, 3, SnpDerivedKey.MsgKeyReq, 2, new byte[40])),
            ("response type as request", SnpGuestMessage.Seal(vmpck, 0, 3, SnpGuestMessage.MsgReportRsp, 1, ReportReq(1))),
            ("VMPCK 4", SnpGuestMessage.Seal(vmpck, 4, 3, SnpGuestMessage.MsgReportReq, 1, ReportReq(1))),
        };
        var tampered = SnpGuestMessage.Seal(vmpck, 0, 3, SnpGuestMessage.MsgReportReq, 1, ReportReq(1));
        tampered[SnpGuestMessage.HeaderSize] ^= 0x80;
        bad.Add(("ciphertext changed", tampered));
        var badAad = SnpGuestMessage.Seal(vmpck, 0, 3, SnpGuestMessage.MsgReportReq, 1, ReportReq(1));
        badAad[SnpGuestMessage.OffMsgVersion] = 2;
        bad.Add(("header changed after sealing", badAad));
        foreach (var (what, page) in bad)
        {
            g.Memory.Write(ResponseGpa, new byte[0x1000]); // KVM writes its buffer back: the previous response
            WriteRequest(g, page);
            var (info1, info2, _) = Issue(g, GuestRequest, RequestGpa, ResponseGpa);
            Assert.True((info1, info2) == (0UL, InvalidParam), $"{what}: 0x{info1:X} 0x{info2:X}");
            Assert.True(last.AsSpan().SequenceEqual(ResponsePage(g)), what);
        }
        // Failures did not move the firmware's counter: seqno 3 is still the next one.
        WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 3, SnpGuestMessage.MsgReportReq, 1, ReportReq(3)));
        Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
        Report(OpenReportResponse(vmpck, ResponsePage(g), 3));

        // A VMPL above 3 is the report's own status (INVALID_PARAM) in an authenticated response; fw_err 0.
        WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 5, SnpGuestMessage.MsgReportReq, 1, ReportReq(3, vmpl: 4)));
        Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
        byte[] rsp = OpenReportResponse(vmpck, ResponsePage(g), 5);
        Assert.Equal((uint)InvalidParam, BinaryPrimitives.ReadUInt32LittleEndian(rsp));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(rsp.AsSpan(4)));
    }

    [Fact]
    public void Each_vmpck_has_its_own_sequence_number_and_a_report_vmpl_below_the_requesters_is_refused_in_the_response()
    {
        using var g = Launch();
        Start(g);
        byte[] vmpck1 = Vmpck(g, 1);
        Assert.NotEqual(Vmpck(g, 0), vmpck1);
        // VMPCK1 belongs to VMPL1: its first message is seqno 1 whatever VMPCK0 did; a report for VMPL0 is refused.
        WriteRequest(g, SnpGuestMessage.Seal(vmpck1, 1, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(7, vmpl: 0)));
        Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
        byte[] rsp = OpenReportResponse(vmpck1, ResponsePage(g), 1);
        Assert.Equal((uint)InvalidParam, BinaryPrimitives.ReadUInt32LittleEndian(rsp));
        // VMPL1 (and up to 3) is reported.
        WriteRequest(g, SnpGuestMessage.Seal(vmpck1, 1, 3, SnpGuestMessage.MsgReportReq, 1, ReportReq(7, vmpl: 1)));
        Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
        byte[] report = Report(OpenReportResponse(vmpck1, ResponsePage(g), 3));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(report.AsSpan(SnpAttestation.OffVmpl)));
        Assert.True(SnpAttestation.VerifySignature(report, SnpAttestation.VcekPublicKey(g.Kernel)));
        // VMPCK0's counter is untouched: its first message is still seqno 1.
        WriteRequest(g, SnpGuestMessage.Seal(Vmpck(g, 0), 0, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(7, vmpl: 3)));
        Assert.Equal(0UL, Issue(g, GuestRequest, RequestGpa, ResponseGpa).Info2);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(Report(OpenReportResponse(Vmpck(g, 0), ResponsePage(g), 1)).AsSpan(SnpAttestation.OffVmpl)));
    }

    [Fact]
    public void Unaligned_or_equal_request_and_response_gpas_are_malformed_input_missing_input()
    {
        using var g = Launch();
        Start(g);
        foreach (var (req, resp) in new[] { (RequestGpa + 8, ResponseGpa), (RequestGpa, ResponseGpa + 0x800), (RequestGpa, RequestGpa) })
            foreach (ulong code in new[] { GuestRequest, ExtGuestRequest })
            {
                var (info1, info2, _) = Issue(g, code, req, resp);
                // sev_es_validate_vmgexit: GHCB_HV_RESP_MALFORMED_INPUT (2), GHCB_ERR_MISSING_INPUT (4).
                Assert.Equal((2UL, 4UL), (info1, info2));
            }
    }

    [Fact]
    public void An_extended_report_request_needs_rax_and_rbx_clears_the_certificate_table_terminator_and_keeps_rbx()
    {
        using var g = Launch();
        byte[] vmpck = Start(g);
        WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(9)));
        // Without RAX/RBX valid: GHCB_ERR_INVALID_INPUT (5), nothing sent to the firmware.
        var missing = Issue(g, ExtGuestRequest, RequestGpa, ResponseGpa);
        Assert.Equal((2UL, 5UL), (missing.Info1, missing.Info2));
        // An unaligned certificate buffer: the same.
        var unaligned = Issue(g, ExtGuestRequest, RequestGpa, ResponseGpa, rax: CertsGpa + 4, rbx: 1, raxRbxValid: true);
        Assert.Equal((2UL, 5UL), (unaligned.Info1, unaligned.Info2));

        var junk = Enumerable.Repeat((byte)0xAA, 64).ToArray();
        g.Memory.Write(CertsGpa, junk);
        var ok = Issue(g, ExtGuestRequest, RequestGpa, ResponseGpa, rax: CertsGpa, rbx: 1, raxRbxValid: true);
        Assert.Equal((0UL, 0UL, 1UL), ok);
        var certs = new byte[64];
        g.Memory.Read(CertsGpa, certs);
        Assert.Equal(new byte[24], certs[..24]); // the empty table's terminator
        Assert.Equal(junk[24..], certs[24..]);
        byte[] report = Report(OpenReportResponse(vmpck, ResponsePage(g), 1));
        Assert.True(SnpAttestation.VerifySignature(report, SnpAttestation.VcekPublicKey(g.Kernel)));

        // With no pages, the buffer is not touched.
        g.Memory.Write(CertsGpa, junk);
        WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, 3, SnpGuestMessage.MsgReportReq, 1, ReportReq(9)));
        Assert.Equal((0UL, 0UL, 0UL), Issue(g, ExtGuestRequest, RequestGpa, ResponseGpa, rax: CertsGpa, rbx: 0, raxRbxValid: true));
        g.Memory.Read(CertsGpa, certs);
        Assert.Equal(junk, certs);
    }

    [Fact]
    public void On_an_sev_es_guest_a_guest_request_is_malformed_input_missing_input()
    {
        // sev_es_validate_vmgexit: "if (!sev_snp_guest(vcpu->kvm) || …) goto vmgexit_err" with GHCB_ERR_MISSING_INPUT.
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            SevEsGuest.GhcbRequest(a, GuestRequest, RequestGpa, ResponseGpa);
            a.mov(rbx, (long)(SevEsGuest.SharedAlias + SevEsGuest.Ghcb));
            a.mov(rdi, (long)(SevEsGuest.SharedAlias + SevEsGuest.Report));
            a.mov(rax, __qword_ptr[rbx + 0x398]);
            a.mov(__qword_ptr[rdi], rax);
            a.mov(rax, __qword_ptr[rbx + 0x3a0]);
            a.mov(__qword_ptr[rdi + 8], rax);
            SevEsGuest.Terminate(a, 0x62);
        });
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal((2UL, 4UL), (g.ReportQword(0), g.ReportQword(1)));
    }

    [Fact]
    public void A_request_page_outside_every_memslot_fails_kvm_run_with_eio()
    {
        using var g = Launch();
        Start(g);
        WriteCommand(g, GuestRequest, 0x10_0000, ResponseGpa, 0, 0, raxRbxValid: false);
        // kvm_read_guest fails: snp_handle_guest_req returns -EIO, which KVM_RUN returns.
        Assert.Equal(Errno.EIO, Assert.Throws<KvmException>(() => g.Vcpu.RunBounded()).Errno);
    }

    [Fact]
    public void The_secrets_page_is_the_firmwares_not_the_source_and_each_guest_gets_its_own_vmpck0()
    {
        using var a = Launch();
        using var b = Launch();
        byte[] vmpckA = Start(a), vmpckB = Start(b);
        // The source page was all 0x5a: the firmware wrote its own secrets page (SnpPsp.SecretsPage).
        Assert.False(vmpckA.All(x => x == 0x5a));
        Assert.NotEqual(vmpckA, vmpckB);
        // A message sealed with another guest's VMPCK0 fails authentication: INVALID_PARAM.
        WriteRequest(a, SnpGuestMessage.Seal(vmpckB, 0, 1, SnpGuestMessage.MsgReportReq, 1, ReportReq(1)));
        var (info1, info2, _) = Issue(a, GuestRequest, RequestGpa, ResponseGpa);
        Assert.Equal((0UL, InvalidParam), (info1, info2));
    }
}
