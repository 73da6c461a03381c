// SPDX-License-Identifier: MIT
using System.Numerics;
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.Vmm;

/// <summary>
/// All memory of one micro-VM, bound at <see cref="Layout.MemoryBase"/> as slot 0. With
/// <see cref="GuestMemoryBacking.GuestMemfd"/> (the default) it is one guest_memfd (MMAP|INIT_SHARED), mapped once
/// into this process and bound by KVM_SET_USER_MEMORY_REGION2 with userspace_addr = that same mapping (kvm_pvm only
/// lets a vCPU use gmem that way, and it is also the host's only view); no anonymous memory backs the guest. With
/// <see cref="GuestMemoryBacking.HostMemory"/> it is anonymous host memory in a plain slot, for kernels without
/// guest_memfd. Every host access goes through checked accessors, so a bad address is an exception, never a SIGBUS.
/// On a VM type with private memory and in-place conversion (e.g. SW_PROTECTED on a kernel with the v8 series), the
/// guest may convert pages of its image area to private (KVM_HC_MAP_GPA_RANGE); the host then cannot read them, and
/// <see cref="Discard"/> makes everything shared again.
/// With host memory the host's own writes through the accessors here are tracked, and once <see cref="MicroVm.Reset"/>
/// has saved a pristine state (SavePristine) the slot logs the guest's writes too, so each later reset puts back
/// exactly the pages changed since instead of freeing everything (<see cref="Discard"/>) and faulting it in again.
/// </summary>
public sealed class GuestMemory : IDisposable
{
    private const uint Slot = 0;
    private readonly Vm _vm;
    private readonly AnonymousMemory? _host;
    private MemorySlot? _slot;

    // Host memory only: the pages changed since creation, the last Discard or SavePristine (bit i of word i/64 is page
    // i, as in a dirty log): the host's writes through the accessors below, and once SavePristine turned logging on,
    // the guest's from the slot's dirty log, merged in when read.
    private readonly ulong[]? _changed;
    private bool _logging;
    private DirtyPageLog? _log;
    // The state RestorePristine returns to: SavePristine's copy of the pages changed before it, or a snapshot's pages
    // adopted by RestoreTo (shared with the snapshot, never written).
    private PageSet? _pristine;
    private bool _pristineIsSnapshot;
    // Something may have changed memory the tracking above cannot see: HostAddress was handed out.
    private bool _untracked;
    // Discard zeroed everything, pristine pages included, since SavePristine.
    private bool _discarded;
    // A snapshot being restored lazily (RestoreLazily): its pages are written on first use. Null otherwise, and then
    // the accessors below pay one null check.
    private LazyPopulation? _lazy;
    private bool? _userfaultOffered;

    private GuestMemory(Vm vm, ulong size, GuestMemfd? memfd, GuestMapping? mapping, AnonymousMemory? host, bool supportsPrivate)
    {
        _vm = vm;
        Size = size;
        Memfd = memfd;
        _mapping = mapping;
        _host = host;
        SupportsPrivateMemory = supportsPrivate;
        if (host is not null) _changed = new ulong[checked((int)((size / PageSize + 63) / 64))];
    }

    private static ulong PageSize => (ulong)Environment.SystemPageSize;

    /// <summary>The guest_memfd flags every guest_memfd-backed micro-VM needs: the host maps the file, and every page starts shared.</summary>
    public const GuestMemfdFlags RequiredFlags = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;

    /// <summary>What holds this memory: a guest_memfd, or anonymous host memory.</summary>
    public GuestMemoryBacking Backing => Memfd is null ? GuestMemoryBacking.HostMemory : GuestMemoryBacking.GuestMemfd;

    /// <summary>The guest_memfd; null with <see cref="GuestMemoryBacking.HostMemory"/>.</summary>
    public GuestMemfd? Memfd { get; }

    /// <summary>The one host mapping of the guest_memfd (also the slot's userspace_addr); null with host memory.</summary>
    /// <remarks>
    /// Handing the mapping out completes a lazy restore first (every snapshot page is written): accesses through it
    /// are not seen, so a page still to be written would read as zero and later be overwritten.
    /// </remarks>
    public GuestMapping? Mapping
    {
        get
        {
            CompleteLazyRestore();
            return _mapping;
        }
    }

    private readonly GuestMapping? _mapping;

    /// <summary>
    /// The host address of guest physical address <see cref="Layout.MemoryBase"/> (the slot's userspace_addr). Writes
    /// through it are not tracked: with host memory, asking for it makes the next <see cref="RestorePristine"/> start
    /// over from zero (and a Discard forgets it).
    /// </summary>
    public nint HostAddress
    {
        get
        {
            if (_mapping is not null)
            {
                CompleteLazyRestore();
                return _mapping.Address;
            }
            _untracked = true;
            return _host!.Address;
        }
    }

    /// <summary>The memory's size in bytes: valid guest-physical addresses are [0, Size).</summary>
    public ulong Size { get; }

    /// <summary>
    /// True when the VM can make pages of this guest_memfd private (KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES has
    /// KVM_MEMORY_ATTRIBUTE_PRIVATE): a VM type with private memory on a kernel with in-place conversion. Always false
    /// with <see cref="GuestMemoryBacking.HostMemory"/>.
    /// </summary>
    public bool SupportsPrivateMemory { get; }

    /// <summary>
    /// True when the guest_memfd was created with <see cref="GuestMemfdFlags.NoDirectMap"/> (a proposal): the host
    /// kernel's direct map does not hold this memory (<see cref="DirectMapUse"/>).
    /// </summary>
    public bool RemovedFromDirectMap => Memfd is not null && Memfd.Flags.HasFlag(GuestMemfdFlags.NoDirectMap);

    /// <summary>
    /// True when the guest_memfd was created with <see cref="GuestMemfdFlags.Write"/> (a proposal: "[PATCH v7 1/2] KVM:
    /// guest_memfd: add generic population via write"), which it is whenever the VM offers it: snapshot pages are then
    /// restored with write(2), a run of consecutive pages per call, and the image is loaded with pwrite at creation and
    /// at a full reset (<see cref="MicroVm.LastImageLoad"/>), instead of copied through the mapping (measured on
    /// the emulator: 0.6–0.75 of the copy's time for 2–64 MiB, bench/KvmSharp.Emulation.Benchmarks PopulateByWrite).
    /// No shipped kernel offers the flag, so real hosts copy as before.
    /// </summary>
    public bool PopulatesByWrite => Memfd is not null && Memfd.Flags.HasFlag(GuestMemfdFlags.Write);

    /// <summary>False after <see cref="Detach"/> (the slot is deleted; the guest cannot run until <see cref="Attach"/>).</summary>
    public bool IsAttached => _slot is not null;

    /// <summary>
    /// Why <paramref name="vm"/> cannot have guest_memfd-backed micro-VM memory (null when it can): the guest_memfd
    /// flags a micro-VM needs, as KVM_CAP_GUEST_MEMFD(_FLAGS) reports them.
    /// </summary>
    public static string? GuestMemfdUnavailableReason(Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        GuestMemfdUse use = vm.GuestMemfdUse;
        if (use == GuestMemfdUse.SoleMemory) return null;
        if (use == GuestMemfdUse.None)
        {
            // kvm_vm_ioctl_check_extension_generic: compiled out without CONFIG_KVM_GUEST_MEMFD; on 6.8–6.17 it is
            // "!kvm || kvm_arch_has_private_mem(kvm)", so /dev/kvm may say 1 where this VM says 0.
            return vm.Kvm.SupportsGuestMemfd
                ? $"VM type {vm.Type}: KVM_CAP_GUEST_MEMFD = 0 on the VM (before 6.18 only VM types with private memory may use guest_memfd)"
                : Kvm.NoGuestMemfdReason;
        }
        GuestMemfdFlags supported = vm.SupportedGuestMemfdFlags;
        // KVM_CAP_GUEST_MEMFD_FLAGS arrived with the mmap series (6.18): before it every flag is invalid.
        if (vm.Kvm.SupportedGuestMemfdFlags == GuestMemfdFlags.None)
            return $"VM type {vm.Type}: this kernel's guest_memfd predates the mmap series (KVM_CAP_GUEST_MEMFD_FLAGS = 0, before 6.18): it can back private memory only, not be a micro-VM's whole memory";
        return $"VM type {vm.Type}: KVM_CAP_GUEST_MEMFD_FLAGS = 0x{(ulong)supported:X} lacks MMAP|INIT_SHARED (0x{(ulong)RequiredFlags:X}), " +
            "which a guest_memfd-only micro-VM needs (for a VM type with private memory that takes a kernel with in-place conversion)";
    }

    /// <summary>The best backing <paramref name="vm"/> offers: guest_memfd when it can, else host memory.</summary>
    public static GuestMemoryBacking BestBacking(Vm vm) =>
        GuestMemfdUnavailableReason(vm) is null ? GuestMemoryBacking.GuestMemfd : GuestMemoryBacking.HostMemory;

    /// <summary>
    /// Creates <paramref name="size"/> bytes of guest memory with <paramref name="backing"/> and binds it at GPA 0 as
    /// slot 0: a guest_memfd (MMAP|INIT_SHARED) mapped once and bound with KVM_SET_USER_MEMORY_REGION2, or anonymous
    /// host memory in a plain slot.
    /// </summary>
    /// <exception cref="MicroVmException">guest_memfd was asked for, but <paramref name="vm"/> cannot have it
    /// (<see cref="GuestMemfdUnavailableReason"/>).</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">A kernel call failed (creating, mapping or binding the
    /// memory).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="backing"/> is not a known value.</exception>
    public static GuestMemory Create(Vm vm, ulong size, GuestMemoryBacking backing = GuestMemoryBacking.GuestMemfd) =>
        Create(vm, size, backing, DirectMapUse.RemoveIfOffered, guestMemfdChecked: false);

    /// <summary>
    /// <see cref="Create(Vm, ulong, GuestMemoryBacking)"/>, with guest_memfd memory out of the host kernel's direct map
    /// as <paramref name="directMap"/> says.
    /// </summary>
    /// <exception cref="MicroVmException">guest_memfd was asked for, but <paramref name="vm"/> cannot have it, or
    /// <see cref="DirectMapUse.Remove"/> was, but the memory is host memory or the VM does not offer
    /// <see cref="GuestMemfdFlags.NoDirectMap"/>.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">A kernel call failed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="backing"/> is not a known value.</exception>
    public static GuestMemory Create(Vm vm, ulong size, GuestMemoryBacking backing, DirectMapUse directMap) =>
        Create(vm, size, backing, directMap, guestMemfdChecked: false);

    /// <summary>
    /// <paramref name="guestMemfdChecked"/>: the caller has just seen <see cref="GuestMemfdUnavailableReason"/> answer
    /// null for this VM (MicroVm.Create choosing the best backing), so the capabilities are not asked again.
    /// </summary>
    internal static GuestMemory Create(Vm vm, ulong size, GuestMemoryBacking backing, DirectMapUse directMap, bool guestMemfdChecked)
    {
        ArgumentNullException.ThrowIfNull(vm);
        if (directMap == DirectMapUse.Remove && backing == GuestMemoryBacking.HostMemory)
            throw new MicroVmException("DirectMapUse.Remove needs guest_memfd memory: host memory is always in the kernel's direct map");
        return backing switch
        {
            GuestMemoryBacking.GuestMemfd => CreateGuestMemfd(vm, size, directMap, guestMemfdChecked),
            GuestMemoryBacking.HostMemory => CreateHostMemory(vm, size),
            _ => throw new ArgumentOutOfRangeException(nameof(backing), backing, "unknown guest memory backing"),
        };
    }

    private static GuestMemory CreateGuestMemfd(Vm vm, ulong size, DirectMapUse directMap, bool capabilitiesChecked)
    {
        // Say which capability is missing, rather than let KVM_CREATE_GUEST_MEMFD answer a bare ENOTTY (no
        // guest_memfd at all) or EINVAL (kvm_gmem_create checks flags against KVM_CAP_GUEST_MEMFD_FLAGS).
        if (!capabilitiesChecked && GuestMemfdUnavailableReason(vm) is string why)
            throw new MicroVmException(why + "; GuestMemoryBacking.HostMemory runs the guest in ordinary host memory instead");
        ulong gmemAttributes = (ulong)vm.CheckExtension(vm.Kvm.Proposals.GuestMemfdMemoryAttributesCap);
        bool supportsPrivate = (gmemAttributes & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0;
        // One KVM_CHECK_EXTENSION for both choices: the direct map (DirectMapUse) and write(2) population, taken
        // whenever the VM offers GUEST_MEMFD_FLAG_WRITE (a proposal; PopulatesByWrite).
        GuestMemfdFlags supported = vm.SupportedGuestMemfdFlags;
        GuestMemfd memfd = vm.CreateGuestMemfd(size, RequiredFlags | DirectMapFlag(vm, supported, directMap) | (supported & GuestMemfdFlags.Write));
        GuestMapping? mapping = null;
        try
        {
            mapping = memfd.Map();
            var memory = new GuestMemory(vm, size, memfd, mapping, host: null, supportsPrivate);
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

    /// <summary>
    /// NO_DIRECT_MAP when <paramref name="directMap"/> wants it and the VM lists it in KVM_CAP_GUEST_MEMFD_FLAGS
    /// (kvm_arch_gmem_supports_no_direct_map decides per VM: not TDX or SNP on x86, v12 08/16).
    /// </summary>
    private static GuestMemfdFlags DirectMapFlag(Vm vm, GuestMemfdFlags supported, DirectMapUse directMap)
    {
        if (directMap == DirectMapUse.Keep) return GuestMemfdFlags.None;
        bool offered = supported.HasFlag(GuestMemfdFlags.NoDirectMap);
        if (offered) return GuestMemfdFlags.NoDirectMap;
        if (directMap == DirectMapUse.Remove)
        {
            throw new MicroVmException(
                $"VM type {vm.Type}: KVM_CAP_GUEST_MEMFD_FLAGS = 0x{(ulong)supported:X} lacks NO_DIRECT_MAP (0x{(ulong)GuestMemfdFlags.NoDirectMap:X}), " +
                "which DirectMapUse.Remove needs (a proposal: the direct map removal series, not in a shipped kernel); DirectMapUse.RemoveIfOffered keeps the memory in the direct map instead");
        }
        return GuestMemfdFlags.None;
    }

    private static GuestMemory CreateHostMemory(Vm vm, ulong size)
    {
        // MAP_PRIVATE anonymous memory: MADV_DONTNEED in Discard gives zero pages back, as a punch does for gmem.
        AnonymousMemory host = vm.AllocateMemory(size);
        try
        {
            var memory = new GuestMemory(vm, size, memfd: null, mapping: null, host, supportsPrivate: false);
            memory.Attach();
            return memory;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>
    /// True when a snapshot can be restored lazily (<see cref="SnapshotRestoreMode.LazyIfOffered"/>): guest_memfd
    /// memory populated by write(2) (<see cref="PopulatesByWrite"/>) in a bound slot, on a VM with KVM userfault
    /// (<see cref="Vm.SupportsUserfault"/>, asked once).
    /// </summary>
    public bool CanRestoreLazily => PopulatesByWrite && _slot is not null && (_userfaultOffered ??= _vm.SupportsUserfault);

    /// <summary>True while snapshot pages are still to be written on first use.</summary>
    public bool IsPopulatingLazily => _lazy is not null;

    /// <summary>Snapshot pages written on first use since the last lazy restore began.</summary>
    public long LazyPagesPopulated => _lazy?.Populated ?? _lazyPopulatedBefore;

    private long _lazyPopulatedBefore;

    /// <summary>
    /// Punches the memory and marks every page of <paramref name="target"/> for writing on first use (see
    /// <see cref="LazyPopulation"/>); <see cref="CanRestoreLazily"/> must be true.
    /// </summary>
    internal void RestoreLazily(PageSet target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (!CanRestoreLazily || target.PageSize != (int)PageSize)
            throw new InvalidOperationException("lazy restore needs guest_memfd memory with GUEST_MEMFD_FLAG_WRITE, KVM userfault and the host page size");
        Discard();
        _lazy = LazyPopulation.Start(Memfd!, _slot!, target);
        _lazyPopulatedBefore = 0;
    }

    /// <summary>
    /// A KVM userfault exit of the run loop: writes the snapshot pages of [gpa, +size); false when none was marked (no
    /// lazy restore, or another page: the exit is then a fault the loop reports).
    /// </summary>
    internal bool ServeUserfault(ulong gpa, ulong size)
    {
        LazyPopulation? lazy = _lazy;
        if (lazy is null) return false;
        bool served = lazy.Serve(gpa - Layout.MemoryBase, size);
        if (lazy.Remaining == 0) EndLazy();
        return served;
    }

    /// <summary>Writes every snapshot page still to come and ends the lazy restore (before memory is captured).</summary>
    internal void CompleteLazyRestore()
    {
        LazyPopulation? lazy = _lazy;
        if (lazy is null) return;
        lazy.PopulateAll();
        EndLazy();
    }

    /// <summary>Ends a lazy restore where it stands: the flag off, the bitmap freed (the caller replaces the memory).</summary>
    private void EndLazy()
    {
        LazyPopulation? lazy = Interlocked.Exchange(ref _lazy, null);
        if (lazy is null) return;
        _lazyPopulatedBefore = lazy.Populated;
        lazy.Dispose();
    }

    /// <summary>Before a host access: writes the snapshot pages of the range that are still to come.</summary>
    private void Populate(ulong gpa, ulong length)
    {
        LazyPopulation? lazy = _lazy;
        if (lazy is null) return;
        lazy.EnsurePopulated(gpa - Layout.MemoryBase, length);
        if (lazy.Remaining == 0) EndLazy();
    }

    /// <summary>Binds the memory at GPA 0 (slot 0): the guest_memfd with its mapping as userspace_addr, or the host memory.</summary>
    public void Attach()
    {
        if (_slot is not null) return;
        _slot = Memfd is not null
            ? _vm.AddGuestMemfdSlot(Slot, Layout.MemoryBase, Size, Memfd, userspace: _mapping)
            : _vm.AddMemorySlot(Slot, Layout.MemoryBase, _host!, _logging ? MemorySlotFlags.LogDirtyPages : MemorySlotFlags.None);
        if (_logging) _log = _slot.AllocateDirtyLog();
    }

    /// <summary>Deletes the slot (the guest then has no memory); <see cref="Attach"/> binds it again.</summary>
    public void Detach()
    {
        MemorySlot? slot = _slot;
        if (slot is null) return;
        // The slot's userfault bitmap goes with it: whatever was not written yet is written now.
        CompleteLazyRestore();
        // The slot's dirty log goes with it: keep what the guest wrote.
        if (_log is not null) MergeGuestWrites();
        _slot = null;
        _log = null;
        slot.Dispose();
    }

    /// <summary>
    /// Frees every page (guest_memfd: fallocate PUNCH_HOLE; host memory: madvise MADV_DONTNEED): the guest and the
    /// host see zeros again. KVM drops its mappings of the freed pages first (MMU notifier / gmem invalidation).
    /// </summary>
    public void Discard()
    {
        // Everything becomes zero: pages still to be written need not be.
        EndLazy();
        if (Memfd is null)
        {
            _host!.Discard(0, Size);
            // Everything is zero: nothing is changed since, nothing untracked survives, but the pristine pages are gone.
            if (_log is not null && _slot is not null) _slot.GetDirtyLog(_log);
            Array.Clear(_changed!);
            _untracked = false;
            _discarded = true;
            return;
        }
        // Punching keeps shared/private state (v8 series, S5 truncate test), so private pages are converted back
        // first: the host must be able to write the boot state and the image again.
        if (SupportsPrivateMemory) Memfd.SetAttributes(0, Size, 0);
        Memfd.PunchHole(0, (long)Size);
    }

    /// <summary>True when the host may touch every page of [gpa, gpa+length) (none of them was made private).</summary>
    public bool IsShared(ulong gpa, ulong length) => Memfd is null ? Contains(gpa, length) : Memfd.IsShared(gpa, length);

    /// <summary>Copies <paramref name="bytes"/> to guest-physical address <paramref name="gpa"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside guest memory.</exception>
    /// <exception cref="GuestMemoryFaultException">The range touches a private page.</exception>
    public void Write(ulong gpa, ReadOnlySpan<byte> bytes)
    {
        Populate(gpa, (ulong)bytes.Length);
        if (_mapping is not null) _mapping.Write(gpa, bytes);
        else
        {
            _host!.Write(gpa, bytes);
            MarkChanged(gpa, (ulong)bytes.Length);
        }
    }

    /// <summary>
    /// Copies [<paramref name="gpa"/>, +destination.Length) of guest memory into <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside guest memory.</exception>
    /// <exception cref="GuestMemoryFaultException">The range touches a private page.</exception>
    public void Read(ulong gpa, Span<byte> destination)
    {
        Populate(gpa, (ulong)destination.Length);
        if (_mapping is not null) _mapping.Read(gpa, destination);
        else _host!.Read(gpa, destination);
    }

    /// <summary>Reads an unmanaged value at guest-physical address <paramref name="gpa"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside guest memory.</exception>
    /// <exception cref="GuestMemoryFaultException">The range touches a private page.</exception>
    public T Read<T>(ulong gpa) where T : unmanaged
    {
        Populate(gpa, (ulong)System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        return _mapping is not null ? _mapping.Read<T>(gpa) : _host!.Read<T>(gpa);
    }

    /// <summary>Writes an unmanaged value at guest-physical address <paramref name="gpa"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside guest memory.</exception>
    /// <exception cref="GuestMemoryFaultException">The range touches a private page.</exception>
    public void Write<T>(ulong gpa, T value) where T : unmanaged
    {
        Populate(gpa, (ulong)System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        if (_mapping is not null) _mapping.Write(gpa, value);
        else
        {
            _host!.Write(gpa, value);
            MarkChanged(gpa, (ulong)System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        }
    }

    /// <summary>
    /// A checked span over [gpa, gpa+length); valid only for the current operation. It is writable, so its pages count
    /// as written by the host (<see cref="RestorePristine"/>).
    /// </summary>
    public Span<byte> GetSpan(ulong gpa, int length)
    {
        Populate(gpa, (ulong)Math.Max(length, 0));
        if (_mapping is not null) return _mapping.GetSpan(gpa, length);
        Span<byte> span = _host!.GetSpan(gpa, length);
        MarkChanged(gpa, (ulong)length);
        return span;
    }

    /// <summary>Sets [<paramref name="gpa"/>, +<paramref name="length"/>) to <paramref name="value"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside guest memory.</exception>
    /// <exception cref="GuestMemoryFaultException">The range touches a private page.</exception>
    public void Fill(ulong gpa, ulong length, byte value)
    {
        Populate(gpa, length);
        if (_mapping is not null) _mapping.Fill(gpa, length, value);
        else
        {
            _host!.Fill(gpa, length, value);
            MarkChanged(gpa, length);
        }
    }

    /// <summary>True with host memory: SavePristine and RestorePristine work (a guest_memfd slot cannot log dirty pages).</summary>
    internal bool CanRestorePristine => Memfd is null;

    /// <summary>
    /// True after SavePristine: RestorePristine has Reset's state to return to (false again once a snapshot's state was
    /// adopted in its place by <see cref="RestoreTo"/>).
    /// </summary>
    internal bool HasPristine => _pristine is not null && !_pristineIsSnapshot;

    /// <summary>
    /// Host memory only: keeps a copy of every page the host changed since creation or the last <see cref="Discard"/>
    /// (or the last save) through the accessors here, and from now on logs the guest's writes (the slot gets
    /// LOG_DIRTY_PAGES the first time). <see cref="RestorePristine"/> returns to it. Until logging is on the
    /// guest's writes are not seen: call it only when the guest has not run since creation or the last Discard.
    /// </summary>
    internal void SavePristine()
    {
        RequireHostMemory();
        if (_untracked) MarkChanged(0, Size);
        EnableLogging();
        MergeGuestWrites();
        ulong[] changed = _changed!;
        int count = 0;
        foreach (ulong word in changed) count += BitOperations.PopCount(word);
        var pages = new ulong[count];
        var bytes = new byte[checked(count * (int)PageSize)];
        int i = 0;
        for (int w = 0; w < changed.Length; w++)
        {
            for (ulong word = changed[w]; word != 0; word &= word - 1)
            {
                ulong page = (ulong)w * 64 + (ulong)BitOperations.TrailingZeroCount(word);
                pages[i] = page;
                _host!.Read(page * PageSize, bytes.AsSpan(i * (int)PageSize, (int)PageSize));
                i++;
            }
        }
        Array.Clear(changed);
        _pristine = new PageSet((int)PageSize, pages, bytes);
        _pristineIsSnapshot = false;
        _untracked = false;
        _discarded = false;
    }

    private void EnableLogging()
    {
        if (_logging) return;
        _logging = true;
        if (_slot is not null)
        {
            // A flags-only change (KVM_MR_FLAGS_ONLY): deleting and re-adding the slot would do, but kvm_pvm
            // triple-faults the next guest entry after a slot is re-added (docs/STATUS.md).
            _slot.SetDirtyLogging(true);
            _log = _slot.AllocateDirtyLog();
        }
    }

    /// <summary>
    /// Host memory only: puts back the state of the last <see cref="SavePristine"/> by rewriting exactly the pages
    /// changed since (the guest's writes from the slot's dirty log, the host's through the accessors here): a saved
    /// page gets its saved bytes, any other page zeros. The pages stay populated, so the guest does not fault them in
    /// again as it would after <see cref="Discard"/>. If the host address was handed out (<see cref="HostAddress"/>)
    /// or everything was discarded, it frees everything and writes the saved pages back instead.
    /// </summary>
    internal void RestorePristine()
    {
        RequireHostMemory();
        PageSet pristine = _pristine ?? throw new InvalidOperationException("RestorePristine before SavePristine");
        MergeGuestWrites();
        ulong[] changed = _changed!;
        if (_untracked || _discarded)
        {
            _host!.Discard(0, Size);
            for (int i = 0; i < pristine.Count; i++) RestorePage(pristine, i);
            _untracked = false;
            _discarded = false;
        }
        else
        {
            RewriteChanged(pristine);
        }
        Array.Clear(changed);
    }

    /// <summary>Every page marked in the change bitmap gets its bytes in <paramref name="state"/>, or zeros.</summary>
    private void RewriteChanged(PageSet state)
    {
        ulong[] changed = _changed!;
        for (int w = 0; w < changed.Length; w++)
        {
            for (ulong word = changed[w]; word != 0; word &= word - 1)
            {
                ulong page = (ulong)w * 64 + (ulong)BitOperations.TrailingZeroCount(word);
                int index = state.IndexOf(page);
                if (index >= 0) RestorePage(state, index);
                else ClearPage(page);
            }
        }
    }

    private void RestorePage(PageSet pages, int index)
    {
        pages.Page(index).CopyTo(_host!.GetSpan(pages.Pages[index] * PageSize, pages.PageSize));
        PagesRewritten++;
    }

    private void ClearPage(ulong page)
    {
        _host!.GetSpan(page * PageSize, (int)PageSize).Clear();
        PagesRewritten++;
    }

    /// <summary>
    /// Pages written or zeroed by RestorePristine, RestoreTo and WritePages since creation: what a restore cost (not
    /// counting a free of everything, which is one madvise or punch), for tests and benchmarks.
    /// </summary>
    internal long PagesRewritten { get; private set; }

    /// <summary>
    /// Makes memory equal <paramref name="target"/>: its pages with their bytes, zeros everywhere else. A guest_memfd
    /// is punched (private pages made shared first, as in <see cref="Discard"/>) and the target's pages written: it
    /// has no dirty log to say what changed. Host memory adopts the target as its pristine state, so that restoring it
    /// again rewrites only the pages changed since (<see cref="RestorePristine"/>): when another pristine state is kept
    /// and tracking is exact, the pages to rewrite are the changed ones, the old state's and the target's (everything
    /// else is zero in both); otherwise (never saved, raw host address, discarded) everything is freed first and
    /// logging turned on. Reset's own pristine state is then gone (<see cref="HasPristine"/> is false).
    /// </summary>
    internal void RestoreTo(PageSet target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (Memfd is not null)
        {
            Discard();
            WritePages(target);
            return;
        }
        if (target.PageSize != (int)PageSize)
        {
            // The dirty log and the tracking count host pages of another size: write it, adopt nothing.
            Discard();
            WritePages(target);
            return;
        }
        if (ReferenceEquals(_pristine, target))
        {
            RestorePristine();
            return;
        }
        if (_pristine is PageSet old && !_untracked && !_discarded)
        {
            MergeGuestWrites();
            ulong[] changed = _changed!;
            foreach (ulong page in old.Pages) changed[page / 64] |= 1UL << (int)(page % 64);
            foreach (ulong page in target.Pages) changed[page / 64] |= 1UL << (int)(page % 64);
            RewriteChanged(target);
            Array.Clear(changed);
        }
        else
        {
            // Discard reads (and so clears) the dirty log when logging is on; the writes below are the host's, which
            // KVM does not log, and are the target itself, so nothing counts as changed after them.
            Discard();
            for (int i = 0; i < target.Count; i++) RestorePage(target, i);
            EnableLogging();
            _untracked = false;
            _discarded = false;
        }
        _pristine = target;
        _pristineIsSnapshot = true;
    }

    /// <summary>
    /// pwrite(2) of whole pages at page-aligned <paramref name="gpa"/> on the guest_memfd (<see cref="PopulatesByWrite"/>
    /// only). For fresh pages: with NO_DIRECT_MAP a page already faulted in refuses the write (EEXIST).
    /// </summary>
    internal void WriteWholePages(ulong gpa, ReadOnlySpan<byte> pages)
    {
        if (!PopulatesByWrite) throw new InvalidOperationException("this memory is not a guest_memfd written by write(2)");
        Memfd!.WriteAll(checked((long)gpa), pages);
    }

    /// <summary>Writes the pages of <paramref name="pages"/> (the rest of memory is left as it is).</summary>
    internal void WritePages(PageSet pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        if (PopulatesByWrite && pages.PageSize == (int)PageSize) WriteRuns(pages);
        else for (int i = 0; i < pages.Count; i++) Write(pages.Pages[i] * (ulong)pages.PageSize, pages.Page(i));
        PagesRewritten += pages.Count;
    }

    /// <summary>
    /// write(2) of each run of consecutive pages straight from the set's contents (they lie page after page). Callers
    /// write fresh memory only (creation, or after Discard's punch), so no page has been faulted in yet: with
    /// NO_DIRECT_MAP, a page already removed from the direct map would refuse the write (EEXIST).
    /// </summary>
    private void WriteRuns(PageSet pages)
    {
        int ps = pages.PageSize;
        int i = 0;
        while (i < pages.Count)
        {
            int end = i + 1;
            while (end < pages.Count && pages.Pages[end] == pages.Pages[end - 1] + 1) end++;
            Memfd!.WriteAll(checked((long)(pages.Pages[i] * (ulong)ps)), pages.Contents.AsSpan(i * ps, (end - i) * ps));
            i = end;
        }
    }

    /// <summary>
    /// A checked read-only span over [gpa, gpa+length) for the current operation; unlike <see cref="GetSpan"/> it does not
    /// count its pages as written. A private guest_memfd page throws (<see cref="GuestMemoryFaultException"/>), never SIGBUS.
    /// </summary>
    internal ReadOnlySpan<byte> GetReadOnlySpan(ulong gpa, int length)
    {
        Populate(gpa, (ulong)Math.Max(length, 0));
        return _mapping is not null ? _mapping.GetSpan(gpa, length) : _host!.GetSpan(gpa, length);
    }

    private void RequireHostMemory()
    {
        if (Memfd is not null)
            throw new InvalidOperationException("only host memory can restore its pristine pages (a guest_memfd slot cannot log dirty pages): use Discard");
    }

    /// <summary>KVM_GET_DIRTY_LOG (which also clears it), ORed into the changed pages.</summary>
    private void MergeGuestWrites()
    {
        if (_slot is null || _log is null) return;
        _slot.GetDirtyLog(_log);
        ReadOnlySpan<ulong> words = _log.Words;
        ulong[] changed = _changed!;
        for (int i = 0; i < words.Length; i++) changed[i] |= words[i];
    }

    private void MarkChanged(ulong gpa, ulong length)
    {
        if (length == 0) return;
        ulong[] changed = _changed!;
        ulong last = (gpa + length - 1) / PageSize;
        for (ulong page = gpa / PageSize; page <= last; page++) changed[page / 64] |= 1UL << (int)(page % 64);
    }

    /// <summary>True when [gpa, gpa+length) lies inside guest memory.</summary>
    public bool Contains(ulong gpa, ulong length) => gpa <= Size && length <= Size - gpa;

    /// <summary>
    /// Deletes the slot, unmaps the memory and closes the guest_memfd (or frees the host memory). The VM is not
    /// disposed.
    /// </summary>
    public void Dispose()
    {
        // Pages a lazy restore has not written yet are not wanted any more (Detach alone would write them).
        EndLazy();
        Detach();
        _mapping?.Dispose();
        Memfd?.Dispose();
        _host?.Dispose();
    }
}
