// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// The VM ioctls of the in-kernel PIT, arch/x86/kvm/x86.c kvm_arch_vm_ioctl (Linux 6.18, CONFIG_KVM_IOAPIC):
/// KVM_CREATE_PIT, KVM_CREATE_PIT2, KVM_GET/SET_PIT, KVM_GET/SET_PIT2, KVM_REINJECT_CONTROL. Probed on this host by
/// Conformance/Cases/PitRules.cs. A failed call changes nothing.
/// </summary>
internal static class PitIoctls
{
    public static bool IsVmRequest(uint request) =>
        request == KvmIoctls.KVM_CREATE_PIT || request == KvmIoctls.KVM_CREATE_PIT2 || request == KvmIoctls.KVM_GET_PIT
        || request == KvmIoctls.KVM_SET_PIT || request == KvmIoctls.KVM_GET_PIT2 || request == KvmIoctls.KVM_SET_PIT2
        || request == KvmIoctls.KVM_REINJECT_CONTROL;

    public static long VmIoctl(Kvm kvm, uint request, IoctlArg arg)
    {
        if (request == KvmIoctls.KVM_CREATE_PIT) return Create(kvm, KvmConstants.KVM_PIT_SPEAKER_DUMMY);
        if (request == KvmIoctls.KVM_CREATE_PIT2)
        {
            // copy_from_user(&u.pit_config) → EFAULT; the pad is not looked at, nor flags beyond SPEAKER_DUMMY.
            if (!arg.CopyFromUser(out kvm_pit_config cfg)) return Err.EFAULT;
            return Create(kvm, cfg.flags);
        }
        if (request == KvmIoctls.KVM_GET_PIT) return GetPit(kvm, arg);
        if (request == KvmIoctls.KVM_SET_PIT) return SetPit(kvm, arg);
        if (request == KvmIoctls.KVM_GET_PIT2) return GetPit2(kvm, arg);
        if (request == KvmIoctls.KVM_SET_PIT2) return SetPit2(kvm, arg);
        return Reinject(kvm, arg);
    }

    /// <summary>
    /// create_pit: kvm->arch.vpit → EEXIST; !pic_in_kernel → ENOENT (a split irqchip has no PIC, so ENOENT too; probed
    /// on this host's 6.18). api.rst has said since KVM_CREATE_PIT2 came (2.6.31) that the call "is only valid after
    /// KVM_CREATE_IRQCHIP"; the release that started enforcing it is not verified here, so every generation enforces
    /// it. vCPUs may exist. kvm_create_pit: kvm_pit_reset, reinject on, ports 0x40–0x43 on the PIO bus and, with
    /// KVM_PIT_SPEAKER_DUMMY, the speaker at 0x61 (length 4).
    /// </summary>
    private static long Create(Kvm kvm, uint flags)
    {
        if (kvm.Pit is not null) return Err.EEXIST;
        if (!kvm.Irqchip.Full) return Err.ENOENT;
        var pit = new I8254(flags, ioapicInKernel: () => kvm.Irqchip.Full);
        // kvm_create_pit: a full bus (kvm_io_bus_register_dev's ENOSPC) unregisters the ports already registered
        // ("fail_register_speaker") and returns NULL, which KVM_CREATE_PIT2 answers with its "r = -ENOMEM" (observed).
        var ports = new I8254PortDevice(pit);
        if (kvm.IoBus.TryRegister(KvmBus.Pio, I8254.BaseAddress, I8254.MemLength, ports) != 0) return Err.ENOMEM;
        if ((flags & KvmConstants.KVM_PIT_SPEAKER_DUMMY) != 0
            && kvm.IoBus.TryRegister(KvmBus.Pio, I8254.SpeakerAddress, 4, new I8254SpeakerDevice(pit)) != 0)
        {
            kvm.IoBus.Unregister(KvmBus.Pio, ports);
            return Err.ENOMEM;
        }
        kvm.Pit = pit;
        return 0;
    }

    /// <summary>KVM_GET_PIT: copy_from_user (EFAULT), no PIT → ENXIO, kvm_vm_ioctl_get_pit, copy_to_user (EFAULT).</summary>
    private static long GetPit(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_pit_state ps)) return Err.EFAULT;
        if (kvm.Pit is not { } pit) return Err.ENXIO;
        pit.GetChannels(ref ps.channels);
        return arg.CopyToUser(ps) ? 0 : Err.EFAULT;
    }

    /// <summary>KVM_SET_PIT: copy_from_user (EFAULT), no PIT → ENXIO, kvm_vm_ioctl_set_pit.</summary>
    private static long SetPit(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_pit_state ps)) return Err.EFAULT;
        if (kvm.Pit is not { } pit) return Err.ENXIO;
        pit.SetChannels(ps.channels);
        return 0;
    }

    /// <summary>KVM_GET_PIT2: no PIT → ENXIO (before any copy), kvm_vm_ioctl_get_pit2 (reserved zeroed), copy_to_user.</summary>
    private static long GetPit2(Kvm kvm, IoctlArg arg)
    {
        if (kvm.Pit is not { } pit) return Err.ENXIO;
        var ps = default(kvm_pit_state2);
        pit.GetChannels(ref ps.channels);
        lock (pit.Lock) ps.flags = pit.Flags;
        return arg.CopyToUser(ps) ? 0 : Err.EFAULT;
    }

    /// <summary>KVM_SET_PIT2: copy_from_user (EFAULT), no PIT → ENXIO, kvm_vm_ioctl_set_pit2.</summary>
    private static long SetPit2(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_pit_state2 ps)) return Err.EFAULT;
        if (kvm.Pit is not { } pit) return Err.ENXIO;
        pit.SetState2(ps);
        return 0;
    }

    /// <summary>
    /// KVM_REINJECT_CONTROL (_IO, the argument is a pointer): copy_from_user (EFAULT), no PIT → ENXIO,
    /// kvm_pit_set_reinject(pit_reinject != 0); reserved bytes are not looked at.
    /// </summary>
    private static long Reinject(Kvm kvm, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_reinject_control control)) return Err.EFAULT;
        if (kvm.Pit is not { } pit) return Err.ENXIO;
        lock (pit.Lock) pit.SetReinject(control.pit_reinject != 0);
        return 0;
    }
}
