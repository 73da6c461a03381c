// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli;

/// <summary>How caps spells a <see cref="GuestMemfdUse"/>, in the table and in --json.</summary>
public static class GuestMemfdUseNames
{
    public static string NameOf(GuestMemfdUse use) => use switch
    {
        GuestMemfdUse.None => "none",
        GuestMemfdUse.PrivateBacking => "private-backing",
        GuestMemfdUse.MappablePrivate => "mappable-private",
        GuestMemfdUse.SoleMemory => "sole-memory",
        _ => use.ToString(),
    };

    /// <summary>One line for a human: what a VMM can do with guest_memfd on this VM.</summary>
    public static string Explain(GuestMemfdUse use) => use switch
    {
        GuestMemfdUse.None => "not for this VM type (before 6.18 only VM types with private memory bind guest_memfd)",
        GuestMemfdUse.PrivateBacking => "private pages of a private-capable slot; shared pages from userspace_addr (no MMAP)",
        GuestMemfdUse.MappablePrivate => "mappable, but pages start private (MMAP without INIT_SHARED)",
        GuestMemfdUse.SoleMemory => "the guest's whole memory, mapped by the host (MMAP|INIT_SHARED)",
        _ => "",
    };
}
