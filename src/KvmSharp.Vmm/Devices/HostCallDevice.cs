// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.HostCalls;

namespace KvmSharp.Vmm.Devices;

/// <summary>
/// The host-call port (<see cref="Ports.HostCall"/>): an OUT makes one host call. The device reads the function id
/// and arguments from the host-call block, runs the function on the vCPU thread (the vCPU waits in userspace, so the
/// call is synchronous like Hyperlight's outb-based host calls), and writes result and status back before the vCPU
/// re-enters. Guest mistakes (unknown id, bad pointer) become a status for the guest; a function that throws becomes
/// <see cref="Fault"/>, which the run loop turns into <see cref="GuestOutcome.HostFunctionFailed"/>.
/// </summary>
public sealed class HostCallDevice : IBusDevice
{
    private readonly GuestMemory _memory;
    private readonly Func<HostFunctions> _functions;
    private readonly HostCallContext _context;
    private Exception? _abort;

    /// <summary>The registry is read at every call (through <paramref name="functions"/>), so functions added to a live micro-VM are seen.</summary>
    public HostCallDevice(GuestMemory memory, Func<HostFunctions> functions, Func<bool> timedOut)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(functions);
        _memory = memory;
        _functions = functions;
        _context = new HostCallContext(memory, timedOut);
    }

    /// <summary>Host calls made since the last <see cref="Clear"/>.</summary>
    public long Calls { get; private set; }

    /// <summary>Set when a host function threw (Rip is filled in by the micro-VM, which reads the registers).</summary>
    public HostFunctionFault? Fault { get; private set; }

    /// <summary>The function running now, or null: a host function is on the stack.</summary>
    public string? Running { get; private set; }

    /// <summary>An IN from the port: reads 0.</summary>
    public void Read(ulong offset, Span<byte> data) => data.Clear();

    /// <summary>
    /// One host call: reads id and arguments from the host-call block, runs the function (or resolve) on this thread
    /// and writes result and status back. Does nothing once <see cref="Fault"/> is set.
    /// </summary>
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // A string OUT (REP OUTSB) is one call per element; after a failure the rest are not made.
        if (Fault is not null) return;
        Calls++;
        Span<byte> block = _memory.GetSpan(HostCallBlock.Base, HostCallBlock.Size);
        ulong id = BinaryPrimitives.ReadUInt64LittleEndian(block[(int)HostCallBlock.Function..]);
        Span<ulong> args = _context.ArgSlots;
        for (int i = 0; i < args.Length; i++)
            args[i] = BinaryPrimitives.ReadUInt64LittleEndian(block[((int)HostCallBlock.Args + (i * sizeof(ulong)))..]);

        ulong result = 0;
        HostCallStatus status;
        HostFunctions functions = _functions();
        if (id == HostFunctions.ResolveId)
        {
            status = Resolve(functions, args[0], args[1], out result);
        }
        else if (id > uint.MaxValue || !functions.TryGet((uint)id, out RegisteredHostFunction function))
        {
            status = HostCallStatus.UnknownFunction;
        }
        else
        {
            _context.Begin(function.Id, function.Name);
            Running = function.Name;
            try
            {
                result = function.Function(_context);
                status = _context.Status;
            }
            catch (GuestPointerException e) when (ReferenceEquals(e, _context.LastPointerFault))
            {
                status = HostCallStatus.BadPointer;
            }
            catch (Exception e)
            {
                Fault = new HostFunctionFault(function.Name, function.Id, e, 0);
                return;
            }
            finally
            {
                Running = null;
            }
            if (_abort is not null)
            {
                Fault = new HostFunctionFault(function.Name, function.Id, _abort, 0);
                return;
            }
        }
        // Again, not the span from above: the function may have written the block's page through the context.
        block = _memory.GetSpan(HostCallBlock.Base, HostCallBlock.Size);
        BinaryPrimitives.WriteUInt64LittleEndian(block[(int)HostCallBlock.Result..], result);
        BinaryPrimitives.WriteUInt64LittleEndian(block[(int)HostCallBlock.Status..], (ulong)status);
    }

    /// <summary>
    /// Ends the current call after the running host function returns, with <paramref name="reason"/> as its fault
    /// (the micro-VM was disposed from inside the function and must not run the guest again).
    /// </summary>
    public void Abort(Exception reason) => _abort ??= reason;

    /// <summary>Resets <see cref="Calls"/>, <see cref="Fault"/> and a pending abort (done before every call).</summary>
    public void Clear()
    {
        Calls = 0;
        Fault = null;
        _abort = null;
    }

    private HostCallStatus Resolve(HostFunctions functions, ulong namePtr, ulong nameLength, out ulong id)
    {
        id = 0;
        if (nameLength == 0 || nameLength > HostFunctions.MaxNameLength) return HostCallStatus.BadArgument;
        if (!_context.IsValid(namePtr, nameLength)) return HostCallStatus.BadPointer;
        string name = _context.ReadUtf8(namePtr, nameLength);
        if (!functions.TryGetId(name, out uint found)) return HostCallStatus.UnknownFunction;
        id = found;
        return HostCallStatus.Ok;
    }
}
