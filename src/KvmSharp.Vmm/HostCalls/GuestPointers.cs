// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.HostCalls;

/// <summary>
/// Which guest pointers the host may follow: the one rule for host functions (<see cref="HostCallContext"/>) and the
/// console-write port (<see cref="Devices.ConsoleWriteDevice"/>). Guest-virtual = guest-physical (identity-mapped
/// guests), the same guard pages on both architectures.
/// </summary>
internal static class GuestPointers
{
    /// <summary>Why the host may not touch [address, address+length) of <paramref name="memory"/>, or null when it may.</summary>
    public static string? Problem(GuestMemory memory, ulong address, ulong length)
    {
        if (!memory.Contains(address, length)) return $"is outside guest memory (0x{memory.Size:X} bytes)";
        if (length == 0) return null;
        ulong end = address + length;
        if (Touches(Layout.NullGuard)) return $"touches the null guard page at 0x{Layout.NullGuard:X}, which the guest cannot map";
        if (Touches(Layout.StackGuard)) return $"touches the stack guard page at 0x{Layout.StackGuard:X}, which the guest cannot map";
        // A page the guest made private would be a SIGBUS for the host; GuestMapping refuses it too, but as the
        // guest's mistake it is a bad pointer, not a host failure.
        if (!memory.IsShared(address, length)) return "touches a page the guest made private";
        return null;

        bool Touches(ulong page) => address < page + Layout.PageSize && page < end;
    }
}
