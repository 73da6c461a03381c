// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.GuestAbi;

/// <summary>
/// The exception block (ABI version 4) at <see cref="Layout.ExceptionBlock"/>: the VMM's common exception handler
/// copies the interrupt frame and CR2 here, then OUTs to <see cref="Ports.Exception"/> (GUEST-ABI.md, "Exceptions").
/// Every field is a little-endian u64, written by the guest-side handler and read by the host.
/// </summary>
public static class ExceptionBlock
{
    /// <summary>The block's guest-physical address (<see cref="Layout.ExceptionBlock"/>).</summary>
    public const ulong Base = Layout.ExceptionBlock;

    // Field offsets from Base.
    /// <summary>Offset of the vector, 0-31.</summary>
    public const ulong Vector = 0x00;      // 0-31
    /// <summary>Offset of the error code as the CPU pushed it; 0 for vectors that push none.</summary>
    public const ulong ErrorCode = 0x08;   // as the CPU pushed it; 0 for vectors that push none
    /// <summary>Offset of the frame's RIP: the faulting instruction (for a trap, the one after it).</summary>
    public const ulong Rip = 0x10;         // the frame's RIP: the faulting instruction (a trap: the one after it)
    /// <summary>Offset of the frame's CS.</summary>
    public const ulong Cs = 0x18;
    /// <summary>Offset of the frame's RFLAGS.</summary>
    public const ulong Rflags = 0x20;
    /// <summary>Offset of the frame's RSP: the guest's stack pointer when the exception happened.</summary>
    public const ulong Rsp = 0x28;         // the guest's RSP when the exception happened
    /// <summary>Offset of the frame's SS.</summary>
    public const ulong Ss = 0x30;
    /// <summary>Offset of CR2, read for every vector but meaningful for #PF only.</summary>
    public const ulong Cr2 = 0x38;         // read by the handler for every vector; meaningful for #PF only
    /// <summary>The block's size in bytes (eight u64 fields).</summary>
    public const int Size = 0x40;

    /// <summary>
    /// The guest-physical address of field <paramref name="field"/> (one of this class's offset constants).
    /// </summary>
    public static ulong Address(ulong field) => Base + field;
}
