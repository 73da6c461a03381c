// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.X86.Irqchip;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// An emulated VM with the full in-kernel irqchip and vCPU 0, its local APIC software-enabled (KVM_SET_LAPIC), plus
/// the emulator's own view of it for the tests that look inside (<see cref="Internal"/>).
/// </summary>
internal class IrqchipVm : IDisposable
{
    public readonly EmulatedKernel Kernel = new(EmulatorConfig.LikeThisHost());
    public readonly Kvm Sdk;
    public readonly Vm Vm;
    public readonly KvmSharp.Vcpu Vcpu;

    public IrqchipVm()
    {
        Sdk = Kvm.Open(Kernel);
        Vm = Sdk.CreateVm();
        Vm.CreateIrqchip();
        Vcpu = Vm.CreateVcpu(0);
        var l = Vcpu.GetLapic();
        l.SoftwareEnabled = true;
        Vcpu.SetLapic(l);
    }

    /// <summary>The emulator's VM behind <see cref="Vm"/>.</summary>
    public KvmMain.Kvm Internal => Kernel.InvariantView.Vms.Single();

    public Ioapic Ioapic => Internal.Irqchip.Ioapic!;

    public void Dispose()
    {
        Vcpu.Dispose();
        Vm.Dispose();
        Sdk.Dispose();
        Kernel.Dispose();
    }
}
