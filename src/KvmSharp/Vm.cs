// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>A VM descriptor (KVM_CREATE_VM). Creates guest_memfd files, memory slots and vCPUs.</summary>
public sealed partial class Vm : IDisposable
{
    internal Vm(Kvm kvm, KernelFd fd, VmType type)
    {
        Kvm = kvm;
        Handle = fd;
        Type = type;
    }

    /// <summary>The /dev/kvm this VM was created from (its capabilities and uAPI proposal numbers).</summary>
    public Kvm Kvm { get; }

    /// <summary>The kernel (real or emulated) every call of this VM goes to.</summary>
    public IKernel Kernel => Kvm.Kernel;

    /// <summary>The VM file descriptor returned by KVM_CREATE_VM; pass it to raw kernel calls.</summary>
    public KernelFd Handle { get; }

    /// <summary>
    /// The type passed to KVM_CREATE_VM (e.g. <see cref="VmType.SwProtected"/> for private memory without hardware).
    /// </summary>
    public VmType Type { get; }

    /// <summary>KVM_CHECK_EXTENSION on this VM: answers can differ from /dev/kvm's (e.g. per VM type).</summary>
    public long CheckExtension(int capability) => Capabilities.Check(Kernel, Handle, capability);

    /// <summary>The guest_memfd flags this VM accepts (KVM_CAP_GUEST_MEMFD_FLAGS [+ _HI] on the VM fd).</summary>
    public GuestMemfdFlags SupportedGuestMemfdFlags => Capabilities.GuestMemfdFlags(CheckExtension, Kvm.Proposals.GuestMemfdFlagsHiCap);

    /// <summary>
    /// What a guest_memfd can be for this VM (KVM_CAP_GUEST_MEMFD and KVM_CAP_GUEST_MEMFD_FLAGS on the VM fd): none,
    /// the private half of a private-capable slot, a mappable file born private, or the guest's sole memory.
    /// </summary>
    public GuestMemfdUse GuestMemfdUse
    {
        get
        {
            if (CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD) == 0) return GuestMemfdUse.None;
            GuestMemfdFlags flags = SupportedGuestMemfdFlags;
            if (!flags.HasFlag(GuestMemfdFlags.Mmap)) return GuestMemfdUse.PrivateBacking;
            return flags.HasFlag(GuestMemfdFlags.InitShared) ? GuestMemfdUse.SoleMemory : GuestMemfdUse.MappablePrivate;
        }
    }

    /// <summary>KVM_CAP_MEMORY_ATTRIBUTES on this VM: the attributes KVM_SET_MEMORY_ATTRIBUTES (per VM) accepts.</summary>
    public MemoryAttributes SupportedMemoryAttributes => (MemoryAttributes)(ulong)CheckExtension(KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES);

    /// <summary>
    /// KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES on this VM (a proposal: in-place conversion v8; its number is
    /// <see cref="UapiProposals.GuestMemfdMemoryAttributesCap"/>): the attributes <see cref="GuestMemfd.SetAttributes"/>
    /// accepts on this VM's guest_memfds.
    /// </summary>
    public MemoryAttributes SupportedGuestMemfdMemoryAttributes => (MemoryAttributes)(ulong)CheckExtension(Kvm.Proposals.GuestMemfdMemoryAttributesCap);

    /// <summary>
    /// KVM_CAP_EXIT_HYPERCALL on this VM: the hypercalls <see cref="EnableHypercallExits"/> accepts (x86:
    /// <see cref="HypercallExits.MapGpaRange"/>; arm64: none).
    /// </summary>
    public HypercallExits SupportedHypercallExits => (HypercallExits)(ulong)CheckExtension(KvmCaps.KVM_CAP_EXIT_HYPERCALL);

    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL, <paramref name="exits"/>): these hypercalls exit to userspace as
    /// KVM_EXIT_HYPERCALL instead of failing in the guest with -KVM_ENOSYS. Replaces the previous mask (None turns
    /// them all off); allowed before and after vCPUs exist. A bit the kernel does not support throws a
    /// <see cref="KvmCapabilityException"/> naming the supported set.
    /// </summary>
    public void EnableHypercallExits(HypercallExits exits)
    {
        var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_EXIT_HYPERCALL };
        cap.args[0] = (ulong)exits;
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_ENABLE_CAP, KvmCall.Bytes(ref cap));
        if (!KvmCall.IsError(rc)) return;
        string request = $"KVM_CAP_EXIT_HYPERCALL args[0]=0x{(ulong)exits:X} ({exits})";
        if (rc == -(long)Errno.EINVAL)
        {
            long supported = CheckExtension(KvmCaps.KVM_CAP_EXIT_HYPERCALL);
            throw new KvmCapabilityException("KVM_ENABLE_CAP", (int)-rc, request, nameof(KvmCaps.KVM_CAP_EXIT_HYPERCALL), supported);
        }
        KvmCall.ThrowKvm(rc, "KVM_ENABLE_CAP", request);
    }

    /// <summary>
    /// KVM_ENABLE_CAP on this VM with up to four arguments (kvm_enable_cap.args) and flags 0. Throws a
    /// <see cref="KvmException"/> naming the capability and arguments; EINVAL for a capability this VM reports as 0
    /// becomes a <see cref="KvmCapabilityException"/>.
    /// </summary>
    public void EnableCapability(int capability, params ReadOnlySpan<ulong> args) => EnableCapability(EnableCap.Build(capability, args));

    /// <summary>Raw KVM_ENABLE_CAP with any field values (flags included), errors as in <see cref="EnableCapability(int, ReadOnlySpan{ulong})"/>.</summary>
    public void EnableCapability(kvm_enable_cap cap) => EnableCap.Enable(Kernel, Handle, cap, "", CheckExtension);

    /// <summary>KVM_CREATE_GUEST_MEMFD: a new guest_memfd file of <paramref name="size"/> bytes.</summary>
    public GuestMemfd CreateGuestMemfd(ulong size, GuestMemfdFlags flags = GuestMemfdFlags.None)
    {
        var args = new kvm_create_guest_memfd { size = size, flags = (ulong)flags };
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_CREATE_GUEST_MEMFD, KvmCall.Bytes(ref args));
        if (KvmCall.IsError(rc))
        {
            string request = $"size={size} (0x{size:X}) flags=0x{(ulong)flags:X} ({flags.ToKernelString()})";
            if (rc == -(long)Errno.EINVAL)
                request += $"; this VM supports flags {SupportedGuestMemfdFlags.ToKernelString()} and sizes that are non-zero page multiples below 2^63";
            // kvm_vm_ioctl: KVM_CREATE_GUEST_MEMFD is compiled out without CONFIG_KVM_GUEST_MEMFD and falls through
            // to kvm_arch_vm_ioctl's -ENOTTY; KVM_CAP_GUEST_MEMFD then answers 0.
            else if (rc == -(long)Errno.ENOTTY && !Kvm.SupportsGuestMemfd)
                request += "; " + Kvm.NoGuestMemfdReason;
            KvmCall.ThrowKvm(rc, "KVM_CREATE_GUEST_MEMFD", request);
        }
        return new GuestMemfd(this, Kernel.Adopt((int)rc), size, flags);
    }

    /// <summary>
    /// Binds [<paramref name="offset"/>, +<paramref name="size"/>) of <paramref name="memfd"/> at
    /// <paramref name="guestPhysicalAddress"/> with KVM_SET_USER_MEMORY_REGION2 and KVM_MEM_GUEST_MEMFD.
    /// When the file is mappable and <paramref name="userspace"/> is null, the SDK maps that range of the file and
    /// uses the mapping as userspace_addr (some hosts, like kvm_pvm, only let the vCPU see gmem that way); the slot
    /// owns that mapping and unmaps it when deleted. <paramref name="mapForUserspace"/> = false binds with
    /// userspace_addr = 0 (upstream's gmem-only slot).
    /// </summary>
    /// <remarks>
    /// With <paramref name="userfault"/> the slot is created with KVM_MEM_USERFAULT and that bitmap (PROPOSAL, KVM
    /// Userfault v3; see <see cref="MemorySlot.EnableUserfault"/>); on a kernel without KVM_CAP_USERFAULT this throws a
    /// <see cref="KvmCapabilityException"/>.
    /// </remarks>
    public MemorySlot AddGuestMemfdSlot(uint slot, ulong guestPhysicalAddress, ulong size, GuestMemfd memfd,
        ulong offset = 0, GuestMapping? userspace = null, uint extraFlags = 0, bool mapForUserspace = true,
        UserfaultBitmap? userfault = null)
    {
        ArgumentNullException.ThrowIfNull(memfd);
        CheckUserfaultBitmap(userfault, size);
        GuestMapping? owned = null;
        bool bitmapAdded = false;
        if (userspace is null && mapForUserspace && memfd.Flags.HasFlag(GuestMemfdFlags.Mmap) && size != 0 && offset < memfd.Size && size <= memfd.Size - offset)
            userspace = owned = memfd.Map(size, offset);
        try
        {
            var region = new kvm_userspace_memory_region2
            {
                slot = slot,
                flags = KvmConstants.KVM_MEM_GUEST_MEMFD | extraFlags,
                guest_phys_addr = guestPhysicalAddress,
                memory_size = size,
                userspace_addr = userspace is null ? 0 : (ulong)userspace.Address,
                guest_memfd_offset = offset,
                guest_memfd = (uint)memfd.Handle.Number,
            };
            if (userfault is not null)
            {
                // The slot holds a reference on the bitmap's memory while KVM may read it (MemorySlot.Userfault.cs).
                userfault.Memory.DangerousAddRef(ref bitmapAdded);
                region.flags |= KvmConstants.KVM_MEM_USERFAULT;
                region.userfault_bitmap = userfault.Address;
            }
            SetUserMemoryRegion2(region);
            var created = new MemorySlot(this, region, memfd, owned);
            if (userfault is not null) created.AdoptUserfault(userfault);
            return created;
        }
        catch
        {
            if (bitmapAdded) userfault!.Memory.DangerousRelease();
            owned?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Raw KVM_SET_USER_MEMORY_REGION2 with any field values (also for deletion: memory_size = 0). Throws a
    /// <see cref="KvmException"/> naming the region on failure.
    /// </summary>
    public void SetUserMemoryRegion2(kvm_userspace_memory_region2 region)
    {
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, KvmCall.Bytes(ref region));
        if (!KvmCall.IsError(rc)) return;
        ThrowIfRegion2CapabilityMissing(rc, region);
        KvmCall.ThrowKvm(rc, "KVM_SET_USER_MEMORY_REGION2", Describe(region));
    }

    /// <summary>
    /// Turns a KVM_SET_USER_MEMORY_REGION2 failure that a missing capability explains into a
    /// <see cref="KvmCapabilityException"/> naming it; returns for every other failure.
    /// </summary>
    private void ThrowIfRegion2CapabilityMissing(long rc, in kvm_userspace_memory_region2 region)
    {
        const string Operation = "KVM_SET_USER_MEMORY_REGION2";
        // Before 6.8 the request is unknown (kvm_arch_vm_ioctl: ENOTTY on x86, EINVAL on arm64).
        if (rc == -(long)Errno.ENOTTY || rc == -(long)Errno.EINVAL)
        {
            long userMemory2 = CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY2);
            if (userMemory2 == 0)
                throw new KvmCapabilityException(Operation, (int)-rc, Describe(region), nameof(KvmCaps.KVM_CAP_USER_MEMORY2), userMemory2);
        }
        // check_memory_region_flags: before 6.18 only a VM with private memory may bind guest_memfd, and
        // KVM_CAP_GUEST_MEMFD on the VM says so (0 for the others); a kernel without guest_memfd answers 0 too.
        if (rc == -(long)Errno.EINVAL && (region.flags & KvmConstants.KVM_MEM_GUEST_MEMFD) != 0)
        {
            long gmem = CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD);
            if (gmem == 0)
            {
                throw new KvmCapabilityException(Operation, (int)-rc, Describe(region) + $"; VM type {Type} cannot bind guest_memfd on this kernel",
                    nameof(KvmCaps.KVM_CAP_GUEST_MEMFD), gmem);
            }
        }
        ThrowIfUserfaultMissing(rc, region);
    }

    /// <summary>Raw legacy KVM_SET_USER_MEMORY_REGION (no guest_memfd fields).</summary>
    public void SetUserMemoryRegion(kvm_userspace_memory_region region)
    {
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_USER_MEMORY_REGION, KvmCall.Bytes(ref region));
        KvmCall.Check(rc, "KVM_SET_USER_MEMORY_REGION",
            $"slot={region.slot} flags=0x{region.flags:X} gpa=0x{region.guest_phys_addr:X} size=0x{region.memory_size:X} uaddr=0x{region.userspace_addr:X}");
    }

    /// <summary>
    /// KVM_SET_MEMORY_ATTRIBUTES (v1, per-GFN on the VM). On a kernel or VM without memory attributes the error
    /// says which capability is missing instead of a bare errno.
    /// </summary>
    public void SetMemoryAttributes(ulong guestPhysicalAddress, ulong size, ulong attributes, ulong flags = 0)
    {
        var args = new kvm_memory_attributes { address = guestPhysicalAddress, size = size, attributes = attributes, flags = flags };
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, KvmCall.Bytes(ref args));
        if (!KvmCall.IsError(rc)) return;
        string request = $"gpa=0x{guestPhysicalAddress:X} size=0x{size:X} attributes=0x{attributes:X} flags=0x{flags:X}";
        long supported = CheckExtension(KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES);
        if ((rc == -(long)Errno.ENOTTY || rc == -(long)Errno.EINVAL) && (supported == 0 || (attributes & ~(ulong)supported) != 0))
            throw new KvmCapabilityException("KVM_SET_MEMORY_ATTRIBUTES", (int)-rc, request, nameof(KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES), supported);
        KvmCall.ThrowKvm(rc, "KVM_SET_MEMORY_ATTRIBUTES", request);
    }

    /// <summary>KVM_CREATE_VCPU with the given id; maps its kvm_run area.</summary>
    public Vcpu CreateVcpu(int id = 0)
    {
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_CREATE_VCPU, (ulong)id);
        KvmCall.Check(rc, "KVM_CREATE_VCPU", $"id={id}");
        return Vcpu.Create(this, Kernel.Adopt((int)rc), id);
    }

    /// <summary>KVM_SET_TSS_ADDR (x86): three pages of guest-physical space KVM may use for real-mode emulation.</summary>
    public void SetTssAddress(ulong address) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_TSS_ADDR, address), "KVM_SET_TSS_ADDR", $"addr=0x{address:X}");

    /// <summary>
    /// Closes the VM descriptor. The kernel frees the VM once its vCPU and guest_memfd descriptors are closed too;
    /// dispose those as well.
    /// </summary>
    public void Dispose() => Handle.Dispose();

    internal static string Describe(in kvm_userspace_memory_region2 r) =>
        $"slot={r.slot} flags=0x{r.flags:X} gpa=0x{r.guest_phys_addr:X} size=0x{r.memory_size:X} " +
        $"uaddr=0x{r.userspace_addr:X} guest_memfd={(int)r.guest_memfd} offset=0x{r.guest_memfd_offset:X}" +
        ((r.flags & KvmConstants.KVM_MEM_USERFAULT) != 0 ? $" userfault_bitmap=0x{r.userfault_bitmap:X}" : "");
}
