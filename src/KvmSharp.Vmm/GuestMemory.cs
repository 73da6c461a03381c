// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm;

/// <summary>
/// All memory of one micro-VM: one guest_memfd (MMAP|INIT_SHARED), mapped once into this process, bound at
/// <see cref="Layout.MemoryBase"/> by KVM_SET_USER_MEMORY_REGION2 with userspace_addr = that same mapping (kvm_pvm
/// only lets a vCPU use gmem that way, and it is also the host's only view). No anonymous memory backs the guest.
/// Every host access goes through <see cref="GuestMapping"/>'s checked accessors, so a bad address is an exception,
/// never a SIGBUS. On a VM type with private memory and in-place conversion (e.g. SW_PROTECTED on a kernel with the
/// v8 series), the guest may convert pages of its image area to private (KVM_HC_MAP_GPA_RANGE);
/// the host then cannot read them, and <see cref="Discard"/> makes everything shared again.
/// </summary>
public sealed class GuestMemory : IDisposable
{
    private const uint Slot = 0;
    private readonly Vm _vm;
    private MemorySlot? _slot;

    private GuestMemory(Vm vm, GuestMemfd memfd, GuestMapping mapping, bool supportsPrivate)
    {
        _vm = vm;
        Memfd = memfd;
        Mapping = mapping;
        SupportsPrivateMemory = supportsPrivate;
    }

    /// <summary>The guest_memfd flags every micro-VM needs: the host maps the file, and every page starts shared.</summary>
    public const GuestMemfdFlags RequiredFlags = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;

    public GuestMemfd Memfd { get; }

    /// <summary>The one host mapping of the file; also the slot's userspace_addr.</summary>
    public GuestMapping Mapping { get; }

    public ulong Size => Memfd.Size;

    /// <summary>
    /// True when the VM can make pages of this guest_memfd private (KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES has
    /// KVM_MEMORY_ATTRIBUTE_PRIVATE): a VM type with private memory on a kernel with in-place conversion.
    /// </summary>
    public bool SupportsPrivateMemory { get; }

    /// <summary>False after <see cref="Detach"/> (the slot is deleted; the guest cannot run until <see cref="Attach"/>).</summary>
    public bool IsAttached => _slot is not null;

    public static GuestMemory Create(Vm vm, ulong size)
    {
        ArgumentNullException.ThrowIfNull(vm);
        // Without MMAP and INIT_SHARED there is no guest_memfd-only VM: say which capability is missing, rather
        // than let KVM_CREATE_GUEST_MEMFD answer a bare EINVAL (kvm_gmem_create checks flags against this same value).
        GuestMemfdFlags supported = vm.SupportedGuestMemfdFlags;
        if ((supported & RequiredFlags) != RequiredFlags)
        {
            throw new MicroVmException(
                $"VM type {vm.Type}: KVM_CAP_GUEST_MEMFD_FLAGS = 0x{(ulong)supported:X} lacks MMAP|INIT_SHARED (0x{(ulong)RequiredFlags:X}), " +
                "which a guest_memfd-only micro-VM needs (for a VM type with private memory that takes a kernel with in-place conversion)");
        }
        ulong gmemAttributes = (ulong)vm.CheckExtension(vm.Kvm.Proposals.GuestMemfdMemoryAttributesCap);
        bool supportsPrivate = (gmemAttributes & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0;
        GuestMemfd memfd = vm.CreateGuestMemfd(size, RequiredFlags);
        GuestMapping? mapping = null;
        try
        {
            mapping = memfd.Map();
            var memory = new GuestMemory(vm, memfd, mapping, supportsPrivate);
            memory.Attach();
            return memory;
        }
        catch
        {
            mapping?.Dispose();
            memfd.Dispose();
            throw;
        }
    }

    /// <summary>Binds the file at GPA 0 (slot 0) with the host mapping as userspace_addr.</summary>
    public void Attach()
    {
        if (_slot is not null) return;
        _slot = _vm.AddGuestMemfdSlot(Slot, Layout.MemoryBase, Size, Memfd, userspace: Mapping);
    }

    /// <summary>Deletes the slot (the guest then has no memory); <see cref="Attach"/> binds it again.</summary>
    public void Detach()
    {
        MemorySlot? slot = _slot;
        _slot = null;
        slot?.Dispose();
    }

    /// <summary>
    /// Frees every page (fallocate PUNCH_HOLE): the guest and the host see zeros again. KVM drops its mappings of the
    /// punched pages first and flushes running vCPUs' TLBs, which is what lets the watchdog stop a running guest.
    /// </summary>
    public void Discard()
    {
        // Punching keeps shared/private state (v8 series, S5 truncate test), so private pages are converted back
        // first: the host must be able to write the boot state and the image again.
        if (SupportsPrivateMemory) Memfd.SetAttributes(0, Size, 0);
        Memfd.PunchHole(0, (long)Size);
    }

    /// <summary>True when the host may touch every page of [gpa, gpa+length) (none of them was made private).</summary>
    public bool IsShared(ulong gpa, ulong length) => Memfd.IsShared(gpa, length);

    public void Write(ulong gpa, ReadOnlySpan<byte> bytes) => Mapping.Write(gpa, bytes);

    public void Read(ulong gpa, Span<byte> destination) => Mapping.Read(gpa, destination);

    public T Read<T>(ulong gpa) where T : unmanaged => Mapping.Read<T>(gpa);

    public void Write<T>(ulong gpa, T value) where T : unmanaged => Mapping.Write(gpa, value);

    /// <summary>A checked span over [gpa, gpa+length); valid only for the current operation.</summary>
    public Span<byte> GetSpan(ulong gpa, int length) => Mapping.GetSpan(gpa, length);

    public void Fill(ulong gpa, ulong length, byte value) => Mapping.Fill(gpa, length, value);

    /// <summary>True when [gpa, gpa+length) lies inside guest memory.</summary>
    public bool Contains(ulong gpa, ulong length) => gpa <= Size && length <= Size - gpa;

    public void Dispose()
    {
        Detach();
        Mapping.Dispose();
        Memfd.Dispose();
    }
}
