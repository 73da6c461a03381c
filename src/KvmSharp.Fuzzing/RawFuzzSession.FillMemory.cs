// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Argument buffers for guest memory: KVM_CREATE_GUEST_MEMFD (sizes, flags of this kernel's proposals, the HugeTLB
/// encodings), KVM_SET_USER_MEMORY_REGION(2) (slots, flags, guest addresses including the x86 reset vector, a
/// userspace address in the sandbox, guest_memfd binding, a userfault bitmap), KVM_SET_MEMORY_ATTRIBUTES(2) and
/// KVM_PRE_FAULT_MEMORY ranges.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>The guest memory requests; false for any other request.</summary>
    private bool FillGuestMemory(uint request, byte[] b, int fd)
    {
        if (request == KvmIoctls.KVM_CREATE_GUEST_MEMFD) FillCreateGuestMemfd(b);
        else if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION || request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2) FillMemoryRegion(request, b);
        else if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES || request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2) FillMemoryAttributes(request, b, fd);
        else if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY) FillPreFaultMemory(b);
        else return false;
        return true;
    }

    /// <summary>struct kvm_create_guest_memfd: size@0 flags@8 reserved[6]@16.</summary>
    private void FillCreateGuestMemfd(byte[] b)
    {
        U64(b, 0, _rng.Next(8) switch
        {
            0 => Interesting(),
            1 => 1UL << _rng.Next(30, 63),
            _ => Ps * (ulong)_rng.Next(1, 17),
        });
        U64(b, 8, _rng.Next(6) switch { 0 => Interesting(), 1 => 1UL << _rng.Next(64), _ => (uint)_rng.Next(4) | ProposalFlags() });
        if (_rng.Next(8) == 0) U64(b, 16 + 8 * _rng.Next(6), Interesting());
        // guest_memfd HugeTLB (Emulation/GuestMemfd/GmemHugetlb.cs): HUGETLB with a size field (RFC v2, bits 63:58)
        // or a page_order byte (the 6.18-based branch), on 2 MiB multiples (sometimes one page short), so creations
        // reach the hstate, alignment, INIT_SHARED and pool rules.
        if (_kernel.Config.GuestMemfdHugetlb != GuestMemfdHugetlbEncoding.None && _rng.Next(2) == 0) FillGuestMemfdHugetlb(b);
    }

    /// <summary>The HugeTLB form of kvm_create_guest_memfd, drawn over the plain one: see the comment at the call.</summary>
    private void FillGuestMemfdHugetlb(byte[] b)
    {
        U64(b, 0, (2UL << 20) * (ulong)_rng.Next(1, 5) - (_rng.Next(6) == 0 ? Ps : 0));
        ulong log = _rng.Next(4) switch { 0 => 30, 1 => (ulong)_rng.Next(64), _ => 21 };
        ulong flags = GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB | (uint)_rng.Next(4);
        if (_rng.Next(2) == 0) flags |= log << GuestMemfdHugetlbAbi.GUESTMEM_HUGETLB_FLAG_SHIFT;
        U64(b, 8, _rng.Next(8) == 0 ? flags & ~GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB : flags);
        U64(b, 16, _rng.Next(2) == 0 ? 0 : (ulong)_rng.Next(4) switch { 0 => 18, 1 => (ulong)_rng.Next(256), _ => 9 });
    }

    /// <summary>
    /// The modeled guest_memfd flag proposals of this kernel, sometimes: GUEST_MEMFD_FLAG_WRITE (1 &lt;&lt; 3, [PATCH v7 1/2])
    /// and NO_DIRECT_MAP (1 &lt;&lt; 2, v12), so files that take write(2) exist. No draw on kernels without them.
    /// </summary>
    private ulong ProposalFlags()
    {
        var config = _kernel.Config;
        if (!config.GuestMemfdWrite && !config.GuestMemfdNoDirectMap) return 0;
        ulong flags = 0;
        if (config.GuestMemfdWrite && _rng.Next(2) == 0) flags |= 1UL << 3;
        if (config.GuestMemfdNoDirectMap && _rng.Next(3) == 0) flags |= 1UL << 2;
        return flags;
    }

    /// <summary>
    /// struct kvm_userspace_memory_region(2): slot@0 flags@4 guest_phys_addr@8 memory_size@16 userspace_addr@24, and in
    /// the second form guest_memfd_offset@32 guest_memfd@40 and the padding (userfault_bitmap@48 under the proposal).
    /// </summary>
    private void FillMemoryRegion(uint request, byte[] b)
    {
        uint slot = (uint)_rng.Next(8);
        if (_rng.Next(8) == 0) slot |= (uint)_rng.Next(3) << 16;
        if (_rng.Next(16) == 0) slot = (uint)_rng.NextInt64(0, 1L << 32);
        U32(b, 0, slot);
        uint flags = _rng.Next(8) switch
        {
            0 => 0,
            1 => (uint)_rng.Next(16),
            2 => 1u << _rng.Next(32),
            3 => KvmConstants.KVM_MEM_READONLY,
            4 or 5 => KvmConstants.KVM_MEM_LOG_DIRTY_PAGES,
            _ => KvmConstants.KVM_MEM_GUEST_MEMFD,
        };
        // KVM_MEM_USERFAULT ([PATCH v3 04/15]) on any of them: EINVAL without the series; with it, a bitmap in the
        // sandbox (random bits: guest accesses exit), NULL, the kernel half or past the sandbox (EINVAL / EFAULT).
        if (_rng.Next(_kernel.Config.KvmUserfault ? 2 : 6) == 0) flags |= KvmConstants.KVM_MEM_USERFAULT;
        U32(b, 4, flags);
        // 0xffff0000: the x86 reset vector (CS base 0xffff0000, RIP 0xfff0) so KVM_RUN executes what the slot holds.
        ulong gpaBase = _rng.Next(5) switch { 0 => 0, 1 => 1UL << 32, 2 => Interesting() & ~(Ps - 1), 3 => 0xffff0000 - 8 * Ps, _ => 0x100000 };
        U64(b, 8, gpaBase + Ps * (ulong)_rng.Next(0, 32));
        U64(b, 16, _rng.Next(8) switch { 0 => 0, 1 => Interesting(), _ => Ps * (ulong)_rng.Next(1, 9) });
        U64(b, 24, _rng.Next(3) == 0 ? 0 : (ulong)_sandbox.Start + Ps * (ulong)_rng.Next(0, 64));
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2)
        {
            U64(b, 32, _rng.Next(6) == 0 ? Interesting() : Ps * (ulong)_rng.Next(0, 9));
            var gmems = _open.Where(p => p.Value == FdKind.Gmem).Select(p => p.Key).ToList();
            uint gfd = gmems.Count > 0 && _rng.Next(6) != 0 ? (uint)gmems[_rng.Next(gmems.Count)] : (uint)PickFd();
            U32(b, 40, gfd);
            if (_rng.Next(10) == 0) U32(b, 44, (uint)Interesting());
            if (_rng.Next(10) == 0) U64(b, 48 + 8 * _rng.Next(14), Interesting());
            // userfault_bitmap (offset 48 under [PATCH v3 04/15]), mostly where the flag asks for it.
            if ((flags & KvmConstants.KVM_MEM_USERFAULT) != 0 ? _rng.Next(5) != 0 : _rng.Next(16) == 0) U64(b, 48, BitmapPointer());
        }
    }

    /// <summary>struct kvm_memory_attributes(2): address@0 size@8 attributes@16 flags@24 (on a guest_memfd, a file offset).</summary>
    private void FillMemoryAttributes(uint request, byte[] b, int fd)
    {
        bool onGmem = KindOf(fd) == FdKind.Gmem;
        U64(b, 0, _rng.Next(6) == 0 ? Interesting() : (onGmem ? 0UL : 0x100000UL) + Ps * (ulong)_rng.Next(0, 16));
        U64(b, 8, _rng.Next(6) == 0 ? Interesting() : Ps * (ulong)_rng.Next(1, 9));
        U64(b, 16, _rng.Next(4) switch { 0 => 0, 1 => Interesting(), _ => KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE });
        U64(b, 24, _rng.Next(8) == 0 ? Interesting() : 0);
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2)
        {
            if (_rng.Next(6) == 0) U64(b, 32, Interesting()); // error_offset (an output)
            if (_rng.Next(8) == 0) U64(b, 40 + 8 * _rng.Next(11), Interesting());
        }
    }

    /// <summary>struct kvm_pre_fault_memory: gpa@0 size@8 flags@16 padding.</summary>
    private void FillPreFaultMemory(byte[] b)
    {
        U64(b, 0, _rng.Next(6) == 0 ? Interesting() : 0x100000 + Ps * (ulong)_rng.Next(0, 40));
        U64(b, 8, _rng.Next(6) == 0 ? Interesting() : Ps * (ulong)_rng.Next(0, 9));
        U64(b, 16, _rng.Next(8) == 0 ? Interesting() : 0);
        if (_rng.Next(8) == 0) U64(b, 24 + 8 * _rng.Next(5), Interesting());
    }
}
