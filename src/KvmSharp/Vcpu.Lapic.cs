// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_GET_LAPIC: the vCPU's in-kernel local APIC registers (the VM has an irqchip, full or split). A new vCPU's
    /// APIC is software-disabled (SVR 0xFF), its ID is the vCPU id and every LVT is masked (vCPU 0's LINT0 is ExtINT).
    /// </summary>
    /// <exception cref="KvmException">EINVAL: no in-kernel local APIC (the VM has no irqchip), or a TDX vCPU's
    /// protected APIC.</exception>
    public LapicState GetLapic()
    {
        var s = default(kvm_lapic_state);
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_LAPIC, KvmCall.Bytes(ref s)), "KVM_GET_LAPIC", $"vcpu={Id}");
        return new LapicState(s.regs);
    }

    /// <summary>
    /// KVM_SET_LAPIC: loads the register page (the kernel recomputes the version, PPR and the timer's current count,
    /// and restarts a timer the page programs).
    /// </summary>
    /// <exception cref="KvmException">EINVAL: no in-kernel local APIC, a TDX vCPU, or (x2APIC mode) an ID that is not
    /// the vCPU's.</exception>
    public void SetLapic(LapicState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var s = state.ToAbi();
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_LAPIC, KvmCall.Bytes(ref s)), "KVM_SET_LAPIC", $"vcpu={Id}");
    }
}
