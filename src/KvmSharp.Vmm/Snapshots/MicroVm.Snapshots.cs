// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Telemetry;

namespace KvmSharp.Vmm;

public sealed partial class MicroVm
{
    /// <summary>
    /// Captures this micro-VM between calls: its guest memory (the pages that are not all zero), its vCPU's special
    /// registers and the MSRs a guest may set (<see cref="MicroVmSnapshot.Sregs"/>, <see cref="MicroVmSnapshot.Msrs"/>:
    /// one KVM_GET_SREGS and one KVM_GET_MSRS, plus KVM_GET_MSR_INDEX_LIST on a micro-VM's first snapshot), image,
    /// memory size, VM type and offered features. An arm64 micro-VM's snapshot holds every register of KVM_GET_REG_LIST
    /// instead (<see cref="MicroVmSnapshot.Arm64RegisterIds"/>; KVM_GET_ONE_REG each). Hyperlight's pattern: run the guest's initialisation once, snapshot, then start
    /// every later use from the snapshot (<see cref="Create(MicroVmSnapshot, MicroVmOptions?)"/>, <see cref="Restore"/>,
    /// a <see cref="MicroVmPool"/> of it). Refused (<see cref="MicroVmSnapshotException"/>, nothing changes) when the
    /// micro-VM is disposed, in its own call (from a host function), faulted (its memory may be half-way through
    /// something), or holds private guest pages, which the host cannot read.
    /// </summary>
    public MicroVmSnapshot Snapshot()
    {
        ThrowIfCannotUseSnapshots("Snapshot");
        if (IsFaulted)
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.Faulted,
                "cannot snapshot a faulted micro-VM: its last call did not end normally, so its memory may be half-way through an update; Reset() or Restore() it first");
        }
        if (!_memory.IsShared(0, _memory.Size))
        {
            ulong first = 0;
            while (first < _memory.Size && _memory.IsShared(first, Layout.PageSize)) first += Layout.PageSize;
            throw new MicroVmSnapshotException(SnapshotRefusal.PrivatePages,
                $"cannot snapshot a micro-VM whose guest holds private pages (the first at 0x{first:X}): the host cannot read them; the guest must make them shared first");
        }
        // Capture reads what is resident: the pages a lazy restore has not written yet are written first.
        _memory.CompleteLazyRestore();
        // arm64: every register of KVM_GET_REG_LIST (Arm64VcpuState), read before the memory like the x86 state.
        if (_arm64 is not null)
            return new MicroVmSnapshot(Image, _memory.Size, _vm.Type, Features, SnapshotCapture.Capture(_memory), Arm64VcpuState.Capture(_vcpu));
        VcpuState vcpu = CaptureVcpuState();
        return new MicroVmSnapshot(Image, _memory.Size, _vm.Type, Features, SnapshotCapture.Capture(_memory), vcpu);
    }

    /// <summary>
    /// A new micro-VM whose guest memory and vCPU state (special registers, MSRs) equal <paramref name="snapshot"/>'s;
    /// the image is not run or loaded again. Its
    /// image, memory size and VM type are the snapshot's (those of <paramref name="options"/> are not used); everything
    /// else comes from <paramref name="options"/>, so the kernel and the backing may differ from the snapshot's (a
    /// snapshot of a guest_memfd micro-VM on one kernel runs in host memory on another). Refused with a
    /// <see cref="MicroVmSnapshotException"/> when the new VM would offer its guest other features than the
    /// snapshot's guest was offered, or when its kernel does not take one of the snapshot's MSRs
    /// (<see cref="SnapshotRefusal.VcpuStateRefused"/>, naming it).
    /// </summary>
    public static MicroVm Create(MicroVmSnapshot snapshot, MicroVmOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        options = (options ?? new MicroVmOptions()) with { MemorySize = snapshot.MemorySize, VmType = snapshot.VmType };
        // An architecture asked for is checked before anything is created; the kernel's after its VM exists (CreateCore).
        if (options.Architecture is { } asked) snapshot.CheckArchitecture(asked);
        long start = Stopwatch.GetTimestamp();
        MicroVm vm = CreateCore(snapshot.Image, options, snapshot);
        try
        {
            vm.LoadSnapshotVcpu(snapshot);
            Instruments.Created(start, fromSnapshot: true);
            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Puts this micro-VM back to <paramref name="snapshot"/>: guest memory as captured (nothing of what happened since
    /// survives), the snapshot's special registers and MSRs reloaded (KVM_SET_SREGS, KVM_SET_MSRS), a fault cleared.
    /// The snapshot must be of the same image (by content) and memory size, and of a guest offered the same features,
    /// and architecture (<see cref="SnapshotRefusal.ArchitectureMismatch"/>; arm64: KVM_ARM_VCPU_INIT, then
    /// KVM_SET_ONE_REG of each register), and this kernel must list every MSR it holds; otherwise a <see cref="MicroVmSnapshotException"/> names both
    /// values (or the MSR) and nothing changes. A guest_memfd is punched and the snapshot's pages written; host memory adopts
    /// the snapshot as its pristine state, so from the second restore of the same snapshot on only the pages changed
    /// since (dirty log and the host's tracked writes) are rewritten. If the kernel fails half-way, the micro-VM is
    /// faulted until the next successful Reset or Restore.
    /// </summary>
    public void Restore(MicroVmSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ThrowIfCannotUseSnapshots("Restore");
        snapshot.CheckFits(Image, _memory.Size, Features, Architecture);
        // Before any page is rewritten: a vector-length mismatch refused later would leave the micro-VM faulted.
        if (_arm64 is not null) snapshot.Arm64Vcpu!.CheckSve(_vcpu);
        if (_arm64 is null)
        {
            CheckMsrsListed(snapshot);
            CheckTscRate(snapshot);
        }
        long start = Stopwatch.GetTimestamp();
        bool lazy = RestoresLazily(Options.SnapshotRestore, _memory);
        try
        {
            if (lazy) _memory.RestoreLazily(snapshot.Pages);
            else _memory.RestoreTo(snapshot.Pages);
            LastRestoreWasLazy = lazy;
            if (_arm64 is not null) LoadArm64VcpuState(snapshot.Arm64Vcpu!);
            else LoadVcpuState(snapshot.Vcpu);
            _loop.EnsureSteppingOff();
        }
        catch
        {
            IsFaulted = true;
            throw;
        }
        _vcpu.ImmediateExit = false;
        IsFaulted = false;
        Instruments.ResetDone(start, toSnapshot: true);
    }

    /// <summary>
    /// True when the last restore of a snapshot into this micro-VM (<see cref="Create(MicroVmSnapshot, MicroVmOptions?)"/>
    /// or <see cref="Restore"/>) marked its pages for writing on first use (<see cref="SnapshotRestoreMode.LazyIfOffered"/>)
    /// instead of writing them all; <see cref="GuestMemory.IsPopulatingLazily"/> says whether pages are still to come
    /// and <see cref="GuestMemory.LazyPagesPopulated"/> how many were written so far.
    /// </summary>
    public bool LastRestoreWasLazy { get; private set; }

    /// <summary>Whether <paramref name="mode"/> restores lazily into <paramref name="memory"/>; <see cref="SnapshotRestoreMode.Lazy"/> where it cannot throws.</summary>
    private static bool RestoresLazily(SnapshotRestoreMode mode, GuestMemory memory)
    {
        if (mode == SnapshotRestoreMode.Eager) return false;
        if (memory.CanRestoreLazily) return true;
        if (mode == SnapshotRestoreMode.LazyIfOffered) return false;
        throw new MicroVmSnapshotException(SnapshotRefusal.LazyRestoreUnavailable,
            $"SnapshotRestoreMode.Lazy needs guest_memfd memory written by write(2) (GUEST_MEMFD_FLAG_WRITE: {memory.PopulatesByWrite}) and KVM userfault " +
            "(KVM_CAP_USERFAULT), both unmerged proposals this kernel does not offer; LazyIfOffered falls back to an eager restore");
    }

    /// <summary>This kernel's MSR index list and the snapshot MSRs in it (asked once per <see cref="Kvm"/>).</summary>
    private VcpuState.KernelMsrs KernelMsrs => VcpuState.MsrsOf(_vm.Kvm);

    private VcpuState CaptureVcpuState()
    {
        uint[] captured = KernelMsrs.Captured;
        // TSC_AUX where the kernel reads and takes it without listing it (kvm_pvm): Reset restores it (UnlistedMsrs),
        // so it is the guest's to set, and the snapshot carries it. The largest candidate: the order stays ascending.
        if (!captured.Contains(X86Msr.TscAux) && Holds(_atCreation!.Msrs, X86Msr.TscAux)) captured = [.. captured, X86Msr.TscAux];
        kvm_sregs sregs = _vcpu.GetSregs();
        var msrs = new MsrEntry[captured.Length];
        for (int i = 0; i < msrs.Length; i++) msrs[i] = new MsrEntry(captured[i], 0);
        int read = msrs.Length == 0 ? 0 : _vcpu.GetMsrs(msrs);
        if (read != msrs.Length)
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.VcpuStateRefused,
                $"cannot snapshot: the kernel lists MSR {Describe(msrs[read].Index)} but KVM_GET_MSRS does not read it");
        }
        return new VcpuState(sregs, msrs, ExtendedVcpuState.Capture(_vcpu), _vcpu.GetMsr(X86Msr.Tsc), GuestCpuid.TscKhzOf(_vcpu));
    }

    /// <summary>
    /// Gives the new <paramref name="vcpu"/> a snapshot's TSC rate (KVM_SET_TSC_KHZ, when it differs from the rate the
    /// vCPU has: x86.c kvm_arch_vcpu_ioctl → kvm_set_tsc_khz, which without TSC scaling takes a rate within 250 ppm of
    /// the host's or above it and refuses a lower one with EINVAL — probed on kvm_pvm, ClockRules
    /// vcpu_tsc_khz_without_scaling) and returns <paramref name="cpuid"/> announcing it in the timing leaf.
    /// </summary>
    private static IReadOnlyList<CpuidEntry>? GiveTscRate(Vcpu vcpu, uint tscKhz, IReadOnlyList<CpuidEntry>? cpuid, bool required)
    {
        if (!GuestCpuid.HasTscKhz(vcpu.Vm.Kvm))
        {
            if (!required) return cpuid;
            throw new MicroVmSnapshotException(SnapshotRefusal.TscRateRefused,
                $"the snapshot's vCPU ran its TSC at {tscKhz} kHz, and this kernel cannot say or set a vCPU's TSC rate (no KVM_CAP_GET_TSC_KHZ)");
        }
        uint own = vcpu.TscKhz;
        if (own != tscKhz)
        {
            try
            {
                vcpu.SetTscKhz(tscKhz);
            }
            catch (KvmException) when (!required)
            {
                // KVM stores even a rate it refuses (kvm_set_tsc_khz sets virtual_tsc_khz first; KVM_GET_TSC_KHZ reads
                // it back): put this host's back, which the CPUID table (read from this vCPU's rate) already says.
                vcpu.SetTscKhz(own);
                return cpuid;
            }
            catch (KvmException e)
            {
                throw new MicroVmSnapshotException(SnapshotRefusal.TscRateRefused,
                    $"the snapshot's vCPU ran its TSC at {tscKhz} kHz, a new vCPU here at {own} kHz, and KVM_SET_TSC_KHZ({tscKhz}) failed with {e.ErrnoName}" +
                    (vcpu.Vm.SupportsTscScaling ? "" : " (this host has no TSC scaling: a rate more than 250 ppm below its own is refused)"), e);
            }
        }
        return GuestCpuid.WithTscKhz(cpuid, tscKhz);
    }

    /// <summary>
    /// Refuses, before anything changes, to restore a snapshot taken at another TSC rate than this micro-VM's vCPU runs
    /// at: the guest's CPUID already announced this one, and KVM takes a new table only before the first KVM_RUN.
    /// </summary>
    private void CheckTscRate(MicroVmSnapshot snapshot)
    {
        uint saved = snapshot.TscKhz;
        if (saved == 0 || !Options.RequireSnapshotTscRate) return;
        uint own = GuestCpuid.TscKhzOf(_vcpu);
        if (own != saved)
        {
            throw new MicroVmSnapshotException(SnapshotRefusal.TscRateRefused,
                $"the snapshot's vCPU ran its TSC at {saved} kHz, this micro-VM's at {own} kHz, which its CPUID (0x40000010) already announced; create a micro-VM from the snapshot instead");
        }
    }

    /// <summary>Refuses, before anything changes, a snapshot holding an MSR this kernel does not list.</summary>
    private void CheckMsrsListed(MicroVmSnapshot snapshot)
    {
        foreach (MsrEntry msr in snapshot.Msrs)
        {
            // TSC_AUX at its reset value needs no writing: a kernel that does not list it (no RDTSCP/RDPID) still takes the snapshot.
            if (IsUnlistedResetTscAux(msr)) continue;
            // An MSR Reset restores is one this kernel takes, listed or not (TSC_AUX on kvm_pvm).
            if (!KernelMsrs.IndexList.Contains(msr.Index) && !Holds(_atCreation!.Msrs, msr.Index))
            {
                throw new MicroVmSnapshotException(SnapshotRefusal.VcpuStateRefused,
                    $"the snapshot holds MSR {Describe(msr.Index)} = 0x{msr.Value:X}, which this kernel does not list in KVM_GET_MSR_INDEX_LIST, so it cannot be restored");
            }
        }
    }

    /// <summary>A new micro-VM's vCPU state from <paramref name="snapshot"/> (of this micro-VM's architecture).</summary>
    private void LoadSnapshotVcpu(MicroVmSnapshot snapshot)
    {
        if (_arm64 is not null)
        {
            LoadArm64VcpuState(snapshot.Arm64Vcpu!);
            return;
        }
        CheckMsrsListed(snapshot);
        LoadVcpuState(snapshot.Vcpu);
    }

    /// <summary>
    /// KVM_ARM_VCPU_INIT (a reset of every register, as on <see cref="Reset"/>), then KVM_SET_ONE_REG of each
    /// register of <paramref name="state"/> in its order (<see cref="Arm64VcpuState"/>).
    /// </summary>
    private void LoadArm64VcpuState(Arm64VcpuState state)
    {
        _arm64!.ResetVcpu(_vcpu);
        state.Load(_vcpu);
    }

    /// <summary>KVM_SET_SREGS, KVM_SET_MSRS and the extended state of <paramref name="state"/>.</summary>
    private void LoadVcpuState(VcpuState state)
    {
        try
        {
            _vcpu.SetSregs(state.Sregs);
        }
        catch (KvmException e)
        {
            // E.g. a CR4 bit the guest set that this vCPU's CPUID does not offer (the snapshot came from another host).
            kvm_sregs r = state.Sregs;
            throw new MicroVmSnapshotException(SnapshotRefusal.VcpuStateRefused,
                $"this kernel refused the snapshot's special registers (CR0 0x{r.cr0:X}, CR4 0x{r.cr4:X}, EFER 0x{r.efer:X}): {e.Message}", e);
        }
        // One KVM_SET_MSRS: every MSR Reset restores at its creation value, except those the snapshot holds, which get
        // the snapshot's — so an MSR the snapshot does not carry (MISC_ENABLE …) is not left as a previous user set it.
        MsrEntry[] atCreation = _atCreation!.Msrs;
        int most = atCreation.Length + state.Msrs.Length;
        Span<MsrEntry> msrs = most <= 256 ? stackalloc MsrEntry[most] : new MsrEntry[most];
        int count = 0;
        foreach (MsrEntry msr in atCreation) msrs[count++] = SnapshotValue(state.Msrs, msr);
        foreach (MsrEntry msr in state.Msrs)
            if (!Holds(atCreation, msr.Index) && !IsUnlistedResetTscAux(msr)) msrs[count++] = msr;
        msrs = msrs[..count];
        if (count > 0)
        {
            int written = _vcpu.SetMsrs(msrs);
            if (written != count)
            {
                MsrEntry refused = msrs[written];
                throw new MicroVmSnapshotException(SnapshotRefusal.VcpuStateRefused,
                    $"this kernel refused the snapshot's MSR {Describe(refused.Index)} = 0x{refused.Value:X} (KVM_SET_MSRS wrote {written} of {count})");
            }
        }
        RestoreTscOffset(floor: state.Tsc);
        try
        {
            state.Extended.Load(_vcpu);
        }
        catch (Exception e) when (e is KvmException or MicroVmException)
        {
            // E.g. an XSAVE image with a component this vCPU's CPUID does not permit, or XCR0 beyond it.
            ExtendedVcpuState x = state.Extended;
            throw new MicroVmSnapshotException(SnapshotRefusal.VcpuStateRefused,
                $"this kernel refused the snapshot's FPU/extended state ({(x.IsXsave ? $"{x.Fpu.Length}-byte XSAVE image" : "legacy FPU image")}, XCR0 {(x.Xcr0 is { } v ? $"0x{v:X}" : "absent")}, DR7 0x{x.DebugRegs.dr7:X}): {e.Message}", e);
        }
    }

    /// <summary>The snapshot's entry for <paramref name="msr"/>'s index, or <paramref name="msr"/> itself.</summary>
    private static MsrEntry SnapshotValue(MsrEntry[] snapshot, MsrEntry msr)
    {
        foreach (MsrEntry s in snapshot)
            if (s.Index == msr.Index) return s;
        return msr;
    }

    private static bool Holds(MsrEntry[] msrs, uint index)
    {
        foreach (MsrEntry m in msrs)
            if (m.Index == index) return true;
        return false;
    }

    /// <summary>A snapshot's TSC_AUX of 0 (its value at reset) on a kernel that does not list TSC_AUX.</summary>
    private bool IsUnlistedResetTscAux(MsrEntry msr) =>
        msr.Index == X86Msr.TscAux && msr.Value == 0 && !KernelMsrs.IndexList.Contains(msr.Index) && !Holds(_atCreation!.Msrs, msr.Index);

    private static string Describe(uint msr) => $"{X86Msr.NameOf(msr)} (0x{msr:X})";

    private void ThrowIfCannotUseSnapshots(string what)
    {
        if (_disposed) throw new MicroVmSnapshotException(SnapshotRefusal.Disposed, $"MicroVm.{what} on a disposed micro-VM");
        if (_inCall) throw new MicroVmSnapshotException(SnapshotRefusal.InCall, InCallMessage(what));
        if (_sealed is not null)
            throw new MicroVmSnapshotException(SnapshotRefusal.ProtectedGuest, Confidential.SealedGuest.SnapshotRefusal(_sealed, what));
    }

    /// <summary>
    /// The CallRegion features that follow from this micro-VM's VM type, which a snapshot must match (an SNP micro-VM's
    /// FeatureSnp too: it never reaches a snapshot, which SNP refuses).
    /// </summary>
    internal ulong Features => FeaturesOf(_conversion) | (_snp is not null ? GuestAbi.CallRegion.FeatureSnp : 0);

    /// <summary>
    /// What the guest is offered on every call: <see cref="Features"/> and the VMM's own services (the console-write
    /// port, GUEST-ABI v5), which a snapshot does not record: every VMM that restores one offers them.
    /// </summary>
    private ulong CallFeatures => Features | (_consoleWrites is not null ? GuestAbi.CallRegion.FeatureConsoleWrite : 0);

    private static ulong FeaturesOf(Confidential.MemoryConversion? conversion) =>
        conversion is null ? 0 : GuestAbi.CallRegion.FeaturePrivateMemory;
}
