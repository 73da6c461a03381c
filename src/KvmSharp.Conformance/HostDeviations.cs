// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance;

/// <summary>
/// Known, named differences between this machine's kernel and upstream. A test that meets one asserts the host's
/// behaviour on the real kernel (so a change on the host is noticed) and the upstream behaviour on the emulator.
/// </summary>
public static partial class HostDeviations
{
    // The deviations, by area: HostDeviations.Memory.cs, .Stats.cs, .Instructions.cs, .Exceptions.cs, .UserMode.cs,
    // .VcpuState.cs, .Irqchip.cs and .GuestDebug.cs.
}
