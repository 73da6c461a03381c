// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// What <see cref="GdbStub"/> needs of one vCPU architecture: gdb's register layout for it (the <c>g</c> packet, by
/// gdb's register numbers) and the vCPU's KVM_SET_GUEST_DEBUG for a step, breakpoints, or nothing.
/// </summary>
internal abstract class GdbTarget
{
    /// <summary>The target description sent for qXfer:features:read:target.xml.</summary>
    public abstract string TargetXml { get; }

    /// <summary>gdb's number of the program counter (expedited in stop replies).</summary>
    public abstract int PcRegister { get; }

    /// <summary>The registers of the <c>g</c> packet (numbers 0 to Count − 1).</summary>
    public abstract int Count { get; }

    /// <summary>The program counter.</summary>
    public abstract ulong Pc { get; set; }

    /// <summary>The size of register <paramref name="n"/> in the <c>g</c> packet, or 0 for one outside it.</summary>
    public abstract int Size(int n);

    /// <summary>Its offset in the <c>g</c> packet.</summary>
    public abstract int Offset(int n);

    /// <summary>The <c>g</c> packet's bytes.</summary>
    public abstract byte[] ReadAll();

    /// <summary>Writes a <c>g</c> packet (gdb's full layout or the stub's); false when it is shorter than the stub's.</summary>
    public abstract bool WriteAll(ReadOnlySpan<byte> packet);

    /// <summary>Writes register <paramref name="n"/>; false for a number outside the <c>g</c> packet or a wrong length.</summary>
    public abstract bool Write(int n, ReadOnlySpan<byte> value);

    /// <summary>
    /// Single-step from the next KVM_RUN on, no breakpoints; with <paramref name="watchpoints"/> where the target has
    /// watchpoint registers (a gdb step, not the step over a stop).
    /// </summary>
    public abstract void Step(IReadOnlyList<GdbWatchpoint> watchpoints);

    /// <summary>
    /// The host's execute breakpoints at <paramref name="breakpoints"/> (at most <see cref="BreakpointRegisters"/>) and its watchpoints
    /// <paramref name="watchpoints"/> (at most <see cref="WatchpointRegisters"/> registers' worth); none: debugging off.
    /// </summary>
    public abstract void Arm(IReadOnlyList<ulong> breakpoints, IReadOnlyList<GdbWatchpoint> watchpoints);

    /// <summary>
    /// The host's hardware breakpoint registers for <c>Z0</c>/<c>Z1</c>: 4 by default (x86 DR0–DR3); a breakpoint
    /// beyond them is refused with ENOSPC.
    /// </summary>
    public virtual int BreakpointRegisters => 4;

    /// <summary>
    /// The host's hardware watchpoint registers for <c>Z2</c>–<c>Z4</c>; 0: watchpoints are not supported (gdb gets an
    /// empty reply and watches in software, single-stepping).
    /// </summary>
    public virtual int WatchpointRegisters => 0;

    /// <summary>The watchpoint registers <paramref name="watchpoint"/> takes (<see cref="GdbWatchpoint.Registers"/> by default).</summary>
    public virtual int WatchpointRegistersFor(GdbWatchpoint watchpoint) => watchpoint.Registers;

    /// <summary>
    /// True when breakpoints and watchpoints share one set of registers (x86 DR0–DR3): together at most
    /// <see cref="BreakpointRegisters"/>.
    /// </summary>
    public virtual bool WatchpointsShareBreakpointRegisters => false;

    /// <summary>False for a watchpoint kind the hardware cannot watch (x86: a read-only one); gdb gets an empty reply.</summary>
    public virtual bool SupportsWatchKind(GdbWatchKind kind) => true;

    /// <summary>
    /// True when a watchpoint stops the guest before the watched access (arm64: the instruction runs again, so a
    /// continue steps over it first); false when it is a trap after the access (x86), and a continue just runs on.
    /// </summary>
    public virtual bool WatchpointStopsBeforeAccess => true;

    /// <summary>
    /// True for a KVM_EXIT_DEBUG of a hardware watchpoint: <paramref name="address"/> is the data address the exit
    /// reports, <paramref name="write"/> whether the access was a store.
    /// </summary>
    public virtual bool IsWatchpointExit(VcpuExit exit, out ulong address, out bool write)
    {
        address = 0;
        write = false;
        return false;
    }

    /// <summary>KVM_SET_GUEST_DEBUG with control 0.</summary>
    public abstract void Disable();

    /// <summary>True for the single-step exit of a KVM_EXIT_DEBUG (else a breakpoint, or a guest BRK on arm64).</summary>
    public abstract bool IsStepExit(VcpuExit exit);

    /// <summary>
    /// True when the instruction at <paramref name="pc"/> ends the call when it runs (x86: HLT, whose step exit
    /// replaces its KVM_EXIT_HLT and would let the vCPU go on).
    /// </summary>
    public virtual bool EndsCallWhenStepped(GuestMemory memory, ulong pc) => false;

    /// <summary>
    /// True when a step from <paramref name="stepFrom"/> completed at this non-debug exit without a step exit of its
    /// own (x86: an OUT on this host).
    /// </summary>
    public virtual bool StepCompletedAt(VcpuExit exit, ulong stepFrom) => false;

    /// <summary>
    /// A KVM_EXIT_DEBUG that is the guest's own breakpoint instruction, given back to the guest (arm64: a BRK, which
    /// exits whenever host debugging is on); true when it was one.
    /// </summary>
    public virtual bool ReflectGuestBreakpoint(VcpuExit exit) => false;
}
