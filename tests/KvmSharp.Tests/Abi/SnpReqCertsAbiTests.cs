// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp.Tests.Abi;

/// <summary>
/// KVM_EXIT_SNP_REQ_CERTS (after 6.18; not in the vendored 6.18 headers, so the oracle cannot check it): the literal
/// values of "[PATCH v7 1/2] KVM: Introduce KVM_EXIT_SNP_REQ_CERTS" / "[PATCH v7 2/2] KVM: SEV: Add
/// KVM_SEV_SNP_ENABLE_REQ_CERTS command", and VcpuExit's decoding of <c>struct kvm_exit_snp_req_certs</c>.
/// </summary>
public class SnpReqCertsAbiTests
{
    [Fact]
    public void Numbers_and_the_kvm_run_member_match_the_series()
    {
        // 42 in v7; upstream after 6.18 has KVM_EXIT_ARM_LDST64B at 42 and this exit at 43.
        Assert.Equal(43u, (uint)KvmExitReason.KVM_EXIT_SNP_REQ_CERTS);
        Assert.Equal(43u, UapiProposals.Default.SnpReqCertsExit);
        // enum sev_cmd_id: KVM_SEV_SNP_LAUNCH_START = 100, _UPDATE, _FINISH, KVM_SEV_SNP_ENABLE_REQ_CERTS.
        Assert.Equal(KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_FINISH + 1, KvmMemoryEncrypt.KVM_SEV_SNP_ENABLE_REQ_CERTS);
        Assert.Equal(2UL, KvmConstants.KVM_X86_SEV_SNP_REQ_CERTS);
        // struct kvm_exit_snp_req_certs { __u64 gpa; __u64 npages; __u64 ret; } at the exit union (32).
        Assert.Equal((32, 40, 48), (KvmRunLayout.snp_req_certs_gpa, KvmRunLayout.snp_req_certs_npages, KvmRunLayout.snp_req_certs_ret));
        Assert.True(KvmRunLayout.snp_req_certs_ret + 8 <= KvmRunLayout.exit_union + 256);
    }

    [Fact]
    public void VcpuExit_decodes_the_exit_with_the_kernels_number_and_writes_the_answer_in_place()
    {
        var page = new byte[KvmRunLayout.size];
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(KvmRunLayout.exit_reason), 42);
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(32), 0xD000);
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(40), 2);
        // A kernel with the v7 number: decoded; with the upstream number: not this exit.
        Assert.False(new VcpuExit(page, interrupted: false).IsSnpRequestCertificates);
        Assert.False(new VcpuExit(page, interrupted: true, 42).IsSnpRequestCertificates);
        var exit = new VcpuExit(page, interrupted: false, 42);
        Assert.True(exit.IsSnpRequestCertificates);
        var req = exit.SnpRequestCertificates;
        Assert.Equal((0xD000UL, 2UL, 8192UL, 0UL), (req.Gpa, req.Pages, req.Bytes, req.Ret));
        req.Complete(SnpCertificateResult.TooSmall, 5);
        Assert.Equal((28UL, 5UL), (BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(48)), BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(40))));
        req.Complete(SnpCertificateResult.Busy, 9); // npages only for ENOSPC
        Assert.Equal((11UL, 5UL), (BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(48)), BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(40))));
        Assert.Equal((5UL, 0UL), ((ulong)SnpCertificateResult.GenericError, (ulong)SnpCertificateResult.Success));
        Assert.Throws<InvalidOperationException>(() => { _ = new VcpuExit(page, interrupted: false).SnpRequestCertificates.Gpa; });
    }

    [Fact]
    public void The_certificate_table_has_24_byte_guid_offset_length_entries_a_zero_terminator_and_rfc4122_guid_bytes()
    {
        byte[] a = [1, 2, 3], b = [4, 5];
        byte[] table = SnpCertificateTable.Build([new(SnpCertificateTable.VcekGuid, a), new(SnpCertificateTable.ArkGuid, b)]);
        Assert.Equal(3 * 24 + 5, table.Length);
        // 63da758d-e664-4564-adc5-f4b93be8accd in RFC 4122 (big-endian) order, as the guest's uuid bytes.
        Assert.Equal(Convert.FromHexString("63da758de6644564adc5f4b93be8accd"), table[..16]);
        Assert.Equal((72u, 3u), (BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(16)), BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(20))));
        Assert.Equal((75u, 2u), (BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(40)), BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(44))));
        Assert.Equal(new byte[24], table[48..72]);
        var parsed = SnpCertificateTable.Parse(table);
        Assert.Equal([SnpCertificateTable.VcekGuid, SnpCertificateTable.ArkGuid], parsed.Select(e => e.Guid));
        Assert.Equal(a, parsed[0].Data);
        Assert.Equal(b, parsed[1].Data);
        Assert.Equal(1UL, SnpCertificateTable.PagesNeeded(table));
        Assert.Empty(SnpCertificateTable.Parse(new byte[24]));
        Assert.Throws<FormatException>(() => SnpCertificateTable.Parse(table.AsSpan(0, 20)));
        Assert.Equal(new Guid("4ab7b379-bbac-4fe4-a02f-05aef327c782"), SnpCertificateTable.AskGuid);
    }
}
