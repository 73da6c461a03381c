// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.GuestAbi;

/// <summary>
/// The host-call block (ABI version 2), in the call region's page right after its header: the guest writes a function
/// id and up to six arguments, OUTs to <see cref="Ports.HostCall"/>, and reads result and status back
/// (GUEST-ABI.md, "Host calls"). Arguments travel in memory, not registers, because reading registers would cost a
/// KVM_GET_REGS per call while the block is one mapping the host already holds.
/// </summary>
public static class HostCallBlock
{
    /// <summary>Offset of the block from <see cref="Layout.CallRegion"/>: past the 0x70-byte call header, with room to grow it.</summary>
    public const ulong Offset = 0x100;

    public const ulong Base = Layout.CallRegion + Offset;

    public const int MaxArgs = 6;

    // Field offsets from Base.
    public const ulong Function = 0x00;      // u64: the host function's id (guest); 0 = resolve(name_ptr, name_len)
    public const ulong Args = 0x08;          // u64[6] (guest)
    public const ulong Result = 0x38;        // u64 (host)
    public const ulong Status = 0x40;        // u64: a HostCallStatus (host)
    public const int Size = 0x48;

    public static ulong Address(ulong field) => Base + field;
}
