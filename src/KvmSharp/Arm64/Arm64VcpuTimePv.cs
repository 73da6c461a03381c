// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using static KvmSharp.Abi.Arm64.KvmArm64VcpuAttrs;

namespace KvmSharp.Arm64;

/// <summary>The four generic timers whose interrupt KVM_ARM_VCPU_TIMER_CTRL sets (the value is the attribute number).</summary>
public enum Arm64TimerIrq : ulong
{
    /// <summary>KVM_ARM_VCPU_TIMER_IRQ_VTIMER: the EL1 virtual timer (default PPI 27).</summary>
    Virtual = KVM_ARM_VCPU_TIMER_IRQ_VTIMER,

    /// <summary>KVM_ARM_VCPU_TIMER_IRQ_PTIMER: the EL1 physical timer (default PPI 30).</summary>
    Physical = KVM_ARM_VCPU_TIMER_IRQ_PTIMER,

    /// <summary>KVM_ARM_VCPU_TIMER_IRQ_HVTIMER: the EL2 virtual timer (default PPI 28; used with nested virtualization).</summary>
    HypVirtual = KVM_ARM_VCPU_TIMER_IRQ_HVTIMER,

    /// <summary>KVM_ARM_VCPU_TIMER_IRQ_HPTIMER: the EL2 physical timer (default PPI 26; used with nested virtualization).</summary>
    HypPhysical = KVM_ARM_VCPU_TIMER_IRQ_HPTIMER,
}

/// <summary>
/// The timer-interrupt and stolen-time vCPU attributes of arm64 (groups KVM_ARM_VCPU_TIMER_CTRL and
/// KVM_ARM_VCPU_PVTIME_CTRL; arch/arm64/kvm/arch_timer.c, pvtime.c; Documentation/virt/kvm/devices/vcpu.rst). The timer
/// PPIs are VM-wide though set through a vCPU; they are checked at each vCPU's first KVM_RUN (two timers on one PPI, or
/// a timer on the PMU's PPI, fail the run with EINVAL) and frozen (EBUSY) once a vCPU ran.
/// </summary>
public static class Arm64VcpuTimePv
{
    /// <summary>KVM_HAS_DEVICE_ATTR of a timer attribute (all four exist on 6.x kernels with the four-timer API).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">An error other than ENXIO.</exception>
    public static bool HasTimerAttribute(this Vcpu vcpu, Arm64TimerIrq timer)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        return vcpu.HasDeviceAttribute(KVM_ARM_VCPU_TIMER_CTRL, (ulong)timer);
    }

    /// <summary>Sets the PPI (16..31) of <paramref name="timer"/> for the whole VM.</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">EINVAL (no in-kernel vGIC, or not a PPI), EBUSY (a vCPU of the VM
    /// has run with valid timer PPIs), ENXIO (unknown timer).</exception>
    public static void SetTimerInterrupt(this Vcpu vcpu, Arm64TimerIrq timer, int ppi)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        int[] value = GC.AllocateArray<int>(1, pinned: true);
        value[0] = ppi;
        long rc = Transfer(vcpu, KvmIoctls.KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_TIMER_CTRL, (ulong)timer, Marshal.UnsafeAddrOfPinnedArrayElement(value, 0));
        GC.KeepAlive(value);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_SET_DEVICE_ATTR", $"vcpu={vcpu.Id} KVM_ARM_VCPU_TIMER_CTRL {timer}={ppi}");
    }

    /// <summary>The PPI of <paramref name="timer"/> (the VM's; no vGIC needed).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">ENXIO (unknown timer).</exception>
    public static int GetTimerInterrupt(this Vcpu vcpu, Arm64TimerIrq timer)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        int[] value = GC.AllocateArray<int>(1, pinned: true);
        long rc = Transfer(vcpu, KvmIoctls.KVM_GET_DEVICE_ATTR, KVM_ARM_VCPU_TIMER_CTRL, (ulong)timer, Marshal.UnsafeAddrOfPinnedArrayElement(value, 0));
        GC.KeepAlive(value);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_DEVICE_ATTR", $"vcpu={vcpu.Id} KVM_ARM_VCPU_TIMER_CTRL {timer}");
        return value[0];
    }

    /// <summary>KVM_HAS_DEVICE_ATTR of KVM_ARM_VCPU_PVTIME_IPA: the host supports stolen time (KVM_CAP_STEAL_TIME).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">An error other than ENXIO.</exception>
    public static bool HasStealTime(this Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        return vcpu.HasDeviceAttribute(KVM_ARM_VCPU_PVTIME_CTRL, KVM_ARM_VCPU_PVTIME_IPA);
    }

    /// <summary>
    /// KVM_ARM_VCPU_PVTIME_IPA: the guest-physical address of this vCPU's 64-byte struct pvclock_vcpu_stolen_time,
    /// 64-byte aligned, inside a writable memslot; set once per vCPU.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">EINVAL (misaligned, or not in a writable memslot), EEXIST (already
    /// set), ENXIO (stolen time unsupported).</exception>
    public static void SetStealTimeIpa(this Vcpu vcpu, ulong ipa)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ulong[] value = GC.AllocateArray<ulong>(1, pinned: true);
        value[0] = ipa;
        long rc = Transfer(vcpu, KvmIoctls.KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_PVTIME_CTRL, KVM_ARM_VCPU_PVTIME_IPA, Marshal.UnsafeAddrOfPinnedArrayElement(value, 0));
        GC.KeepAlive(value);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_SET_DEVICE_ATTR", $"vcpu={vcpu.Id} KVM_ARM_VCPU_PVTIME_IPA=0x{ipa:x}");
    }

    /// <summary>The stolen-time IPA set with <see cref="SetStealTimeIpa"/>, or null before (the kernel's INVALID_GPA).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">ENXIO (stolen time unsupported).</exception>
    public static ulong? GetStealTimeIpa(this Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ulong[] value = GC.AllocateArray<ulong>(1, pinned: true);
        long rc = Transfer(vcpu, KvmIoctls.KVM_GET_DEVICE_ATTR, KVM_ARM_VCPU_PVTIME_CTRL, KVM_ARM_VCPU_PVTIME_IPA, Marshal.UnsafeAddrOfPinnedArrayElement(value, 0));
        GC.KeepAlive(value);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_DEVICE_ATTR", $"vcpu={vcpu.Id} KVM_ARM_VCPU_PVTIME_IPA");
        return value[0] == ulong.MaxValue ? null : value[0];
    }

    private static long Transfer(Vcpu vcpu, uint request, uint group, ulong attribute, nint address)
    {
        var attr = new kvm_device_attr { group = group, attr = attribute, addr = (ulong)address };
        return vcpu.Vm.Kernel.Ioctl(vcpu.Handle, request, KvmCall.Bytes(ref attr));
    }
}
