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

    /// <summary>
    /// The size of a register of gdb's full layout that the stub does not read (floating point, vectors), answered as
    /// unavailable ("xx…"), or 0 past gdb's layout.
    /// </summary>
    public abstract int UnavailableSize(int n);

    /// <summary>The <c>g</c> packet's bytes.</summary>
    public abstract byte[] ReadAll();

    /// <summary>Writes a <c>g</c> packet (gdb's full layout or the stub's); false when it is shorter than the stub's.</summary>
    public abstract bool WriteAll(ReadOnlySpan<byte> packet);

    /// <summary>Writes register <paramref name="n"/>; false for a number outside the <c>g</c> packet or a wrong length.</summary>
    public abstract bool Write(int n, ReadOnlySpan<byte> value);

    /// <summary>Single-step from the next KVM_RUN on, no breakpoints.</summary>
    public abstract void Step();

    /// <summary>The host's execute breakpoints at <paramref name="breakpoints"/> (at most four); none: debugging off.</summary>
    public abstract void Arm(IReadOnlyList<ulong> breakpoints);

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
