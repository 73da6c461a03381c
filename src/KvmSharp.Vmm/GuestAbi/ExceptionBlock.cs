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
    public const ulong Base = Layout.ExceptionBlock;

    // Field offsets from Base.
    public const ulong Vector = 0x00;      // 0-31
    public const ulong ErrorCode = 0x08;   // as the CPU pushed it; 0 for vectors that push none
    public const ulong Rip = 0x10;         // the frame's RIP: the faulting instruction (a trap: the one after it)
    public const ulong Cs = 0x18;
    public const ulong Rflags = 0x20;
    public const ulong Rsp = 0x28;         // the guest's RSP when the exception happened
    public const ulong Ss = 0x30;
    public const ulong Cr2 = 0x38;         // read by the handler for every vector; meaningful for #PF only
    public const int Size = 0x40;

    public static ulong Address(ulong field) => Base + field;
}
