// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// A guest_memfd file (KVM_CREATE_GUEST_MEMFD): guest memory owned by KVM, of fixed size. It can be allocated,
/// punched, mapped (with <see cref="GuestMemfdFlags.Mmap"/>) and bound to memory slots.
/// </summary>
public sealed partial class GuestMemfd : IDisposable
{
    private const int KeepSize = LinuxConstants.FALLOC_FL_KEEP_SIZE;
    private const int PunchHoleMode = LinuxConstants.FALLOC_FL_KEEP_SIZE | LinuxConstants.FALLOC_FL_PUNCH_HOLE;

    internal GuestMemfd(Vm vm, KernelFd fd, ulong size, GuestMemfdFlags flags)
    {
        Vm = vm;
        Handle = fd;
        Size = size;
        Flags = flags;
        SharedPages = new SharedPageMap(defaultShared: flags.HasFlag(GuestMemfdFlags.InitShared));
    }

    /// <summary>The VM this file belongs to (the kernel keeps that VM alive while the file is open).</summary>
    public Vm Vm { get; }

    /// <summary>
    /// The guest_memfd file descriptor returned by KVM_CREATE_GUEST_MEMFD; pass it to raw kernel calls.
    /// </summary>
    public KernelFd Handle { get; }

    /// <summary>The file size, fixed at creation.</summary>
    public ulong Size { get; }

    /// <summary>
    /// The flags the file was created with (kvm_create_guest_memfd.flags), e.g. whether it can be mapped.
    /// </summary>
    public GuestMemfdFlags Flags { get; }

    /// <summary>
    /// The HugeTLB page size the file was created with (PROPOSAL, <see cref="Vm.CreateHugetlbGuestMemfd"/>); <see cref="GuestMemfdHugePageSize.None"/> otherwise. On
    /// such a file fallocate and punch-hole take huge-page-aligned ranges.
    /// </summary>
    public GuestMemfdHugePageSize HugePageSize { get; init; }

    /// <summary>The host page size used for alignment rules.</summary>
    public static int PageSize => Environment.SystemPageSize;

    internal SharedPageMap SharedPages { get; }

    private IKernel Kernel => Vm.Kernel;

    /// <summary>fstat(2) of the file: size and block size (the page size).</summary>
    public KernelStat Stat()
    {
        KvmCall.Check(Kernel.Fstat(Handle, out KernelStat stat), "fstat", Handle.ToString());
        return stat;
    }

    /// <summary>fallocate(KEEP_SIZE): allocates the pages of [offset, offset+length) ahead of use.</summary>
    public void Allocate(long offset, long length) =>
        KvmCall.Check(Kernel.Fallocate(Handle, KeepSize, offset, length), "fallocate",
            $"mode=KEEP_SIZE offset=0x{offset:X} length=0x{length:X} (file size 0x{Size:X})");

    /// <summary>fallocate(KEEP_SIZE|PUNCH_HOLE): frees the pages; the next access sees zeros.</summary>
    public void PunchHole(long offset, long length) =>
        KvmCall.Check(Kernel.Fallocate(Handle, PunchHoleMode, offset, length), "fallocate",
            $"mode=KEEP_SIZE|PUNCH_HOLE offset=0x{offset:X} length=0x{length:X} (file size 0x{Size:X})");

    /// <summary>
    /// Maps [offset, offset+length) of the file (the whole file by default) MAP_SHARED read/write. A mapping may
    /// be longer than the file; accesses beyond the end are refused by <see cref="GuestMapping"/>.
    /// </summary>
    public GuestMapping Map(ulong? length = null, ulong offset = 0, bool shared = true)
    {
        ulong len = length ?? Size;
        int flags = shared ? LinuxConstants.MAP_SHARED : LinuxConstants.MAP_PRIVATE;
        long rc = MappedRegion.Map(Kernel, Handle, len, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, flags, (long)offset, out MappedRegion? region);
        if (KvmCall.IsError(rc))
        {
            string request = $"length=0x{len:X} offset=0x{offset:X} {(shared ? "MAP_SHARED" : "MAP_PRIVATE")} on guest_memfd flags {Flags.ToKernelString()}";
            if (rc == -(long)Errno.ENODEV) request += " (the file was created without GUEST_MEMFD_FLAG_MMAP)";
            else if (rc == -(long)Errno.EINVAL && !shared) request += " (guest_memfd can only be mapped MAP_SHARED)";
            KvmCall.ThrowKvm(rc, "mmap", request);
        }
        return new GuestMapping(this, region!, offset);
    }

    /// <summary>
    /// KVM_SET_MEMORY_ATTRIBUTES2 on this file (in-place conversion, "guest_memfd: In-place conversion support"
    /// v8 — a proposal; kernels without it answer ENOTTY, reported as a missing capability). On success the SDK's
    /// view of shared pages follows, so mappings refuse access to pages that became private.
    /// </summary>
    public void SetAttributes(ulong offset, ulong size, ulong attributes)
    {
        var args = new kvm_memory_attributes2 { offset = offset, size = size, attributes = attributes };
        var proposals = Vm.Kvm.Proposals;
        long rc = Kernel.Ioctl(Handle, proposals.SetMemoryAttributes2Request, KvmCall.Bytes(ref args));
        string request = $"offset=0x{offset:X} size=0x{size:X} attributes=0x{attributes:X}";
        if (KvmCall.IsError(rc))
        {
            if (rc == -(long)Errno.ENOTTY)
            {
                long cap = Vm.CheckExtension(proposals.GuestMemfdMemoryAttributesCap);
                throw new KvmCapabilityException("KVM_SET_MEMORY_ATTRIBUTES2", (int)-rc, request, nameof(KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES), cap);
            }
            throw new MemoryAttributesException((int)-rc, request, args.error_offset);
        }
        ulong page = (ulong)PageSize;
        SharedPages.Set(offset / page, (offset + size) / page, shared: (attributes & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0);
    }

    /// <summary><see cref="SetAttributes"/> with <see cref="MemoryAttributes.Private"/>: the range becomes private.</summary>
    /// <exception cref="MemoryAttributesException">The kernel refused (with the error_offset it wrote back).</exception>
    /// <exception cref="KvmCapabilityException">The kernel has no KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd.</exception>
    public void MakePrivate(ulong offset, ulong size) => SetAttributes(offset, size, (ulong)MemoryAttributes.Private);

    /// <summary><see cref="SetAttributes"/> with <see cref="MemoryAttributes.None"/>: the range becomes shared.</summary>
    /// <exception cref="MemoryAttributesException">The kernel refused (with the error_offset it wrote back).</exception>
    /// <exception cref="KvmCapabilityException">The kernel has no KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd.</exception>
    public void MakeShared(ulong offset, ulong size) => SetAttributes(offset, size, (ulong)MemoryAttributes.None);

    /// <summary>True when the host may touch every page of [offset, offset+length) as far as the SDK knows.</summary>
    public bool IsShared(ulong offset, ulong length)
    {
        ulong page = (ulong)PageSize;
        ulong first = offset / page;
        ulong end = length == 0 ? first : (offset + length - 1) / page + 1;
        return SharedPages.AllShared(first, end);
    }

    /// <summary>
    /// Closes the guest_memfd descriptor. A memory slot bound to the file does not keep it open (delete such slots
    /// first); a host mapping (<see cref="GuestMapping"/>) does, until it is disposed.
    /// </summary>
    public void Dispose() => Handle.Dispose();
}
