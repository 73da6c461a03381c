// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.HostCalls;

namespace KvmSharp.Vmm.Devices;

/// <summary>
/// The console-write port (<see cref="Ports.ConsoleWrite"/>, GUEST-ABI v5): an OUT prints the buffer named by the call
/// region's console_ptr and console_len in one VM exit, where COM1 takes one exit per byte (and KVM's instruction
/// emulator turns a REP OUTSB into one exit per element: arch/x86/kvm/emulate.c em_out). The host writes back in
/// console_len how many bytes it printed: all, or none when any byte of the range is one the host may not read (outside
/// guest memory, a guard page, a private page: <see cref="GuestPointers"/>) — the guest, which can read its own
/// private pages, then prints them byte by byte (kvmsharp_guest.h kvms_write).
/// <para>A TD micro-VM has it too (<see cref="CallRegion.FeatureConsoleBuffer"/>): its memory is private but for the
/// shared pages, so the guest copies each chunk into the shared <see cref="CallRegion.ConsoleBuffer"/> and points
/// console_ptr there; the rule above is unchanged, so a console_ptr into the TD's private memory prints nothing. Not
/// in an SEV-SNP micro-VM, whose #VC handler already moves string I/O through the GHCB's shared buffer.</para>
/// </summary>
public sealed class ConsoleWriteDevice : IBusDevice
{
    private readonly GuestMemory _memory;
    private readonly Serial16550 _console;

    /// <summary>A port that prints from <paramref name="memory"/> to <paramref name="console"/>.</summary>
    public ConsoleWriteDevice(GuestMemory memory, Serial16550 console)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(console);
        _memory = memory;
        _console = console;
    }

    /// <summary>Buffers printed through the port since the last <see cref="Clear"/> (refused ones not counted).</summary>
    public long Writes { get; private set; }

    /// <summary>An IN from the port: reads 0.</summary>
    public void Read(ulong offset, Span<byte> data) => data.Clear();

    /// <summary>One buffer: console_ptr/console_len from the call region, printed whole or not at all.</summary>
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        ulong address = _memory.Read<ulong>(CallRegion.Address(CallRegion.ConsolePtr));
        ulong length = _memory.Read<ulong>(CallRegion.Address(CallRegion.ConsoleLen));
        ulong printed = 0;
        if (length > 0 && GuestPointers.Problem(_memory, address, length) is null)
        {
            // Read-only: GetSpan would count the pages as host-written and make the next pristine restore rewrite them.
            _console.WriteBytes(_memory.GetReadOnlySpan(address, checked((int)length)));
            printed = length;
            Writes++;
        }
        _memory.Write(CallRegion.Address(CallRegion.ConsoleLen), printed);
    }

    /// <summary>Resets <see cref="Writes"/> (done before every call).</summary>
    public void Clear() => Writes = 0;
}
