// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// The x86 in-kernel PIT, an i8254 on ports 0x40–0x43 (Documentation/virt/kvm/api.rst 4.58/4.59 KVM_GET/SET_PIT,
/// 4.67 KVM_REINJECT_CONTROL, 4.68 KVM_CREATE_PIT2, 4.74/4.75 KVM_GET/SET_PIT2). Create the irqchip first
/// (<see cref="CreateIrqchip"/>): channel 0 drives IRQ0 through the in-kernel PIC and IOAPIC.
/// </summary>
public sealed partial class Vm
{
    /// <summary>
    /// KVM_CREATE_PIT2: the PIT's ports on the kernel's PIO bus (guest accesses no longer exit) and, with
    /// <see cref="PitFlags.SpeakerDummy"/>, port 0x61. The channels start with mode 0xff, count 65536, gates 1, 1, 0.
    /// Bits of <paramref name="flags"/> beyond SpeakerDummy are ignored by the kernel. vCPUs may already exist.
    /// </summary>
    /// <exception cref="KvmException">EEXIST: the VM already has a PIT; ENOENT: no in-kernel PIC (no
    /// <see cref="CreateIrqchip"/>, or a split irqchip); ENOTTY: not x86.</exception>
    public void CreatePit(PitFlags flags = PitFlags.SpeakerDummy)
    {
        var cfg = new kvm_pit_config { flags = (uint)flags };
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_CREATE_PIT2, KvmCall.Bytes(ref cfg)), "KVM_CREATE_PIT2", $"flags=0x{(uint)flags:x}");
    }

    /// <summary>KVM_GET_PIT2: the three channels and the flags.</summary>
    /// <exception cref="KvmException">ENXIO: the VM has no PIT.</exception>
    public PitState GetPit()
    {
        var s = default(kvm_pit_state2);
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_PIT2, KvmCall.Bytes(ref s)), "KVM_GET_PIT2", "");
        return PitState.FromKernel(s);
    }

    /// <summary>
    /// KVM_SET_PIT2: every field is stored as given, then each channel's count is loaded again: a count of 0 becomes
    /// 65536, channels 1 and 2 get count_load_time = now, channel 0 restarts its timer by its mode (and stops it when
    /// <see cref="PitStateFlags.HpetLegacy"/> turns on).
    /// </summary>
    /// <exception cref="KvmException">ENXIO: the VM has no PIT.</exception>
    public void SetPit(in PitState state)
    {
        var s = state.ToKernel();
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_PIT2, KvmCall.Bytes(ref s)), "KVM_SET_PIT2", $"flags=0x{(uint)state.Flags:x}");
    }

    /// <summary>
    /// KVM_REINJECT_CONTROL: with reinjection (the default) a channel 0 tick the guest has not acknowledged is held
    /// and delivered after its EOI; without it missed ticks are dropped.
    /// </summary>
    /// <exception cref="KvmException">ENXIO: the VM has no PIT.</exception>
    public void SetPitReinject(bool reinject)
    {
        var c = new kvm_reinject_control { pit_reinject = reinject ? (byte)1 : (byte)0 };
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_REINJECT_CONTROL, KvmCall.Bytes(ref c)), "KVM_REINJECT_CONTROL", $"pit_reinject={(reinject ? 1 : 0)}");
    }
}
