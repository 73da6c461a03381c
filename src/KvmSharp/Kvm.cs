// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// The KVM system device (/dev/kvm) of one kernel. Entry point of the SDK:
/// <c>using var kvm = Kvm.Open(); using var vm = kvm.CreateVm();</c>
/// </summary>
public sealed partial class Kvm : IDisposable
{
    /// <summary>The path <see cref="Open"/> uses when none is given.</summary>
    public const string DefaultPath = "/dev/kvm";

    private int _vcpuMmapSize;

    private Kvm(IKernel kernel, KernelFd fd, UapiProposals proposals)
    {
        Kernel = kernel;
        Handle = fd;
        Proposals = proposals;
    }

    /// <summary>The kernel behind this device (real or emulated).</summary>
    public IKernel Kernel { get; }

    /// <summary>The /dev/kvm descriptor.</summary>
    public KernelFd Handle { get; }

    /// <summary>The numbers this kernel uses for unmerged uAPI (capabilities, requests).</summary>
    public UapiProposals Proposals { get; }

    /// <summary>
    /// Opens /dev/kvm of <paramref name="kernel"/> (the real kernel when null) and checks the API version.
    /// <paramref name="proposals"/> gives the numbers of unmerged uAPI this kernel uses (default: the kernel's own,
    /// <see cref="IKernel.Proposals"/> — an emulated kernel's configuration —, else the v8 series).
    /// </summary>
    public static Kvm Open(IKernel? kernel = null, string path = DefaultPath, UapiProposals? proposals = null)
    {
        kernel ??= LinuxKernel.Instance;
        long rc = kernel.Open(path, LinuxConstants.O_RDWR, out KernelFd? fd);
        KvmCall.Check(rc, "open", $"path={path} flags=O_RDWR|O_CLOEXEC");
        // The kernel's own numbers (an emulated kernel knows its proposals) unless the caller names others.
        var kvm = new Kvm(kernel, fd!, proposals ?? kernel.Proposals ?? UapiProposals.Default);
        int version = kvm.ApiVersion;
        if (version != KvmConstants.KVM_API_VERSION)
        {
            kvm.Dispose();
            throw new KvmException("KVM_GET_API_VERSION", (int)Errno.EINVAL, $"path={path}",
                $"{path} reports KVM API version {version}; this SDK speaks version {KvmConstants.KVM_API_VERSION}");
        }
        return kvm;
    }

    /// <summary>KVM_GET_API_VERSION (12 on every kernel since 2.6.22).</summary>
    public int ApiVersion => (int)KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_API_VERSION, 0UL), "KVM_GET_API_VERSION", "");

    /// <summary>
    /// KVM_GET_VCPU_MMAP_SIZE: the size of the mmap'ed kvm_run area of a vCPU. A constant of the kernel, asked once and
    /// remembered (at the first <see cref="CreateVm"/>), so a VM keeps creating vCPUs after this descriptor is closed,
    /// as the kernel allows.
    /// </summary>
    public int VcpuMmapSize => _vcpuMmapSize != 0 ? _vcpuMmapSize
        : _vcpuMmapSize = (int)KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL), "KVM_GET_VCPU_MMAP_SIZE", "");

    /// <summary>KVM_CHECK_EXTENSION on /dev/kvm: the capability's raw value (0 when absent).</summary>
    public long CheckExtension(int capability) => Capabilities.Check(Kernel, Handle, capability);

    /// <summary>The VM types KVM_CREATE_VM accepts (KVM_CAP_VM_TYPES; {Default} when the cap is absent, as on arm64).</summary>
    public IReadOnlyList<VmType> SupportedVmTypes => Capabilities.VmTypes(CheckExtension(KvmCaps.KVM_CAP_VM_TYPES));

    /// <summary>
    /// KVM_CAP_GUEST_MEMFD: the kernel has KVM_CREATE_GUEST_MEMFD (6.8+ built with CONFIG_KVM_GUEST_MEMFD). Without
    /// it <see cref="Vm.CreateGuestMemfd"/> fails with ENOTTY and only <see cref="Vm.AddMemorySlot(uint, ulong, AnonymousMemory, MemorySlotFlags)"/>
    /// slots exist.
    /// </summary>
    public bool SupportsGuestMemfd => CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD) != 0;

    /// <summary>KVM_CAP_SET_GUEST_DEBUG: <see cref="Vcpu.SetGuestDebug"/> exists (x86, arm64, s390, ppc).</summary>
    public bool SupportsGuestDebug => CheckExtension(KvmCaps.KVM_CAP_SET_GUEST_DEBUG) != 0;

    /// <summary>
    /// KVM_CAP_SET_GUEST_DEBUG2: the KVM_GUESTDBG_* bits the kernel supports (this host: all seven, 0x1f0003);
    /// <see cref="GuestDebugFlags.None"/> when the kernel does not say.
    /// </summary>
    public GuestDebugFlags SupportedGuestDebugFlags => (GuestDebugFlags)(uint)Math.Max(0, CheckExtension(KvmCaps.KVM_CAP_SET_GUEST_DEBUG2));

    /// <summary>What the SDK says when <see cref="SupportsGuestMemfd"/> is false.</summary>
    public const string NoGuestMemfdReason =
        "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0: built without CONFIG_KVM_GUEST_MEMFD, or older than 6.8)";

    /// <summary>
    /// The guest_memfd flags this kernel accepts for some VM (KVM_CAP_GUEST_MEMFD_FLAGS, plus bits 63:32 from
    /// KVM_CAP_GUEST_MEMFD_FLAGS_HI when <see cref="Proposals"/> names its number). A VM may accept fewer: ask
    /// <see cref="Vm.SupportedGuestMemfdFlags"/>.
    /// </summary>
    public GuestMemfdFlags SupportedGuestMemfdFlags => Capabilities.GuestMemfdFlags(CheckExtension, Proposals.GuestMemfdFlagsHiCap);

    /// <summary>KVM_CREATE_VM with the given type.</summary>
    public Vm CreateVm(VmType type = VmType.Default)
    {
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_CREATE_VM, (ulong)type);
        KvmCall.Check(rc, "KVM_CREATE_VM", $"type={type} ({(uint)type})");
        var vm = new Vm(this, Kernel.Adopt((int)rc), type);
        if (_vcpuMmapSize == 0)
        {
            // Remembered now, while /dev/kvm is surely open; a failure is reported by the first CreateVcpu instead.
            long size = Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL);
            if (size > 0) _vcpuMmapSize = (int)size;
        }
        return vm;
    }

    /// <summary>
    /// Closes the /dev/kvm descriptor. VMs created from it stay usable (each holds its own descriptor), as in the
    /// kernel.
    /// </summary>
    public void Dispose() => Handle.Dispose();
}
