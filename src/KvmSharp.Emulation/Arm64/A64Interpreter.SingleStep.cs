// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>The instruction step of a host single-step (<see cref="Arm64SingleStep"/>).</summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// <see cref="Step()"/>, telling whether the instruction took a synchronous exception to EL1 (TakeException) instead
    /// of completing — then the step exception comes at the vector, taken from active-pending (Arm ARM D2.12, "Software
    /// Step exceptions": taking an exception clears PSTATE.SS), with no instruction stepped.
    /// </summary>
    public A64Outcome StepTracked(out bool tookException)
    {
        _tookSyncException = false;
        A64Outcome outcome = Step();
        tookException = _tookSyncException;
        return outcome;
    }
}
