// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arch;

/// <summary>The firmware's view of an SEV guest (SEV API spec, "Guest states"; KVM_SEV_GUEST_STATUS's state).</summary>
internal enum SevGuestState : uint
{
    Uninit = 0,
    LaunchUpdate = 1,
    LaunchSecret = 2,
    Running = 3,
}

/// <summary>
/// <c>struct kvm_sev_info</c> (arch/x86/kvm/svm/svm.h) as far as the launch flow needs it, plus the emulated
/// firmware's guest context (the PSP is modelled, see <see cref="SevFirmware"/>). One per SEV / SEV-ES / SNP VM.
/// </summary>
internal sealed class SevInfo
{
    /// <summary>sev->need_init: set by svm_vm_init for the SEV VM types, cleared by a successful KVM_SEV_INIT2.</summary>
    public bool NeedInit;
    /// <summary>sev->active (sev_guest()).</summary>
    public bool Active;
    /// <summary>sev->es_active (sev_es_guest() with Active).</summary>
    public bool EsActive;
    /// <summary>sev->vmsa_features; SVM_SEV_FEAT_SNP_ACTIVE marks sev_snp_guest().</summary>
    public ulong VmsaFeatures;
    public ushort GhcbVersion;
    /// <summary>sev->handle: the firmware's guest handle from LAUNCH_START (0 before).</summary>
    public uint Handle;
    /// <summary>sev->fd: the /dev/sev descriptor of LAUNCH_START / SNP_LAUNCH_START (0 before, as kzalloc leaves it).</summary>
    public int Fd;
    public ulong Policy;
    /// <summary>sev->snp_context != NULL (SNP_LAUNCH_START created the guest context).</summary>
    public bool SnpContext;
    /// <summary>The emulated firmware's state of this guest.</summary>
    public SevGuestState FirmwareState;
    /// <summary>The emulated firmware's running launch digest (see <see cref="SevFirmware"/>).</summary>
    public IncrementalHash? LaunchDigest;
    /// <summary>
    /// sev-&gt;regions_list: the ranges KVM_MEMORY_ENCRYPT_REG_REGION pinned, in registration order (duplicates allowed,
    /// see <see cref="SevRegions"/>). sev_vm_destroy unpins what is left; here they go with the VM.
    /// </summary>
    public readonly List<EncRegion> Regions = [];
    /// <summary>sev-&gt;pages_locked: pages sev_pin_memory holds for this VM, counted against RLIMIT_MEMLOCK.</summary>
    public ulong PagesLocked;

    /// <summary>arch/x86/kvm/svm/svm.h: SVM_SEV_FEAT_SNP_ACTIVE = BIT(0).</summary>
    public const ulong SvmSevFeatSnpActive = 1;

    /// <summary>arch/x86/include/asm/svm.h: SVM_SEV_FEAT_SECURE_TSC = BIT(9) ("KVM: SVM: Enable Secure TSC for SNP guests", 6.18).</summary>
    public const ulong SvmSevFeatSecureTsc = 1UL << 9;

    /// <summary>
    /// SNP_LAUNCH_START's DESIRED_TSC_FREQ as the firmware took it (sev.c snp_launch_start: "if
    /// (snp_is_secure_tsc_enabled(kvm)) start.desired_tsc_khz = kvm-&gt;arch.default_tsc_khz"); 0 without Secure TSC.
    /// </summary>
    public uint DesiredTscKhz;

    /// <summary>
    /// sev.c snp_is_secure_tsc_enabled (6.18): "(sev-&gt;vmsa_features &amp; SVM_SEV_FEAT_SECURE_TSC) &amp;&amp;
    /// !WARN_ON_ONCE(!sev_snp_guest(kvm))".
    /// </summary>
    public bool IsSecureTscEnabled => (VmsaFeatures & SvmSevFeatSecureTsc) != 0 && IsSnpGuest;

    public bool IsSevGuest => Active;
    public bool IsEsGuest => Active && EsActive;
    /// <summary>sev_snp_guest(): (vmsa_features &amp; SVM_SEV_FEAT_SNP_ACTIVE) &amp;&amp; sev_es_guest().</summary>
    public bool IsSnpGuest => (VmsaFeatures & SvmSevFeatSnpActive) != 0 && IsEsGuest;
}

/// <summary>The TD's state (arch/x86/kvm/vmx/tdx.h enum kvm_tdx_state).</summary>
internal enum TdState
{
    Uninitialized,
    Initialized,
    Runnable,
}

/// <summary><c>struct kvm_tdx</c> (arch/x86/kvm/vmx/tdx.h) as far as the launch flow needs it. One per TDX VM.</summary>
internal sealed class TdxInfo
{
    public TdState State;
    /// <summary>is_hkid_assigned(): a key ID was allocated by KVM_TDX_INIT_VM (and kept until the VM is destroyed).</summary>
    public bool HkidAssigned;
    public ulong Attributes;
    public ulong Xfam;
    /// <summary>kvm->arch.gfn_direct_bits as a GPA bit: 1 &lt;&lt; 51 (GPAW 52) or 1 &lt;&lt; 47 (GPAW 48), 0 before INIT_VM.</summary>
    public ulong SharedGpaBit;
    /// <summary>The CPUID values KVM_TDX_INIT_VM configured (the TD's "TD_PARAMS.CPUID_VALUES").</summary>
    public kvm_cpuid_entry2[] Cpuid = [];
}

/// <summary>The per-vCPU launch state: <c>vcpu-&gt;arch.guest_state_protected</c>, the confidential fpstate, TDX's vCPU state.</summary>
internal sealed class CocoVcpu
{
    /// <summary>vcpu-&gt;arch.guest_state_protected.</summary>
    public bool GuestStateProtected;
    /// <summary>fpstate_is_confidential(&amp;vcpu-&gt;arch.guest_fpu).</summary>
    public bool FpstateConfidential;
    /// <summary>TDX: tdx-&gt;state == VCPU_TD_STATE_INITIALIZED (KVM_TDX_INIT_VCPU done).</summary>
    public bool TdInitialized;
}

/// <summary>
/// Where the launch state lives: beside the VM and vCPU objects (weak tables, so the generic <c>struct kvm</c> and
/// <c>struct kvm_vcpu</c> models stay vendor-free, as the kernel keeps kvm_sev_info / kvm_tdx in the vendor's struct).
/// </summary>
internal static class CocoState
{
    private static readonly ConditionalWeakTable<Kvm, SevInfo> s_sev = [];
    private static readonly ConditionalWeakTable<Kvm, TdxInfo> s_tdx = [];
    private static readonly ConditionalWeakTable<KvmVcpu, CocoVcpu> s_vcpus = [];

    public static bool IsSevType(Kvm kvm) =>
        kvm.Type is KvmConstants.KVM_X86_SEV_VM or KvmConstants.KVM_X86_SEV_ES_VM or KvmConstants.KVM_X86_SNP_VM;

    public static bool IsTd(Kvm kvm) => kvm.Type == KvmConstants.KVM_X86_TDX_VM;

    /// <summary>
    /// to_kvm_sev_info(kvm). svm_vm_init: "if (type != KVM_X86_DEFAULT_VM &amp;&amp; type != KVM_X86_SW_PROTECTED_VM) {
    /// … to_kvm_sev_info(kvm)-&gt;need_init = true; }".
    /// </summary>
    public static SevInfo Sev(Kvm kvm) => s_sev.GetValue(kvm, k => new SevInfo { NeedInit = IsSevType(k) });

    /// <summary>to_kvm_tdx(kvm); tdx_vm_init leaves it TD_STATE_UNINITIALIZED.</summary>
    public static TdxInfo Tdx(Kvm kvm) => s_tdx.GetValue(kvm, _ => new TdxInfo());

    public static CocoVcpu Vcpu(KvmVcpu vcpu) => s_vcpus.GetValue(vcpu, _ => new CocoVcpu());

    /// <summary>
    /// vcpu-&gt;arch.guest_tsc_protected of an SNP vCPU: sev.c sev_vcpu_create (6.18) sets it to
    /// snp_is_secure_tsc_enabled(kvm). KVM_SEV_INIT2 fixes vmsa_features before any vCPU exists (__sev_guest_init:
    /// "if (kvm-&gt;created_vcpus) return -EINVAL"), so the VM's answer is every vCPU's. (TDX's is in KvmClock.)
    /// </summary>
    public static bool GuestTscProtected(Kvm kvm) => IsSevType(kvm) && Sev(kvm).IsSecureTscEnabled;

    /// <summary>
    /// kvm-&gt;arch.pre_fault_allowed: <c>!has_private_mem</c> at creation (svm_vm_init, kvm_arch_init_vm), true for SNP
    /// after a successful KVM_SEV_SNP_LAUNCH_FINISH (snp_launch_finish) and for TDX after KVM_TDX_FINALIZE_VM
    /// (tdx_td_finalize).
    /// </summary>
    public static bool PreFaultAllowed(Kvm kvm)
    {
        if (kvm.Type == KvmConstants.KVM_X86_SNP_VM) return Sev(kvm).FirmwareState == SevGuestState.Running && Sev(kvm).IsSnpGuest;
        if (IsTd(kvm)) return Tdx(kvm).State == TdState.Runnable;
        return true;
    }
}
