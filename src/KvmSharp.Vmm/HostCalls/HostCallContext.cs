// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Text;

namespace KvmSharp.Vmm.HostCalls;

/// <summary>
/// What a host function sees of the current host call: the guest's arguments, and guest memory through checked
/// accessors that take guest pointers (guest-virtual = guest-physical: the guest is identity-mapped). A pointer outside
/// guest memory or on a page the guest cannot map throws <see cref="GuestPointerException"/>, which the guest receives
/// as <see cref="HostCallStatus.BadPointer"/> if the function lets it through. Valid only while the function runs:
/// one context per micro-VM is reused for every host call.
/// </summary>
public sealed class HostCallContext
{
    private readonly GuestMemory _memory;
    private readonly Func<bool> _timedOut;
    private readonly ulong[] _args = new ulong[GuestAbi.HostCallBlock.MaxArgs];

    internal HostCallContext(GuestMemory memory, Func<bool> timedOut)
    {
        _memory = memory;
        _timedOut = timedOut;
    }

    /// <summary>The id the running function is registered under.</summary>
    public uint FunctionId { get; private set; }

    /// <summary>The name the running function is registered under.</summary>
    public string FunctionName { get; private set; } = "";

    /// <summary>The six argument slots of the host-call block (slots the guest did not set are 0).</summary>
    public ReadOnlySpan<ulong> Args => _args;

    /// <summary>Written to the block's status field after the function returns (<see cref="HostCallStatus.Ok"/> unless set).</summary>
    public HostCallStatus Status { get; set; }

    /// <summary>
    /// True once the call's <see cref="MicroVmOptions.Timeout"/> has passed, its CancellationToken was cancelled or its
    /// micro-VM was disposed from another thread. The watchdog cannot stop managed code: a long-running host function
    /// should poll this and return; the call then ends as <see cref="GuestOutcome.Timeout"/> (or
    /// <see cref="GuestOutcome.Cancelled"/>, <see cref="GuestOutcome.Disposed"/>).
    /// </summary>
    public bool TimedOut => _timedOut();

    /// <summary>Guest memory's size in bytes: guest pointers must lie below it.</summary>
    public ulong MemorySize => _memory.Size;

    /// <summary>The exception this context threw last (the dispatcher turns only its own into BadPointer).</summary>
    internal GuestPointerException? LastPointerFault { get; private set; }

    internal Span<ulong> ArgSlots => _args;

    internal void Begin(uint id, string name)
    {
        FunctionId = id;
        FunctionName = name;
        Status = HostCallStatus.Ok;
        LastPointerFault = null;
    }

    /// <summary>True when the guest may pass [address, address+length): inside guest memory and on no guard page.</summary>
    public bool IsValid(ulong address, ulong length) => Problem(address, length) is null;

    /// <summary>
    /// Copies [<paramref name="address"/>, +destination.Length) of guest memory into <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="GuestPointerException">Outside guest memory, or on a guard or private page.</exception>
    public void Read(ulong address, Span<byte> destination)
    {
        Check(address, (ulong)destination.Length);
        _memory.Read(address, destination);
    }

    /// <summary>A copy of [<paramref name="address"/>, +<paramref name="length"/>) of guest memory.</summary>
    /// <exception cref="GuestPointerException">Outside guest memory, or on a guard or private page.</exception>
    public byte[] ReadBytes(ulong address, ulong length)
    {
        Check(address, length);
        var bytes = new byte[length];
        _memory.Read(address, bytes);
        return bytes;
    }

    /// <summary>The UTF-8 string in [address, address+length) (invalid sequences become U+FFFD).</summary>
    public string ReadUtf8(ulong address, ulong length)
    {
        Check(address, length);
        // Read-only: GetSpan would count the pages as host-written and make the next pristine restore rewrite them.
        return length == 0 ? "" : Encoding.UTF8.GetString(_memory.GetReadOnlySpan(address, checked((int)length)));
    }

    /// <summary>Reads an unmanaged value (little-endian) at guest address <paramref name="address"/>.</summary>
    /// <exception cref="GuestPointerException">Outside guest memory, or on a guard or private page.</exception>
    public T Read<T>(ulong address) where T : unmanaged
    {
        Check(address, (ulong)Unsafe.SizeOf<T>());
        return _memory.Read<T>(address);
    }

    /// <summary>Copies <paramref name="bytes"/> to guest address <paramref name="address"/>.</summary>
    /// <exception cref="GuestPointerException">Outside guest memory, or on a guard or private page.</exception>
    public void Write(ulong address, ReadOnlySpan<byte> bytes)
    {
        Check(address, (ulong)bytes.Length);
        _memory.Write(address, bytes);
    }

    /// <summary>Writes an unmanaged value (little-endian) at guest address <paramref name="address"/>.</summary>
    /// <exception cref="GuestPointerException">Outside guest memory, or on a guard or private page.</exception>
    public void Write<T>(ulong address, T value) where T : unmanaged
    {
        Check(address, (ulong)Unsafe.SizeOf<T>());
        _memory.Write(address, value);
    }

    /// <summary>A span over guest memory, for zero-copy work; do not keep it past the function's return.</summary>
    public Span<byte> GetSpan(ulong address, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Check(address, (ulong)length);
        return _memory.GetSpan(address, length);
    }

    private void Check(ulong address, ulong length)
    {
        if (Problem(address, length) is string why)
        {
            LastPointerFault = new GuestPointerException(address, length, why);
            throw LastPointerFault;
        }
    }

    private string? Problem(ulong address, ulong length) => GuestPointers.Problem(_memory, address, length);
}
