// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_GET_TSC_KHZ (KVM_CAP_GET_TSC_KHZ): the vCPU's TSC rate in kHz as last set — the VM's default at creation
    /// (the host's), then whatever <see cref="SetTscKhz"/> stored, even a rate the kernel refused. Save it with the vCPU
    /// state; a restore on another host sets it back before the TSC.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed; EPERM (and other errnos) for a stored rate of 0xFFFFF001 kHz or more, which the kernel's int return value cannot carry.</exception>
    public uint TscKhz => (uint)KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_TSC_KHZ, 0UL), "KVM_GET_TSC_KHZ", $"vcpu={Id}");

    /// <summary>
    /// KVM_SET_TSC_KHZ: the rate the guest's TSC should run at (0: the host's). Without TSC scaling
    /// (<see cref="Vm.SupportsTscScaling"/> false) the kernel accepts a rate within 250 ppm of the host's (nothing
    /// changes) or above it (the guest TSC is caught up at clock updates) and refuses a lower one; with scaling it
    /// programs the ratio. The rate is stored either way (<see cref="TscKhz"/> reads it back).
    /// </summary>
    /// <exception cref="KvmException">EINVAL: a rate below the host's (more than 250 ppm) without TSC scaling, a ratio
    /// the hardware cannot scale to, or a vCPU whose TSC is protected (TDX).</exception>
    public void SetTscKhz(uint khz) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_TSC_KHZ, khz), "KVM_SET_TSC_KHZ", $"vcpu={Id} khz={khz}");
}
