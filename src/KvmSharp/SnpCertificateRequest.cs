// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// How the VMM answers a KVM_EXIT_SNP_REQ_CERTS: the errno it writes into <c>kvm_run.snp_req_certs.ret</c>
/// (Documentation/virt/kvm/api.rst of "[PATCH v7 1/2] KVM: Introduce KVM_EXIT_SNP_REQ_CERTS", Michael Roth, 2026-01-09).
/// </summary>
public enum SnpCertificateResult : ulong
{
    /// <summary>0: the table is in guest memory; KVM issues the guest request to the firmware (SW_EXITINFO2 0 on success).</summary>
    Success = 0,
    /// <summary>EIO: the guest gets SW_EXITINFO2 0xffffffff00000000 (SNP_GUEST_VMM_ERR_GENERIC).</summary>
    GenericError = 5,
    /// <summary>EAGAIN: the guest gets 0x0000000200000000 (SNP_GUEST_VMM_ERR_BUSY) and retries later.</summary>
    Busy = 11,
    /// <summary>ENOSPC: the guest gets 0x0000000100000000 (SNP_GUEST_VMM_ERR_INVALID_LEN) and RBX = the pages needed.</summary>
    TooSmall = 28,
}

/// <summary>
/// A KVM_EXIT_SNP_REQ_CERTS read in place from the kvm_run page (valid until the next Run): the guest's certificate
/// buffer (RAX, page aligned, not otherwise checked by KVM) and its page count (RBX). The VMM writes an
/// <see cref="SnpCertificateTable"/> there (through its shared mapping) and calls <see cref="Complete"/>; the next
/// <see cref="Vcpu.Run"/> completes the guest's request. Any other <c>ret</c> makes that Run fail with EINVAL.
/// </summary>
public readonly ref struct SnpCertificateRequest
{
    private readonly Span<byte> _run;

    internal SnpCertificateRequest(Span<byte> run) => _run = run;

    /// <summary>kvm_run.snp_req_certs.gpa: the guest's buffer (its RAX).</summary>
    public ulong Gpa => BinaryPrimitives.ReadUInt64LittleEndian(_run[KvmRunLayout.snp_req_certs_gpa..]);

    /// <summary>kvm_run.snp_req_certs.npages: the guest's buffer size in 4 KiB pages (its RBX).</summary>
    public ulong Pages => BinaryPrimitives.ReadUInt64LittleEndian(_run[KvmRunLayout.snp_req_certs_npages..]);

    /// <summary>The buffer size in bytes (<see cref="Pages"/> × 4096, saturating).</summary>
    public ulong Bytes => Pages > ulong.MaxValue / 4096 ? ulong.MaxValue : Pages * 4096;

    /// <summary>kvm_run.snp_req_certs.ret as it is now (0 at exit).</summary>
    public ulong Ret => BinaryPrimitives.ReadUInt64LittleEndian(_run[KvmRunLayout.snp_req_certs_ret..]);

    /// <summary>
    /// Writes <paramref name="result"/> into ret and, for <see cref="SnpCertificateResult.TooSmall"/>,
    /// <paramref name="pagesNeeded"/> into npages (what the guest gets in RBX).
    /// </summary>
    public void Complete(SnpCertificateResult result, ulong pagesNeeded = 0)
    {
        if (result == SnpCertificateResult.TooSmall)
            BinaryPrimitives.WriteUInt64LittleEndian(_run[KvmRunLayout.snp_req_certs_npages..], pagesNeeded);
        CompleteRaw((ulong)result);
    }

    /// <summary>Writes any value into ret (a value outside <see cref="SnpCertificateResult"/> makes the next Run fail with EINVAL).</summary>
    public void CompleteRaw(ulong ret) => BinaryPrimitives.WriteUInt64LittleEndian(_run[KvmRunLayout.snp_req_certs_ret..], ret);
}
