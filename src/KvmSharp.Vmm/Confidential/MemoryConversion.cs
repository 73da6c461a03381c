// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Confidential;

/// <summary>
/// The VMM's half of KVM_HC_MAP_GPA_RANGE for a micro-VM with private memory: the guest asks to make a range private
/// or shared, KVM forwards the request as KVM_EXIT_HYPERCALL (KVM_CAP_EXIT_HYPERCALL), and the VMM converts the
/// guest_memfd pages in place with KVM_SET_MEMORY_ATTRIBUTES2 ("guest_memfd: In-place conversion support" v8), as
/// QEMU does for SNP/TDX page-state changes. The answer is the hypercall's return value: 0 or <c>-KVM_E*</c>
/// (GUEST-ABI.md, "Private memory").
/// </summary>
public sealed class MemoryConversion
{
    private readonly GuestMemory _memory;

    /// <summary>
    /// Serves conversions of <paramref name="memory"/>, which must be guest_memfd-backed with
    /// <see cref="GuestMemory.SupportsPrivateMemory"/>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="memory"/> has no private pages to convert (host memory, or
    /// a guest_memfd of a VM type without private memory).</exception>
    public MemoryConversion(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (!memory.SupportsPrivateMemory || memory.Memfd is null)
            throw new ArgumentException($"{memory.Backing} guest memory without private pages cannot serve conversions", nameof(memory));
        _memory = memory;
    }

    /// <summary>Requests served with 0 since the micro-VM was created.</summary>
    public long Converted { get; private set; }

    /// <summary>Requests refused (a non-zero return value), and the reason of the last one.</summary>
    public long Refused { get; private set; }

    /// <summary>
    /// The last refused request and why it was refused (e.g. reserved bits, a range below the image area); null until
    /// one is.
    /// </summary>
    public string? LastRefusal { get; private set; }

    /// <summary>Converts the range, or says why not; returns the value the guest finds in RAX.</summary>
    public long Serve(in MapGpaRangeRequest request)
    {
        long answer = Convert(request, out string? why);
        if (answer == 0)
        {
            Converted++;
        }
        else
        {
            Refused++;
            LastRefusal = $"{request}: {why}";
        }
        return answer;
    }

    private long Convert(in MapGpaRangeRequest request, out string? why)
    {
        // x86/hypercalls.rst: bits 63:5 of the attributes are reserved (KVM passes them through unchecked).
        if (request.ReservedAttributes != 0)
        {
            why = $"reserved attribute bits 0x{request.ReservedAttributes:X} are set";
            return -KvmPara.KVM_EINVAL;
        }
        // KVM checked alignment, a non-zero count and no wrap-around (x86.c ____kvm_emulate_hypercall); the range
        // may still lie beyond guest memory.
        if (!_memory.Contains(request.Gpa, request.Size))
        {
            why = $"the range is not guest memory (0x{_memory.Size:X} bytes)";
            return -KvmPara.KVM_EFAULT;
        }
        // The host writes the boot state, the call region and the call data and reads results there: those pages
        // stay shared, or a host access would be a SIGBUS (refused by GuestMapping, but the call would be lost).
        if (request.Gpa < Layout.ImageBase)
        {
            why = $"pages below 0x{Layout.ImageBase:X} belong to the host and stay shared";
            return -KvmPara.KVM_EPERM;
        }
        try
        {
            _memory.Memfd!.SetAttributes(request.Gpa, request.Size, request.MemoryAttributes);
        }
        catch (KvmException e)
        {
            // E.g. EAGAIN for a page the host holds pinned: the guest cannot fix that, so it is told the request
            // failed, and the host keeps the reason.
            why = $"KVM_SET_MEMORY_ATTRIBUTES2 failed: {e.Message}";
            return -KvmPara.KVM_EINVAL;
        }
        why = null;
        return 0;
    }
}
