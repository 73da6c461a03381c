// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What an ioctl aims at: the descriptor kind (mostly VMs, guest_memfds and vCPUs), the request — mostly one the
/// emulator knows for that kind (the arm64 vCPU requests only on an arm64 kernel), else any known request, a VFS-level
/// request, a raw KVM request or a mis-encoded one (wrong direction, size, type or nr) — and the integer argument of
/// the requests that take one.
/// </summary>
internal sealed partial class RawFuzzSession
{
    // include/uapi/asm-generic/ioctls.h, include/uapi/linux/fs.h: what do_vfs_ioctl answers for every file.
    private static readonly uint[] VfsRequests = [0x5450, 0x5451, 0x5452, 0x5421, 0x0002, 0xC020660B, 0xC0045877, 0xC0045878, 0x541B /* FIONREAD */];

    /// <summary>More KVM requests fed raw (some unimplemented, some implemented since this list was made): any errno, never a throw.</summary>
    private static readonly uint[] OtherKvmRequests =
    [
        _IO(KvmIoctls.KVMIO, 0x60) /* KVM_CREATE_IRQCHIP */, _IO(KvmIoctls.KVMIO, 0xc7) /* KVM_RESET_DIRTY_RINGS */,
        _IOW(KvmIoctls.KVMIO, 0x76, 32) /* KVM_IRQFD */, _IOR(KvmIoctls.KVMIO, 0x8c, 416) /* KVM_GET_FPU */,
        _IOW(KvmIoctls.KVMIO, 0xa3, 16) /* KVM_ENABLE_CAP */, _IO(KvmIoctls.KVMIO, 0xd6) /* RFC ATTRIBUTES2 nr */,
        _IOWR(KvmIoctls.KVMIO, 0xd6, 64) /* RFC v4 KVM_SET_MEMORY_ATTRIBUTES2 */, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR,
        KvmMsrFilter.KVM_X86_SET_MSR_FILTER, KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO, KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO,
        KvmIoctls.KVM_MEMORY_ENCRYPT_REG_REGION, KvmIoctls.KVM_MEMORY_ENCRYPT_UNREG_REGION,
    ];

    /// <summary>A descriptor of a randomly wanted kind (<see cref="PickFd"/>) and the kind the session knows it as.</summary>
    private (int Fd, FdKind Kind) PickIoctlTarget()
    {
        FdKind want = _rng.Next(10) switch
        {
            0 => FdKind.System,
            < 4 => FdKind.Vm,
            < 6 => FdKind.Vcpu,
            < 9 => FdKind.Gmem,
            _ => FdKind.Device,
        };
        int fd = PickFd(want);
        return (fd, KindOf(fd));
    }

    /// <summary>The requests the emulator implements on a descriptor of <paramref name="kind"/> (a request listed twice is drawn twice as often).</summary>
    private static uint[] KnownFor(FdKind kind) => kind switch
    {
        FdKind.System => [KvmIoctls.KVM_GET_API_VERSION, KvmIoctls.KVM_CREATE_VM, KvmIoctls.KVM_CHECK_EXTENSION, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE,
            KvmIoctls.KVM_GET_SUPPORTED_CPUID, KvmIoctls.KVM_GET_EMULATED_CPUID,
            KvmIoctls.KVM_GET_MSR_INDEX_LIST, KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST, KvmIoctls.KVM_GET_MSRS],
        FdKind.Vm =>
        [
            KvmIoctls.KVM_CREATE_VCPU, KvmIoctls.KVM_SET_USER_MEMORY_REGION, KvmIoctls.KVM_SET_USER_MEMORY_REGION2,
            KvmIoctls.KVM_SET_USER_MEMORY_REGION2, KvmIoctls.KVM_SET_TSS_ADDR, KvmIoctls.KVM_CHECK_EXTENSION,
            KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, KvmIoctls.KVM_CREATE_GUEST_MEMFD,
            KvmIoctls.KVM_CREATE_GUEST_MEMFD, KvmIoctls.KVM_ENABLE_CAP, KvmIoctls.KVM_GET_DIRTY_LOG, KvmIoctls.KVM_CLEAR_DIRTY_LOG,
            KvmIoctls.KVM_IOEVENTFD, KvmIoctls.KVM_IOEVENTFD, KvmIoctls.KVM_IRQFD,
            KvmIoctls.KVM_RESET_DIRTY_RINGS, KvmIoctls.KVM_GET_STATS_FD,
            // The in-kernel irqchip (X86/Irqchip/): creation twice, so VMs with one are common.
            KvmIoctls.KVM_CREATE_IRQCHIP, KvmIoctls.KVM_CREATE_IRQCHIP, KvmIoctls.KVM_IRQ_LINE, KvmIoctls.KVM_IRQ_LINE_STATUS,
            KvmIoctls.KVM_GET_IRQCHIP, KvmIoctls.KVM_SET_IRQCHIP, KvmIoctls.KVM_SET_GSI_ROUTING, KvmIoctls.KVM_SIGNAL_MSI,
            KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP,
            KvmIoctls.KVM_CREATE_DEVICE,
        ],
        FdKind.Vcpu =>
        [
            KvmIoctls.KVM_RUN, KvmIoctls.KVM_GET_REGS, KvmIoctls.KVM_SET_REGS, KvmIoctls.KVM_GET_SREGS, KvmIoctls.KVM_SET_SREGS,
            KvmIoctls.KVM_SET_SREGS, KvmIoctls.KVM_PRE_FAULT_MEMORY,
            KvmIoctls.KVM_SET_CPUID2, KvmIoctls.KVM_GET_CPUID2,
            KvmIoctls.KVM_GET_MSRS, KvmIoctls.KVM_SET_MSRS,
            KvmIoctls.KVM_GET_FPU, KvmIoctls.KVM_SET_FPU, KvmIoctls.KVM_GET_XCRS, KvmIoctls.KVM_SET_XCRS,
            KvmIoctls.KVM_GET_VCPU_EVENTS, KvmIoctls.KVM_SET_VCPU_EVENTS, KvmIoctls.KVM_GET_MP_STATE, KvmIoctls.KVM_SET_MP_STATE,
            KvmIoctls.KVM_GET_DEBUGREGS, KvmIoctls.KVM_SET_DEBUGREGS, KvmIoctls.KVM_SET_GUEST_DEBUG, KvmIoctls.KVM_INTERRUPT, KvmIoctls.KVM_NMI, KvmIoctls.KVM_X86_SET_MCE,
            KvmIoctls.KVM_GET_STATS_FD, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP,
            KvmIoctls.KVM_GET_LAPIC, KvmIoctls.KVM_SET_LAPIC,
        ],
        FdKind.Gmem => [KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2],
        FdKind.Device => [KvmIoctls.KVM_SET_DEVICE_ATTR, KvmIoctls.KVM_GET_DEVICE_ATTR, KvmIoctls.KVM_HAS_DEVICE_ATTR],
        _ => [KvmIoctls.KVM_CHECK_EXTENSION],
    };

    /// <summary>Every request of <see cref="KnownFor"/>, whatever the descriptor.</summary>
    private static readonly uint[] AllKnown =
        [.. KnownFor(FdKind.System), .. KnownFor(FdKind.Vm), .. KnownFor(FdKind.Vcpu), .. KnownFor(FdKind.Gmem), .. KnownFor(FdKind.Device)];

    /// <summary>
    /// The arm64 vCPU and VM requests (Arm64/Arm64VcpuIoctls.cs, Arch/Arm64Kvm.cs), drawn only on an arm64 kernel so
    /// the x86 configurations keep their request mix: init, ONE_REG on core and system register ids, the register list.
    /// </summary>
    private static readonly uint[] Arm64VcpuRequests =
    [
        KvmArm64Ioctls.KVM_ARM_VCPU_INIT, KvmArm64Ioctls.KVM_ARM_VCPU_INIT, KvmArm64Ioctls.KVM_GET_ONE_REG,
        KvmArm64Ioctls.KVM_GET_ONE_REG, KvmArm64Ioctls.KVM_SET_ONE_REG, KvmArm64Ioctls.KVM_SET_ONE_REG, KvmArm64Ioctls.KVM_GET_REG_LIST,
    ];

    /// <summary>The request for a descriptor of <paramref name="kind"/>: known, foreign, VFS, raw or mis-encoded.</summary>
    private uint PickRequest(FdKind kind)
    {
        int r = _rng.Next(100);
        if (r < 62 && _kernel.Config.Architecture == KvmSharp.Emulation.Architecture.Arm64)
        {
            if (kind == FdKind.Vcpu && _rng.Next(2) == 0) return Arm64VcpuRequests[_rng.Next(Arm64VcpuRequests.Length)];
            if (kind == FdKind.Vm && _rng.Next(30) == 0) return KvmArm64Ioctls.KVM_ARM_PREFERRED_TARGET;
            // Enough vCPUs for the requests above to find one.
            if (kind == FdKind.Vm && _rng.Next(6) == 0) return KvmIoctls.KVM_CREATE_VCPU;
        }
        if (r < 62)
        {
            var known = KnownFor(kind);
            return known[_rng.Next(known.Length)];
        }
        if (r < 77) return AllKnown[_rng.Next(AllKnown.Length)];
        if (r < 82) return VfsRequests[_rng.Next(VfsRequests.Length)];
        if (r < 86) return OtherKvmRequests[_rng.Next(OtherKvmRequests.Length)];
        uint baseRequest = AllKnown[_rng.Next(AllKnown.Length)];
        return _rng.Next(5) switch
        {
            // Wrong direction bits.
            0 => (baseRequest & 0x3fffffff) | ((uint)_rng.Next(4) << 30),
            // Wrong size field.
            1 => (baseRequest & ~(0x3fffu << 16)) | ((uint)_rng.Next(0x4000) << 16),
            // KVMIO with any nr.
            2 => _IOC((uint)_rng.Next(4), KvmIoctls.KVMIO, (uint)_rng.Next(256), (uint)_rng.Next(0x200)),
            // Another type with a known nr.
            3 => (baseRequest & ~0xff00u) | ((uint)_rng.Next(256) << 8),
            _ => (uint)_rng.NextInt64(0, 1L << 32),
        };
    }

    /// <summary>The integer argument: small plausible values for the requests that take one, else <see cref="Interesting"/>.</summary>
    private ulong IntArg(uint request)
    {
        if (request == KvmIoctls.KVM_CHECK_EXTENSION && _rng.Next(3) != 0)
            return (ulong)_rng.Next(_rng.Next(4) == 0 ? 300 : 260);
        if (request == KvmIoctls.KVM_CREATE_VM && _rng.Next(3) != 0) return (ulong)_rng.Next(8);
        if (request == KvmIoctls.KVM_CREATE_VCPU && _rng.Next(3) != 0) return (ulong)_rng.Next(6);
        if (request == KvmIoctls.KVM_RUN && _rng.Next(4) != 0) return 0;
        return Interesting();
    }
}
