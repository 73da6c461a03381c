// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain.BinaryStats;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>The vCPU's binary statistics the interpreter counts into (KvmMain/BinaryStats/VcpuStatSlots.cs says which).</summary>
internal sealed partial class X86Emulator
{
    /// <summary>vcpu->stat of the vCPU this interpreter runs (set by KvmVcpu once both exist).</summary>
    public KvmStats? Stats { get; set; }

    /// <summary>svm_inject_nmi "++vcpu->stat.nmi_injections" / svm_inject_irq "++vcpu->stat.irq_injections".</summary>
    private void CountInjection(bool nmi)
    {
        if (Stats is not { } s) return;
        s.Increment(nmi ? s.Table.Slots.NmiInjections : s.Table.Slots.IrqInjections);
    }
}
