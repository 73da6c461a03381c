// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.Vmm;

/// <summary>The arm64 side of <see cref="MicroVm"/>: the architecture seam and the arm64 creation path.</summary>
public sealed partial class MicroVm
{
    /// <summary>
    /// The guest's instruction set: <see cref="MicroVmOptions.Architecture"/>, or when that is null the kernel's
    /// (GUEST-ABI.md: x86-64 micro-VMs use port I/O, arm64 ones the same devices on an MMIO window).
    /// </summary>
    public GuestArchitecture Architecture => _arm64 is null ? GuestArchitecture.X86_64 : GuestArchitecture.Arm64;

    /// <summary>
    /// True for an arm64 micro-VM whose image was built for BTI (<see cref="GuestImage.BranchProtection"/>) on a vCPU
    /// with FEAT_BTI: the image's pages are guarded, so an indirect branch in them to anything but a landing pad ends
    /// the call with a branch target exception (EC 0x0D). A snapshot keeps the tables it was taken with.
    /// </summary>
    public bool BranchTargetsGuarded => _arm64?.GuardsBranchTargets(Image) == true;

    /// <summary>
    /// True for an arm64 micro-VM whose image was built with return-address signing
    /// (<see cref="BranchProtection.Pac"/>: -mbranch-protection=pac-ret or standard) on a kernel that offers pointer
    /// authentication (KVM_CAP_ARM_PTRAUTH_ADDRESS and _GENERIC): its vCPU has the two features, keys of its own, and
    /// SCTLR_EL1's EnIA/EnIB/EnDA/EnDB set, so a return address overwritten in memory fails its AUTIASP and the RET
    /// faults instead of going where the overwrite pointed. Elsewhere PACIASP/AUTIASP are NOPs.
    /// </summary>
    public bool ReturnAddressesSigned => _arm64?.PointerAuth == true;

    /// <summary>The kernel's architecture for <paramref name="vm"/>; a different <see cref="MicroVmOptions.Architecture"/> is refused.</summary>
    private static GuestArchitecture ArchitectureOf(Kvm kvm, Vm vm, MicroVmOptions options)
    {
        GuestArchitecture kernel = ArchitectureProbe.Of(kvm, vm);
        if (options.Architecture is { } asked && asked != kernel)
            throw new MicroVmException($"MicroVmOptions.Architecture is {asked}, but this kernel's VMs are {kernel}");
        // SVE is arm64's (KVM_ARM_VCPU_SVE): an x86-64 micro-VM has no such vCPU feature to give.
        if (kernel != GuestArchitecture.Arm64 && options.Arm64SveVectorBits is int bits)
        {
            throw new MicroVmSveException(bits, [],
                $"MicroVmOptions.Arm64SveVectorBits = {bits}: SVE is an arm64 feature, and this kernel's VMs are {kernel}");
        }
        return kernel;
    }

    /// <summary>Refuses what an arm64 micro-VM does not have, before anything is created for it.</summary>
    private static void CheckArm64(MicroVmOptions options, MicroVmSnapshot? snapshot)
    {
        snapshot?.CheckArchitecture(GuestArchitecture.Arm64);
        if (options.Arm64Refusal() is string refusal) throw new MicroVmException(refusal);
    }

    /// <summary>
    /// An arm64 micro-VM on <paramref name="vm"/> (owned from here: disposed by the caller's catch on failure): guest
    /// memory as on x86-64 (one guest_memfd MMAP|INIT_SHARED slot at GPA 0, or host memory), the trampoline and vector
    /// table, the image, one vCPU initialised with PSCI 0.2 (<see cref="Arm64Boot"/>) — and with SVE at
    /// <see cref="MicroVmOptions.Arm64SveVectorBits"/>, its vector lengths set and finalized before anything else of it
    /// (<see cref="Arm64Boot.ResetVcpu"/>). No private memory. From a
    /// <paramref name="snapshot"/>: its pages instead (they hold the tables, trampoline, vectors and image) — written now,
    /// or lazily on first use as on x86-64 (<see cref="RestoresLazily"/>: guest_memfd write(2) and KVM userfault, which
    /// the arm64 stage-2 consults like x86's MMU) — and a vCPU the caller initialises and loads (MicroVm.Snapshots.cs
    /// LoadArm64VcpuState).
    /// </summary>
    private static MicroVm CreateArm64(GuestImage image, MicroVmOptions options, Kvm? owned, Vm vm, MicroVmSnapshot? snapshot)
    {
        GuestMemory? memory = null;
        Vcpu? vcpu = null;
        bool lazy = false;
        try
        {
            Arm64Boot boot = Arm64Boot.Open(vm, options.Arm64SveVectorBits, image.BranchProtection.HasFlag(BranchProtection.Pac));
            string? noGuestMemfd = options.Memory is null ? GuestMemory.GuestMemfdUnavailableReason(vm) : null;
            GuestMemoryBacking backing = options.Memory
                ?? (noGuestMemfd is null ? GuestMemoryBacking.GuestMemfd : GuestMemoryBacking.HostMemory);
            memory = GuestMemory.Create(vm, options.MemorySize, backing, options.DirectMap, guestMemfdChecked: options.Memory is null);
            ImageLoadMethod? imageLoad = null;
            if (snapshot is null)
            {
                Arm64Boot.WriteBootState(memory);
                imageLoad = image.WriteToFresh(memory);
            }
            else
            {
                snapshot.CheckFits(image, memory.Size, FeaturesOf(null), GuestArchitecture.Arm64);
                lazy = RestoresLazily(options.SnapshotRestore, memory);
                if (lazy) memory.RestoreLazily(snapshot.Pages);
                else memory.WritePages(snapshot.Pages);
            }
            vcpu = vm.CreateVcpu(0);
            if (snapshot is null)
            {
                boot.InitVcpu(vcpu);
                // Only now is it known whether the vCPU has FEAT_BTI: rewrite the tables with the image guarded.
                if (boot.GuardsBranchTargets(image)) Arm64PageTables.Write(memory, image.Segments);
            }
            return new MicroVm(image, options, owned, vm, memory, noGuestMemfd, conversion: null, vcpu, default, null, null, null, null, boot)
            {
                LastRestoreWasLazy = lazy,
                LastImageLoad = imageLoad,
            };
        }
        catch
        {
            vcpu?.Dispose();
            memory?.Dispose();
            throw;
        }
    }
}
