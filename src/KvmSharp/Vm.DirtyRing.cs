// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    private volatile int _dirtyRingBytes;

    /// <summary>
    /// The largest dirty ring this VM accepts, in bytes (KVM_CAP_DIRTY_LOG_RING_ACQ_REL, else KVM_CAP_DIRTY_LOG_RING;
    /// 1 MiB on x86), or 0 when the kernel has no dirty ring.
    /// </summary>
    public long MaxDirtyRingBytes => Math.Max(CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL), CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING));

    /// <summary>The size in bytes of every vCPU's dirty ring once <see cref="EnableDirtyRing"/> succeeded, else 0.</summary>
    public int DirtyRingBytes => _dirtyRingBytes;

    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING or _ACQ_REL, size): from now on guest writes to slots with
    /// <see cref="MemorySlotFlags.LogDirtyPages"/> go to the writing vCPU's <see cref="Vcpu.DirtyRing"/> instead of a
    /// bitmap (<see cref="MemorySlot.GetDirtyLog()"/> then fails with ENXIO). <paramref name="bytes"/> is each ring's
    /// size: a power of two, at least one page and at most <see cref="MaxDirtyRingBytes"/>; 16 bytes per entry, of
    /// which 64 are kept in reserve: a vCPU exits with <see cref="VcpuExit.IsDirtyRingFull"/> once its ring holds
    /// all the others. Call it once, before the VM's first vCPU. <paramref name="ordering"/> picks the capability
    /// (default: acquire/release when the kernel offers it).
    /// </summary>
    /// <exception cref="KvmException">The kernel refused: EINVAL (a size that is not a power of two or below a page,
    /// a ring already enabled, vCPUs already created, or no ring on this kernel — then a
    /// <see cref="KvmCapabilityException"/>), E2BIG (above the maximum).</exception>
    public void EnableDirtyRing(int bytes, DirtyRingOrdering? ordering = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var order = ordering ?? (CheckExtension(KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL) != 0 ? DirtyRingOrdering.AcquireRelease : DirtyRingOrdering.TotalStoreOrder);
        int cap = order == DirtyRingOrdering.AcquireRelease ? KvmCaps.KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KvmCaps.KVM_CAP_DIRTY_LOG_RING;
        var enable = EnableCap.Build(cap, [(ulong)bytes]);
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_ENABLE_CAP, KvmCall.Bytes(ref enable));
        if (KvmCall.IsError(rc))
        {
            string name = KvmCaps.NameOf(cap)!;
            string request = $"cap={name} size=0x{bytes:X} ring_enabled=0x{_dirtyRingBytes:X}";
            long supported = CheckExtension(cap);
            if (supported == 0) throw new KvmCapabilityException("KVM_ENABLE_CAP", (int)-rc, request, name, supported);
            string why = (Errno)(int)-rc switch
            {
                Errno.E2BIG => $"the ring is larger than {name} = 0x{supported:X} bytes",
                Errno.EINVAL => "the size must be a power of two of at least one page (and of 64 entries), and the ring " +
                    "can be enabled once, before the VM's first vCPU",
                _ => "the kernel refused the ring",
            };
            throw new KvmException("KVM_ENABLE_CAP", (int)-rc, request,
                $"KVM_ENABLE_CAP failed with {ErrnoInfo.NameOf((int)-rc)} ({why}): {request}");
        }
        _dirtyRingBytes = bytes;
    }

    /// <summary>
    /// KVM_RESET_DIRTY_RINGS: frees, in every vCPU's ring, the entries <see cref="DirtyRing.Harvest"/> marked
    /// collected (from the oldest up to the first one not collected) and write-protects their pages again. Returns how
    /// many entries it freed. A vCPU that exited with <see cref="VcpuExit.IsDirtyRingFull"/> can run again once its
    /// ring is below the soft limit.
    /// </summary>
    /// <exception cref="KvmException">EINVAL: this VM has no dirty ring.</exception>
    public int ResetDirtyRings()
    {
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_RESET_DIRTY_RINGS, 0);
        if (KvmCall.IsError(rc))
        {
            string request = $"ring_enabled=0x{_dirtyRingBytes:X}";
            string why = rc == -(long)Errno.EINVAL ? "this VM has no dirty ring: EnableDirtyRing first" : "the kernel refused";
            throw new KvmException("KVM_RESET_DIRTY_RINGS", (int)-rc, request,
                $"KVM_RESET_DIRTY_RINGS failed with {ErrnoInfo.NameOf((int)-rc)} ({why}): {request}");
        }
        return (int)rc;
    }
}
