// SPDX-License-Identifier: MIT
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Abi;

/// <summary>
/// KVM_MEMORY_ENCRYPT_OP and the vendor launch sub-commands: SEV / SEV-ES (enum sev_cmd_id), SEV-SNP (from 100) and
/// TDX (enum kvm_tdx_cmd_id). Numbers from include/uapi/linux/kvm.h and
/// arch/x86/include/uapi/asm/kvm.h.
/// </summary>
public static class KvmMemoryEncrypt
{
    /// <summary>
    /// <c>_IOWR(KVMIO, 0xba, unsigned long)</c> = 0xC008AEBA (include/uapi/linux/kvm.h). The encoded size is that of
    /// <c>unsigned long</c>; the argument really points at a <see cref="kvm_tdx_cmd"/> or <see cref="kvm_sev_cmd"/>.
    /// </summary>
    public static readonly uint KVM_MEMORY_ENCRYPT_OP = _IOWR(KvmIoctls.KVMIO, 0xba, sizeof(ulong));

    // ---- TDX: enum kvm_tdx_cmd_id ----
    public const uint KVM_TDX_CAPABILITIES = 0;
    public const uint KVM_TDX_INIT_VM = 1;
    public const uint KVM_TDX_INIT_VCPU = 2;
    public const uint KVM_TDX_INIT_MEM_REGION = 3;
    public const uint KVM_TDX_FINALIZE_VM = 4;
    public const uint KVM_TDX_GET_CPUID = 5;

    /// <summary>kvm_tdx_cmd.flags of KVM_TDX_INIT_MEM_REGION: extend the TD measurement with the added pages.</summary>
    public const uint KVM_TDX_MEASURE_MEMORY_REGION = 1u << 0;

    // ---- SEV: enum sev_cmd_id (SNP commands start at 100) ----
    public const uint KVM_SEV_INIT = 0;
    public const uint KVM_SEV_ES_INIT = 1;
    public const uint KVM_SEV_LAUNCH_START = 2;
    public const uint KVM_SEV_LAUNCH_UPDATE_DATA = 3;
    public const uint KVM_SEV_LAUNCH_UPDATE_VMSA = 4;
    public const uint KVM_SEV_LAUNCH_SECRET = 5;
    public const uint KVM_SEV_LAUNCH_MEASURE = 6;
    public const uint KVM_SEV_LAUNCH_FINISH = 7;
    public const uint KVM_SEV_GUEST_STATUS = 16;
    public const uint KVM_SEV_INIT2 = 22;
    public const uint KVM_SEV_SNP_LAUNCH_START = 100;
    public const uint KVM_SEV_SNP_LAUNCH_UPDATE = 101;
    public const uint KVM_SEV_SNP_LAUNCH_FINISH = 102;
    /// <summary>
    /// Turns on KVM_EXIT_SNP_REQ_CERTS for an SNP VM before any vCPU exists ("KVM: SEV: Add
    /// KVM_SEV_SNP_ENABLE_REQ_CERTS command", [PATCH v7 2/2], Michael Roth, 2026-01-09; after 6.18).
    /// </summary>
    public const uint KVM_SEV_SNP_ENABLE_REQ_CERTS = 103;

    // ---- kvm_sev_snp_launch_update.type ("kept in sync with firmware values") ----
    public const byte KVM_SEV_SNP_PAGE_TYPE_NORMAL = 0x1;
    public const byte KVM_SEV_SNP_PAGE_TYPE_ZERO = 0x3;
    public const byte KVM_SEV_SNP_PAGE_TYPE_UNMEASURED = 0x4;
    public const byte KVM_SEV_SNP_PAGE_TYPE_SECRETS = 0x5;
    public const byte KVM_SEV_SNP_PAGE_TYPE_CPUID = 0x6;

    // ---- kvm_sev_snp_launch_finish blob sizes ----
    /// <summary>Bytes of the ID block at id_block_uaddr (KVM_SEV_SNP_LAUNCH_FINISH with id_block_en).</summary>
    public const int KVM_SEV_SNP_ID_BLOCK_SIZE = 96;
    /// <summary>Bytes of the ID authentication structure at id_auth_uaddr.</summary>
    public const int KVM_SEV_SNP_ID_AUTH_SIZE = 4096;
    /// <summary>Bytes of kvm_sev_snp_launch_finish.host_data.</summary>
    public const int KVM_SEV_SNP_FINISH_DATA_SIZE = 32;
}
