// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// SNP certificate fetching, after 6.18: "[PATCH v7 2/2] KVM: SEV: Add KVM_SEV_SNP_ENABLE_REQ_CERTS command" and
/// "[PATCH v7 1/2] KVM: Introduce KVM_EXIT_SNP_REQ_CERTS for SNP certificate-fetching" (Michael Roth, 2026-01-09).
/// Only an emulator whose <see cref="EmulatorConfig.SnpReqCertsExit"/> is set knows the command; the exit itself is
/// X86/Emulate/X86Emulator.GhcbGuestRequest.cs.
/// </summary>
internal static class SnpReqCerts
{
    /// <summary>include/uapi/linux/sev-guest.h SNP_GUEST_VMM_ERR_INVALID_LEN, SNP_GUEST_VMM_ERR_BUSY.</summary>
    public const uint VmmErrInvalidLen = 1, VmmErrBusy = 2;

    /// <summary>sev.c (v7 1/2) SNP_GUEST_VMM_ERR_GENERIC: (~0U), a KVM-defined hypervisor error.</summary>
    public const uint VmmErrGeneric = ~0u;

    /// <summary>The errno values userspace writes into kvm_run.snp_req_certs.ret (positive, as errno spells them).</summary>
    public const ulong RetEnospc = 28, RetEagain = 11, RetEio = 5;

    // struct kvm_sev_info.snp_certs_enabled (svm.h, v7 1/2).
    private static readonly ConditionalWeakTable<SevInfo, object> s_enabled = [];

    /// <summary>sev->snp_certs_enabled.</summary>
    public static bool Enabled(SevInfo sev) => s_enabled.TryGetValue(sev, out _);

    /// <summary>
    /// snp_enable_certs: "if (kvm-&gt;created_vcpus || !sev_snp_guest(kvm)) return -EINVAL;
    /// to_kvm_sev_info(kvm)-&gt;snp_certs_enabled = true;".
    /// </summary>
    public static long Enable(Kvm kvm, SevInfo sev)
    {
        if (kvm.Vcpus.Count != 0 || !sev.IsSnpGuest) return Err.EINVAL;
        s_enabled.AddOrUpdate(sev, true);
        return 0;
    }
}
