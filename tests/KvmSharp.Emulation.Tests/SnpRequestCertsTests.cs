// SPDX-License-Identifier: MIT
using System.Security.Cryptography.X509Certificates;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Kernel;
using static KvmSharp.Emulation.Tests.SnpGuestRequestTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SNP certificate fetching on the emulator (after 6.18: "[PATCH v7 1/2] KVM: Introduce KVM_EXIT_SNP_REQ_CERTS for SNP
/// certificate-fetching" and "[PATCH v7 2/2] KVM: SEV: Add KVM_SEV_SNP_ENABLE_REQ_CERTS command", Michael Roth,
/// 2026-01-09), taken only when <see cref="EmulatorConfig.SnpReqCertsExit"/> is set. The guest of
/// <see cref="SnpGuestRequestTests"/> issues an extended report request; the VMM answers the exit with the emulated
/// certificate chain (<see cref="SnpEmulatedCertificates"/>) in an <see cref="SnpCertificateTable"/>.
/// </summary>
public sealed class SnpRequestCertsTests
{
    private static EmulatorConfig WithCerts(uint exit = 43) => EmulatorConfig.X86_64() with { SnpReqCertsExit = exit };

    private static SevEsGuest LaunchWithCerts(uint exit = 43) => Launch(config: WithCerts(exit), init: l =>
    {
        l.Init();
        l.EnableRequestCertificates();
    });

    /// <summary>Seals a report request with <paramref name="seqno"/> and starts the extended request (RAX, RBX valid).</summary>
    private static void Request(SevEsGuest g, byte[] vmpck, ulong seqno, ulong pages)
    {
        WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, seqno, SnpGuestMessage.MsgReportReq, 1, ReportReq(0x3C)));
        WriteCommand(g, ExtGuestRequest, RequestGpa, ResponseGpa, CertsGpa, pages, raxRbxValid: true);
    }

    private static (ulong Info1, ulong Info2, ulong Rbx) Result3(SevEsGuest g) =>
        (g.Memory.Read<ulong>(Result), g.Memory.Read<ulong>(Result + 8), g.Memory.Read<ulong>(Result + 16));

    private static byte[] Bytes(SevEsGuest g, ulong gpa, int length)
    {
        var b = new byte[length];
        g.Memory.Read(gpa, b);
        return b;
    }

    private static byte[] EmulatedTable(SevEsGuest g)
    {
        var chain = SnpEmulatedCertificates.For(g.Kernel);
        return SnpCertificateTable.Build([
            new(SnpCertificateTable.VcekGuid, chain.Vcek), new(SnpCertificateTable.AskGuid, chain.Ask), new(SnpCertificateTable.ArkGuid, chain.Ark)]);
    }

    [Fact]
    public void On_the_6_18_default_there_is_no_enable_command_no_attribute_and_no_exit()
    {
        using var g = Launch(init: l =>
        {
            l.Init();
            var e = Assert.Throws<SevCommandException>(l.EnableRequestCertificates);
            Assert.Equal(Errno.EINVAL, e.Errno);
        });
        Assert.False(SnpLaunch.SupportsRequestCertificates(g.Kvm));
        byte[] vmpck = Start(g);
        g.Memory.Write(CertsGpa, Enumerable.Repeat((byte)0xAA, 24).ToArray());
        Request(g, vmpck, 1, 1);
        ExpectIoExit(g); // straight through: the stub's empty table
        Assert.Equal((0UL, 0UL, 1UL), Result3(g));
        Assert.Equal(new byte[24], Bytes(g, CertsGpa, 24));
    }

    [Fact]
    public void With_the_switch_the_attribute_reads_1_and_the_exit_appears_only_after_enable_request_certs()
    {
        using var plain = Launch(config: WithCerts());
        Assert.True(SnpLaunch.SupportsRequestCertificates(plain.Kvm));
        byte[] vmpck = Start(plain);
        Request(plain, vmpck, 1, 1);
        ExpectIoExit(plain);
        Assert.Equal((0UL, 0UL, 1UL), Result3(plain));

        using var g = LaunchWithCerts();
        vmpck = Start(g);
        Request(g, vmpck, 1, 2);
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.IsSnpRequestCertificates, exit.ToString());
        Assert.Equal(KvmExitReason.KVM_EXIT_SNP_REQ_CERTS, exit.Reason);
        var req = exit.SnpRequestCertificates;
        Assert.Equal((CertsGpa, 2UL, 0UL), (req.Gpa, req.Pages, req.Ret));
    }

    [Fact]
    public void Enable_request_certs_after_a_vcpu_exists_is_einval()
    {
        using var g = Launch(config: WithCerts());
        // The launch created the vCPU; a second SnpLaunch handle on the same VM issues the command late.
        using var late = SnpLaunch.Open(g.Vm);
        var refused = Assert.Throws<SevCommandException>(late.EnableRequestCertificates);
        Assert.Equal(Errno.EINVAL, refused.Errno);
    }

    [Fact]
    public void Completing_with_0_gives_the_guest_the_report_and_the_table_and_the_report_verifies_through_the_chain()
    {
        using var g = LaunchWithCerts();
        byte[] vmpck = Start(g);
        byte[] table = EmulatedTable(g);
        ulong pages = SnpCertificateTable.PagesNeeded(table);
        Request(g, vmpck, 1, pages);
        var exit = g.Vcpu.RunBounded();
        var req = exit.SnpRequestCertificates;
        Assert.True(req.Bytes >= (ulong)table.Length);
        g.Memory.Write(req.Gpa, table);
        req.Complete(SnpCertificateResult.Success);
        ExpectIoExit(g);
        Assert.Equal((0UL, 0UL, pages), Result3(g));

        // The guest's view: report from the response page, certificates from its buffer.
        byte[] report = Report(OpenReportResponse(vmpck, ResponsePage(g), 1));
        var entries = SnpCertificateTable.Parse(Bytes(g, CertsGpa, (int)(pages * 4096)));
        Assert.Equal([SnpCertificateTable.VcekGuid, SnpCertificateTable.AskGuid, SnpCertificateTable.ArkGuid], entries.Select(e => e.Guid));
        using var vcek = X509CertificateLoader.LoadCertificate(entries[0].Data);
        using var ask = X509CertificateLoader.LoadCertificate(entries[1].Data);
        using var ark = X509CertificateLoader.LoadCertificate(entries[2].Data);
        using var vcekKey = vcek.GetECDsaPublicKey();
        Assert.NotNull(vcekKey);
        Assert.True(SnpAttestation.VerifySignature(report, vcekKey.ExportSubjectPublicKeyInfo()));
        Assert.Contains("EMULATED", ark.Subject, StringComparison.Ordinal);

        // VCEK → ASK → ARK, the ARK the only trust anchor; ARK and ASK sign with RSASSA-PSS as AMD's do.
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ark);
        chain.ChainPolicy.ExtraStore.Add(ask);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = new DateTime(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        Assert.True(chain.Build(vcek), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
        Assert.Equal([vcek.Thumbprint, ask.Thumbprint, ark.Thumbprint], chain.ChainElements.Select(e => e.Certificate.Thumbprint));
        Assert.Equal("1.2.840.113549.1.1.10", ask.SignatureAlgorithm.Value); // id-RSASSA-PSS
        Assert.Equal("1.2.840.113549.1.1.10", vcek.SignatureAlgorithm.Value);
    }

    [Fact]
    public void Enospc_gives_the_guest_invalid_len_and_the_needed_pages_in_rbx_without_a_firmware_request()
    {
        using var g = LaunchWithCerts();
        byte[] vmpck = Start(g);
        byte[] table = EmulatedTable(g);
        ulong needed = SnpCertificateTable.PagesNeeded(table);
        Assert.True(needed >= 1);
        Request(g, vmpck, 1, 0); // no buffer at all: too small for any table
        g.Vcpu.RunBounded().SnpRequestCertificates.Complete(SnpCertificateResult.TooSmall, needed);
        ExpectIoExit(g);
        // SNP_GUEST_ERR(SNP_GUEST_VMM_ERR_INVALID_LEN, 0) in sw_exit_info_2; RBX = npages.
        Assert.Equal((0UL, 1UL << 32, needed), Result3(g));
        // The firmware saw nothing: the same sequence number still works, with enough pages this time.
        Request(g, vmpck, 1, needed);
        var req = g.Vcpu.RunBounded().SnpRequestCertificates;
        Assert.Equal(needed, req.Pages);
        g.Memory.Write(req.Gpa, table);
        req.Complete(SnpCertificateResult.Success);
        ExpectIoExit(g);
        Assert.Equal((0UL, 0UL, needed), Result3(g));
        Report(OpenReportResponse(vmpck, ResponsePage(g), 1));
    }

    [Theory]
    [InlineData(SnpCertificateResult.Busy, 0x0000_0002_0000_0000UL)]
    [InlineData(SnpCertificateResult.GenericError, 0xFFFF_FFFF_0000_0000UL)]
    public void Eagain_and_eio_become_the_guests_busy_and_generic_vmm_errors(SnpCertificateResult result, ulong info2)
    {
        using var g = LaunchWithCerts();
        byte[] vmpck = Start(g);
        Request(g, vmpck, 1, 4);
        g.Vcpu.RunBounded().SnpRequestCertificates.Complete(result, pagesNeeded: 99);
        ExpectIoExit(g);
        Assert.Equal((0UL, info2, 4UL), Result3(g)); // npages is only consumed for ENOSPC
    }

    [Fact]
    public void Another_ret_fails_kvm_run_with_einval_and_the_next_run_resumes_the_guest_without_a_request()
    {
        using var g = LaunchWithCerts();
        byte[] vmpck = Start(g);
        Request(g, vmpck, 1, 4);
        var before = ResponsePage(g);
        g.Vcpu.RunBounded().SnpRequestCertificates.CompleteRaw(22); // EINVAL is not one of 0, ENOSPC, EAGAIN, EIO
        var e = Assert.Throws<KvmException>(() => g.Vcpu.RunBounded());
        Assert.Equal(Errno.EINVAL, e.Errno);
        // complete_userspace_io was consumed: the guest resumes with svm_vmgexit_success's 0/0, no response written.
        ExpectIoExit(g);
        Assert.Equal((0UL, 0UL, 4UL), Result3(g));
        Assert.Equal(before, ResponsePage(g));
    }

    [Fact]
    public void The_exit_number_follows_the_configuration_v7_used_42()
    {
        using var g = LaunchWithCerts(exit: 42);
        Assert.Equal(42u, g.Kvm.Proposals.SnpReqCertsExit);
        byte[] vmpck = Start(g);
        Request(g, vmpck, 1, 1);
        var exit = g.Vcpu.RunBounded();
        Assert.Equal((KvmExitReason)42, exit.Reason);
        Assert.True(exit.IsSnpRequestCertificates);
        Assert.Equal(CertsGpa, exit.SnpRequestCertificates.Gpa);
        Assert.StartsWith("KVM_EXIT_SNP_REQ_CERTS", exit.ToString(), StringComparison.Ordinal);
    }
}
