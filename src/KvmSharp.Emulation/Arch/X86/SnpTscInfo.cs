// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// SEV-SNP Secure TSC on the emulated PSP and CPU. The KVM side is "KVM: SVM: Enable Secure TSC for SNP guests"
/// (Nikunj A Dadhania, v11 posted by Sean Christopherson 2025-08-19, merged for Linux 6.18; arch/x86/kvm/svm/sev.c):
/// the VMM sets SVM_SEV_FEAT_SECURE_TSC (bit 9) in KVM_SEV_INIT2's vmsa_features (SNP VMs only, when
/// KVM_X86_SEV_VMSA_FEATURES offers it), may set the guest's rate with KVM_SET_TSC_KHZ on the VM before any vCPU,
/// and snp_launch_start passes kvm-&gt;arch.default_tsc_khz as DESIRED_TSC_FREQ. vCPUs get guest_tsc_protected
/// (sev_vcpu_create), so the vCPU's KVM_SET_TSC_KHZ is EINVAL and x86.c drops offset changes (kvm_vcpu_write_tsc_offset,
/// __kvm_synchronize_tsc, a guest's MSR_IA32_TSC write); sev_es_recalc_msr_intercepts stops intercepting reads of
/// MSR_AMD64_GUEST_TSC_FREQ (0xC0010134). The guest side is arch/x86/coco/sev/core.c snp_get_tsc_info (MSG_TSC_INFO_REQ
/// through the guest message path, VMPCK = the guest's VMPL, message version 1), snp_secure_tsc_init (GUEST_TSC_FREQ
/// bits 17:0 in MHz, reduced by the secrets page's TSC_FACTOR: SNP_SCALE_TSC_FREQ) and vc-handle.c
/// __vc_handle_secure_tsc_msrs (the guest answers its own #VC for MSR_IA32_TSC / GUEST_TSC_FREQ).
/// <para>
/// <b>The PSP's numbers are a model</b>: GUEST_TSC_SCALE = DESIRED_TSC_FREQ / the host's tsc_khz in 8.32 fixed point,
/// GUEST_TSC_OFFSET such that the guest TSC reads 0 at SNP_LAUNCH_START (one offset for every vCPU, so their TSCs
/// agree), GUEST_TSC_FREQ = DESIRED_TSC_FREQ / 1000 MHz, TSC_FACTOR 0 (the emulated TSC runs at its nominal rate).
/// MSG_TSC_INFO_REQ (type 17, version 1, 128 reserved bytes) → MSG_TSC_INFO_RSP (type 18, 128 bytes: status u32,
/// reserved u32, tsc_scale u64, tsc_offset u64, tsc_factor u32, reserved[100]; arch/x86/include/asm/sev.h
/// struct snp_tsc_info_req / snp_tsc_info_resp). A request shorter than 128 bytes or with a non-zero reserved byte, or
/// from a guest without Secure TSC, gets status INVALID_PARAM and zero fields (the model's answer; not confirmed on
/// hardware).
/// </para>
/// </summary>
public static class SnpTscInfo
{
    /// <summary>enum msg_type (arch/x86/include/asm/sev.h): SNP_MSG_TSC_INFO_REQ = 17.</summary>
    public const byte MsgTscInfoReq = 17;

    /// <summary>enum msg_type: SNP_MSG_TSC_INFO_RSP.</summary>
    public const byte MsgTscInfoRsp = 18;

    /// <summary>SNP_TSC_INFO_REQ_SZ: sizeof(struct snp_tsc_info_req), all reserved.</summary>
    public const int RequestSize = 128;

    /// <summary>sizeof(struct snp_tsc_info_resp).</summary>
    public const int ResponseSize = 128;

    /// <summary>struct snp_tsc_info_resp field offsets.</summary>
    public const int OffStatus = 0x00, OffTscScale = 0x08, OffTscOffset = 0x10, OffTscFactor = 0x18;

    /// <summary>struct snp_secrets_page: tsc_factor (u32) after the SVSM fields.</summary>
    public const int SecretsTscFactor = 0x160;

    /// <summary>MSR_AMD64_GUEST_TSC_FREQ (arch/x86/include/asm/msr-index.h).</summary>
    public const uint MsrGuestTscFreq = 0xC001_0134;

    /// <summary>The model's TSC_FACTOR (see the class remarks).</summary>
    public const uint TscFactor = 0;

    /// <summary>The firmware's Secure TSC parameters of one guest context.</summary>
    internal sealed record Parameters(ulong Scale, long Offset, uint DesiredTscKhz);

    private static readonly ConditionalWeakTable<SevInfo, Parameters> s_guests = [];

    /// <summary>
    /// SNP_LAUNCH_START with Secure TSC: the firmware fixes the guest's scale and offset from DESIRED_TSC_FREQ
    /// (<paramref name="desiredTscKhz"/>) and the host's TSC rate (model, see the class remarks).
    /// </summary>
    internal static void LaunchStart(SevInfo sev, uint desiredTscKhz, uint hostTscKhz)
    {
        ulong scale = (ulong)(((UInt128)desiredTscKhz << 32) / hostTscKhz);
        ulong now = (ulong)Stopwatch.GetTimestamp();
        long offset = unchecked(-(long)(ulong)(((UInt128)now * scale) >> 32));
        s_guests.AddOrUpdate(sev, new Parameters(scale, offset, desiredTscKhz));
    }

    /// <summary>The guest context's Secure TSC parameters; null without Secure TSC (or before SNP_LAUNCH_START).</summary>
    internal static Parameters? Of(SevInfo sev) =>
        sev.IsSecureTscEnabled && s_guests.TryGetValue(sev, out var p) ? p : null;

    /// <summary>GUEST_TSC_FREQ as the guest reads it: the nominal rate in MHz in bits 17:0 (model: DESIRED_TSC_FREQ / 1000).</summary>
    internal static ulong GuestTscFreqMsr(Parameters p) => (p.DesiredTscKhz / 1000) & ((1UL << 18) - 1);

    /// <summary>MSG_TSC_INFO_RSP's plaintext for <paramref name="req"/> (see the class remarks).</summary>
    internal static byte[] Response(SevInfo sev, byte[] req)
    {
        var rsp = new byte[ResponseSize];
        var p = Of(sev);
        if (p is null || req.Length < RequestSize || req.AsSpan(0, RequestSize).ContainsAnyExcept((byte)0))
        {
            BinaryPrimitives.WriteUInt32LittleEndian(rsp, SnpPsp.SEV_RET_INVALID_PARAM);
            return rsp;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(rsp.AsSpan(OffTscScale), p.Scale);
        BinaryPrimitives.WriteInt64LittleEndian(rsp.AsSpan(OffTscOffset), p.Offset);
        BinaryPrimitives.WriteUInt32LittleEndian(rsp.AsSpan(OffTscFactor), TscFactor);
        return rsp;
    }

    /// <summary>
    /// The guest TSC a Secure TSC vCPU reads for host TSC <paramref name="hostTsc"/>: (host × GUEST_TSC_SCALE) &gt;&gt; 32
    /// + GUEST_TSC_OFFSET (AMD APM Vol. 2 "Secure TSC"; what snp_tsc_scale / snp_tsc_offset describe to the guest).
    /// </summary>
    public static ulong GuestTsc(ulong hostTsc, ulong scale, long offset) =>
        unchecked((ulong)(((UInt128)hostTsc * scale) >> 32) + (ulong)offset);
}
