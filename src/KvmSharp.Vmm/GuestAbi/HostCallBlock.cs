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
    /// <summary>Offset of the block from <see cref="Layout.CallRegion"/>: past the call header (<see cref="CallRegion.HeaderSize"/>, 0x90 bytes), with room to grow it.</summary>
    public const ulong Offset = 0x100;

    /// <summary>The block's guest-physical address: <see cref="Layout.CallRegion"/> + <see cref="Offset"/>.</summary>
    public const ulong Base = Layout.CallRegion + Offset;

    /// <summary>The number of argument slots.</summary>
    public const int MaxArgs = 6;

    // Field offsets from Base.
    /// <summary>Offset of function (u64, guest): the host function's id; 0 = resolve(name_ptr, name_len).</summary>
    public const ulong Function = 0x00;      // u64: the host function's id (guest); 0 = resolve(name_ptr, name_len)
    /// <summary>Offset of args (u64[6], guest).</summary>
    public const ulong Args = 0x08;          // u64[6] (guest)
    /// <summary>Offset of result (u64, host): the function's return value.</summary>
    public const ulong Result = 0x38;        // u64 (host)
    /// <summary>Offset of status (u64, host): a <see cref="HostCalls.HostCallStatus"/>.</summary>
    public const ulong Status = 0x40;        // u64: a HostCallStatus (host)
    /// <summary>The block's size in bytes.</summary>
    public const int Size = 0x48;

    /// <summary>
    /// The guest-physical address of field <paramref name="field"/> (one of this class's offset constants).
    /// </summary>
    public static ulong Address(ulong field) => Base + field;
}
