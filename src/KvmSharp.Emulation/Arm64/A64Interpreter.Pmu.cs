// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>The instruction-retire hook of a vCPU with a PMU (<see cref="Arm64PmuCounters"/>).</summary>
internal sealed partial class A64Interpreter
{
    /// <summary>Set by TakeException: the current instruction took a synchronous exception instead of retiring.</summary>
    private bool _tookSyncException;

    /// <summary>
    /// Executes <paramref name="insn"/> and counts it as retired at the level it ran at, unless it took a synchronous
    /// exception or trapped to KVM before executing (SMC with HCR_EL2.TSC); an A64Stop (an MMIO exit) never gets here.
    /// </summary>
    private A64Outcome ExecuteCounted(uint insn)
    {
        bool atEl0 = cpu.AtEl0;
        _tookSyncException = false;
        var outcome = Execute(insn);
        if (!_tookSyncException && outcome != A64Outcome.Smc) Arm64PmuCounters.Retire(cpu, atEl0);
        return outcome;
    }
}
