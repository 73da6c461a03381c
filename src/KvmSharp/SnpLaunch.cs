// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>What KVM_SEV_SNP_LAUNCH_UPDATE does with a range (kvm_sev_snp_launch_update.type, the firmware's page types).</summary>
public enum SnpPageType : byte
{
    /// <summary>KVM_SEV_SNP_PAGE_TYPE_NORMAL: copied from the source, encrypted and measured.</summary>
    Normal = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_NORMAL,
    /// <summary>KVM_SEV_SNP_PAGE_TYPE_ZERO: zero-filled by the firmware (no source), measured.</summary>
    Zero = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_ZERO,
    /// <summary>KVM_SEV_SNP_PAGE_TYPE_UNMEASURED: copied and encrypted, not measured.</summary>
    Unmeasured = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_UNMEASURED,
    /// <summary>KVM_SEV_SNP_PAGE_TYPE_SECRETS: the firmware's secrets page.</summary>
    Secrets = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_SECRETS,
    /// <summary>KVM_SEV_SNP_PAGE_TYPE_CPUID: a CPUID table the firmware validates.</summary>
    Cpuid = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_CPUID,
}

/// <summary>
/// The SEV-SNP launch flow of a <see cref="VmType.Snp"/> VM (Documentation/virt/kvm/x86/amd-memory-encryption.rst):
/// <see cref="Init"/> (KVM_SEV_INIT2) before any vCPU, <see cref="Start"/>, <see cref="Update"/> for each range of the
/// initial image (private guest_memfd memory, set private with KVM_SET_MEMORY_ATTRIBUTES first), then
/// <see cref="Finish"/>, which encrypts every vCPU's VMSA — the vCPUs' register state is protected from then on.
/// Once INIT2 made the VM an SNP guest, the SEV/SEV-ES commands answer EPERM.
/// </summary>
/// <remarks>
/// Failures throw <see cref="SevCommandException"/> (EIO carries the firmware status). On the emulated kernel the
/// firmware is a model (docs/emulator.md).
/// </remarks>
public sealed class SnpLaunch : IDisposable
{
    /// <summary>SNP guest policy bit 17, which must be set (SNP firmware ABI, "Guest Policy"; sev.c SNP_POLICY_MASK_RSVD_MBO).</summary>
    public const ulong PolicyReservedMustBeOne = 1UL << 17;

    /// <summary>SNP guest policy bit 16: SMT allowed.</summary>
    public const ulong PolicySmt = 1UL << 16;

    private SnpLaunch(Vm vm, KernelFd sev)
    {
        Vm = vm;
        SevDevice = sev;
    }

    /// <summary>The VM being launched.</summary>
    public Vm Vm { get; }

    /// <summary>The /dev/sev descriptor passed as kvm_sev_cmd.sev_fd.</summary>
    public KernelFd SevDevice { get; }

    /// <summary>Opens <paramref name="sevDevice"/> for <paramref name="vm"/>'s launch (ENOENT without the PSP driver).</summary>
    public static SnpLaunch Open(Vm vm, string sevDevice = SevLaunch.DefaultSevDevice)
    {
        ArgumentNullException.ThrowIfNull(vm);
        long rc = vm.Kernel.Open(sevDevice, LinuxConstants.O_RDWR | LinuxConstants.O_CLOEXEC, out KernelFd? fd);
        KvmCall.Check(rc, "open", sevDevice);
        return new SnpLaunch(vm, fd!);
    }

    /// <summary>KVM_SEV_INIT2 for an SNP guest (before any vCPU; once).</summary>
    public void Init(ulong vmsaFeatures = 0, ushort ghcbVersion = 0) => SevCommands.Init2(Vm, SevDevice, vmsaFeatures, ghcbVersion);

    /// <summary>
    /// The VMSA SEV_FEATURES bit 9, SecureTsc (AMD APM Vol. 2, VMSA "SEV_FEATURES"; the kernel's
    /// arch/x86/include/asm/svm.h SVM_SEV_FEAT_SECURE_TSC, not a uAPI header): the guest's TSC is computed by the CPU
    /// from a scale and offset the PSP fixes at launch, which the host cannot change. KVM accepts it in
    /// KVM_SEV_INIT2's vmsa_features for SNP VMs only, from Linux 6.18, when <see cref="SupportedVmsaFeatures"/> has it.
    /// </summary>
    public const ulong VmsaFeatureSecureTsc = 1UL << 9;

    /// <summary>
    /// KVM_X86_SEV_VMSA_FEATURES (KVM_GET_DEVICE_ATTR of KVM_X86_GRP_SEV on /dev/kvm): the vmsa_features KVM_SEV_INIT2
    /// accepts (for an SEV-ES or SNP VM; <see cref="VmsaFeatureSecureTsc"/> only for SNP); 0 on a kernel without SEV.
    /// </summary>
    /// <exception cref="KvmException">An error other than ENXIO.</exception>
    public static ulong SupportedVmsaFeatures(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        if (!kvm.HasDeviceAttribute(KvmConstants.KVM_X86_GRP_SEV, KvmConstants.KVM_X86_SEV_VMSA_FEATURES)) return 0;
        var value = new PinnedArray<ulong>(1);
        long rc = DeviceAttribute.Transfer(kvm.Kernel, kvm.Handle, set: false, KvmConstants.KVM_X86_GRP_SEV, KvmConstants.KVM_X86_SEV_VMSA_FEATURES, value);
        if (KvmCall.IsError(rc)) DeviceAttribute.Throw(rc, set: false, "/dev/kvm KVM_X86_SEV_VMSA_FEATURES", "KVM_X86_SEV_VMSA_FEATURES", 0);
        return value.Span[0];
    }

    /// <summary>
    /// SNP Secure TSC (Linux 6.18, sev.c "KVM: SVM: Enable Secure TSC for SNP guests"): KVM_SET_TSC_KHZ on the VM with
    /// <paramref name="tscKhz"/> when it is not 0 (the guest's TSC rate; default the host's), then KVM_SEV_INIT2 with
    /// <paramref name="vmsaFeatures"/> | <see cref="VmsaFeatureSecureTsc"/>. Before any vCPU. SNP_LAUNCH_START then passes
    /// the VM's rate to the firmware as DESIRED_TSC_FREQ; the vCPUs' KVM_SET_TSC_KHZ is refused (EINVAL) from then on.
    /// </summary>
    /// <exception cref="KvmException">EINVAL from KVM_SET_TSC_KHZ: a vCPU exists.</exception>
    /// <exception cref="SevCommandException">EINVAL from KVM_SEV_INIT2: not an SNP VM, a kernel without Secure TSC, or a vCPU exists.</exception>
    public void InitSecureTsc(uint tscKhz = 0, ulong vmsaFeatures = 0, ushort ghcbVersion = 0)
    {
        if (tscKhz != 0) Vm.SetDefaultTscKhz(tscKhz);
        Init(vmsaFeatures | VmsaFeatureSecureTsc, ghcbVersion);
    }

    /// <summary>
    /// KVM_SEV_SNP_LAUNCH_START: creates the guest context with <paramref name="policy"/> (bit 17 must be set, only
    /// the SNP policy bits KVM knows may be set — else EINVAL) and the optional 16-byte OS-visible workarounds.
    /// </summary>
    public void Start(ulong policy = PolicyReservedMustBeOne | PolicySmt, ReadOnlySpan<byte> gosvw = default)
    {
        if (gosvw.Length > 16) throw new ArgumentException("gosvw is 16 bytes", nameof(gosvw));
        var p = new kvm_sev_snp_launch_start { policy = policy };
        gosvw.CopyTo(p.gosvw);
        var buffer = CocoCall.Pin(p);
        SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START, buffer, $"policy=0x{policy:X}");
    }

    /// <summary>
    /// KVM_SEV_SNP_LAUNCH_UPDATE: adds <paramref name="length"/> bytes (a multiple of 4 KiB) at guest frame
    /// <paramref name="gfnStart"/> to the guest, from host memory at <paramref name="source"/> (ignored for
    /// <see cref="SnpPageType.Zero"/>). The kernel may stop at the end of a memory slot; this call repeats until the
    /// whole range is added.
    /// </summary>
    public void Update(ulong gfnStart, nint source, ulong length, SnpPageType type = SnpPageType.Normal)
    {
        var p = new kvm_sev_snp_launch_update { gfn_start = gfnStart, uaddr = (ulong)source, len = length, type = (byte)type };
        while (true)
        {
            var buffer = CocoCall.Pin(p);
            SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE, buffer,
                $"gfn_start=0x{p.gfn_start:X} len=0x{p.len:X} type={type}");
            var after = CocoCall.Read<kvm_sev_snp_launch_update>(buffer);
            // The kernel advances gfn_start/uaddr and counts len down; no progress means nothing more can be added.
            if (after.len == 0 || after.len == p.len) return;
            p = after;
        }
    }

    /// <summary>
    /// KVM_SEV_SNP_LAUNCH_FINISH: encrypts and measures every vCPU's VMSA and ends the launch. <paramref name="hostData"/>
    /// (up to 32 bytes) goes into the attestation report; an ID block (96 bytes) and its authentication structure
    /// (4096 bytes) may be given together.
    /// </summary>
    public void Finish(ReadOnlySpan<byte> hostData = default, ReadOnlySpan<byte> idBlock = default, ReadOnlySpan<byte> idAuth = default,
        bool authorKey = false)
    {
        if (hostData.Length > KvmMemoryEncrypt.KVM_SEV_SNP_FINISH_DATA_SIZE) throw new ArgumentException("host data is at most 32 bytes", nameof(hostData));
        var block = idBlock.IsEmpty ? null : CocoCall.PinBytes(idBlock);
        var auth = idAuth.IsEmpty ? null : CocoCall.PinBytes(idAuth);
        var p = new kvm_sev_snp_launch_finish
        {
            id_block_uaddr = block?.Address ?? 0, id_auth_uaddr = auth?.Address ?? 0,
            id_block_en = (byte)(block is null ? 0 : 1), auth_key_en = (byte)(authorKey ? 1 : 0),
        };
        hostData.CopyTo(p.host_data);
        var buffer = CocoCall.Pin(p);
        SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_FINISH, buffer, $"id_block_en={p.id_block_en}");
        GC.KeepAlive(block);
        GC.KeepAlive(auth);
    }

    /// <summary>
    /// True when the kernel has SNP certificate fetching (KVM_X86_SEV_SNP_REQ_CERTS reads 1; after 6.18: "[PATCH v7
    /// 2/2] KVM: SEV: Add KVM_SEV_SNP_ENABLE_REQ_CERTS command"). False on 6.18.
    /// </summary>
    public static bool SupportsRequestCertificates(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        if (!kvm.HasDeviceAttribute(KvmConstants.KVM_X86_GRP_SEV, KvmConstants.KVM_X86_SEV_SNP_REQ_CERTS)) return false;
        var value = new PinnedArray<ulong>(1);
        long rc = DeviceAttribute.Transfer(kvm.Kernel, kvm.Handle, set: false, KvmConstants.KVM_X86_GRP_SEV, KvmConstants.KVM_X86_SEV_SNP_REQ_CERTS, value);
        return !KvmCall.IsError(rc) && value.Span[0] == 1;
    }

    /// <summary>
    /// KVM_SEV_SNP_ENABLE_REQ_CERTS (after 6.18, [PATCH v7 2/2]): after <see cref="Init"/> and before any vCPU, makes
    /// every extended guest request for a report exit with KVM_EXIT_SNP_REQ_CERTS
    /// (<see cref="VcpuExit.SnpRequestCertificates"/>) so the VMM writes the certificate table first.
    /// </summary>
    /// <exception cref="SevCommandException">EINVAL: a vCPU exists, not an SNP guest, or a kernel without the command (6.18).</exception>
    public void EnableRequestCertificates() =>
        SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_SNP_ENABLE_REQ_CERTS, null, "");

    /// <summary>Closes /dev/sev (the VM keeps its launch state).</summary>
    public void Dispose() => SevDevice.Dispose();
}
