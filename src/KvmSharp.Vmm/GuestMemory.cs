// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm;

/// <summary>
/// All memory of one micro-VM: one guest_memfd (MMAP|INIT_SHARED), mapped once into this process, bound at
/// <see cref="Layout.MemoryBase"/> by KVM_SET_USER_MEMORY_REGION2 with userspace_addr = that same mapping (kvm_pvm
/// only lets a vCPU use gmem that way, and it is also the host's only view). No anonymous memory backs the guest.
/// Every host access goes through <see cref="GuestMapping"/>'s checked accessors, so a bad address is an exception,
/// never a SIGBUS.
/// </summary>
public sealed class GuestMemory : IDisposable
{
    private const uint Slot = 0;
    private readonly Vm _vm;
    private MemorySlot? _slot;

    private GuestMemory(Vm vm, GuestMemfd memfd, GuestMapping mapping)
    {
        _vm = vm;
        Memfd = memfd;
        Mapping = mapping;
    }

    public GuestMemfd Memfd { get; }

    /// <summary>The one host mapping of the file; also the slot's userspace_addr.</summary>
    public GuestMapping Mapping { get; }

    public ulong Size => Memfd.Size;

    /// <summary>False after <see cref="Detach"/> (the slot is deleted; the guest cannot run until <see cref="Attach"/>).</summary>
    public bool IsAttached => _slot is not null;

    public static GuestMemory Create(Vm vm, ulong size)
    {
        ArgumentNullException.ThrowIfNull(vm);
        GuestMemfd memfd = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        GuestMapping? mapping = null;
        try
        {
            mapping = memfd.Map();
            var memory = new GuestMemory(vm, memfd, mapping);
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
    public void Discard() => Memfd.PunchHole(0, (long)Size);

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
