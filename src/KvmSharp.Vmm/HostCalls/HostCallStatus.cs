// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.HostCalls;

/// <summary>
/// What the host writes to the host-call block's status field (GUEST-ABI.md, "Host calls"). Values below
/// <see cref="FirstApplicationStatus"/> are the ABI's; a host function may set its own from there on.
/// </summary>
public enum HostCallStatus : ulong
{
    /// <summary>The function ran; result holds its return value.</summary>
    Ok = 0,
    /// <summary>No function has this id (or, for resolve, this name): the guest may fall back, like ENOSYS.</summary>
    UnknownFunction = 1,
    /// <summary>A pointer the guest passed is outside guest memory or on a page that is not mapped.</summary>
    BadPointer = 2,
    /// <summary>An argument is out of range (e.g. a name longer than <see cref="HostFunctions.MaxNameLength"/>).</summary>
    BadArgument = 3,
    /// <summary>The function refused the request (set by the function through <see cref="HostCallContext.Status"/>).</summary>
    Failed = 4,
    /// <summary>Host functions may report their own statuses from here on.</summary>
    FirstApplicationStatus = 0x100,
}
