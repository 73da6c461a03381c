// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64VcpuAttrs;

namespace KvmSharp.Arm64;

/// <summary>
/// The guest PMUv3 of an arm64 vCPU initialised with <see cref="KvmArm64Constants.KVM_ARM_VCPU_PMU_V3"/> (vCPU device
/// attributes of group <see cref="KvmArm64VcpuAttrs.KVM_ARM_VCPU_PMU_V3_CTRL"/>, arch/arm64/kvm/pmu-emul.c;
/// Documentation/virt/kvm/devices/vcpu.rst). A VMM sets the overflow interrupt (with an in-kernel vGIC, after the
/// vGIC is initialised), optionally an event filter, a PMU and a counter count, then calls <see cref="InitPmu"/> on
/// every vCPU before the first KVM_RUN (which fails with EINVAL for a PMU vCPU without it). All of them are refused
/// with EBUSY once the vCPU's PMU is initialised.
/// </summary>
public static class Arm64VcpuPmu
{
    /// <summary>KVM_HAS_DEVICE_ATTR of a PMU attribute: true when the vCPU's VM was initialised with the PMU feature.</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">An error other than ENXIO (EINVAL: no vCPU attributes).</exception>
    public static bool HasPmuAttribute(this Vcpu vcpu, ulong attribute)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        return vcpu.HasDeviceAttribute(KVM_ARM_VCPU_PMU_V3_CTRL, attribute);
    }

    /// <summary>
    /// KVM_ARM_VCPU_PMU_V3_IRQ: the PMU overflow interrupt's INTID — a PPI (16..31, the same on every vCPU; 23 is the
    /// usual one) or an SPI (32..1019, a different one per vCPU). Needs an in-kernel vGIC; set once per vCPU.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">EINVAL (no in-kernel vGIC, not a PPI/SPI, or not the VM's
    /// interrupt type), EBUSY (already set, or the PMU is initialised), ENODEV (no PMU feature).</exception>
    public static void SetPmuInterrupt(this Vcpu vcpu, int intid) =>
        Set(vcpu, KVM_ARM_VCPU_PMU_V3_IRQ, BitConverter.GetBytes(intid), $"KVM_ARM_VCPU_PMU_V3_IRQ={intid}");

    /// <summary>KVM_GET_DEVICE_ATTR of KVM_ARM_VCPU_PMU_V3_IRQ: the INTID set with <see cref="SetPmuInterrupt"/>.</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">ENXIO (not set yet), EINVAL (no in-kernel vGIC), ENODEV (no PMU
    /// feature).</exception>
    public static int GetPmuInterrupt(this Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        int[] value = GC.AllocateArray<int>(1, pinned: true);
        long rc = Transfer(vcpu, KvmIoctls.KVM_GET_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_IRQ, Marshal.UnsafeAddrOfPinnedArrayElement(value, 0));
        GC.KeepAlive(value);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_DEVICE_ATTR", $"vcpu={vcpu.Id} KVM_ARM_VCPU_PMU_V3_IRQ");
        return value[0];
    }

    /// <summary>
    /// KVM_ARM_VCPU_PMU_V3_FILTER: allow (<paramref name="allow"/>) or deny the <paramref name="count"/> events from
    /// <paramref name="baseEvent"/> for the whole VM. The first filter sets the default for the other events: deny all
    /// after an allow, allow all after a deny.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">EINVAL (the range passes the host PMU's event space), EBUSY (the
    /// VM has run, or this vCPU's PMU is initialised), ENODEV (no PMU feature).</exception>
    public static void SetPmuEventFilter(this Vcpu vcpu, ushort baseEvent, ushort count, bool allow)
    {
        var filter = new kvm_pmu_event_filter
        {
            base_event = baseEvent,
            nevents = count,
            action = allow ? KVM_PMU_EVENT_ALLOW : KVM_PMU_EVENT_DENY,
        };
        Set(vcpu, KVM_ARM_VCPU_PMU_V3_FILTER, KvmCall.Bytes(ref filter).ToArray(),
            $"KVM_ARM_VCPU_PMU_V3_FILTER base={baseEvent} n={count} {(allow ? "allow" : "deny")}");
    }

    /// <summary>
    /// KVM_ARM_VCPU_PMU_V3_SET_PMU: back the guest PMU with the host PMU whose perf type is <paramref name="pmuType"/>
    /// (/sys/bus/event_source/devices/&lt;pmu&gt;/type); the counter count goes back to that PMU's.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">ENXIO (no such host PMU), EBUSY (the VM has run, a filter was
    /// set for another PMU, or this vCPU's PMU is initialised), ENODEV (no PMU feature).</exception>
    public static void SetPmu(this Vcpu vcpu, int pmuType) =>
        Set(vcpu, KVM_ARM_VCPU_PMU_V3_SET_PMU, BitConverter.GetBytes(pmuType), $"KVM_ARM_VCPU_PMU_V3_SET_PMU={pmuType}");

    /// <summary>
    /// KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS (Linux 6.16+): the VM's event counter count (PMCR_EL0.N), at most the host
    /// PMU's.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">EINVAL (more than the host PMU has), EBUSY (this vCPU's PMU is
    /// initialised), ENODEV (no PMU feature), ENXIO (a kernel before 6.16).</exception>
    public static void SetPmuCounterCount(this Vcpu vcpu, uint count) =>
        Set(vcpu, KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, BitConverter.GetBytes(count), $"KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS={count}");

    /// <summary>
    /// KVM_ARM_VCPU_PMU_V3_INIT: initialise the vCPU's PMU. With an in-kernel vGIC, the vGIC must be initialised and
    /// the interrupt set first.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">ENODEV (vGIC not initialised, or no PMU feature), ENXIO (no
    /// interrupt set), EINVAL (an SPI beyond the vGIC's), EBUSY (already initialised).</exception>
    public static void InitPmu(this Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        long rc = Transfer(vcpu, KvmIoctls.KVM_SET_DEVICE_ATTR, KVM_ARM_VCPU_PMU_V3_INIT, 0);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_SET_DEVICE_ATTR", $"vcpu={vcpu.Id} KVM_ARM_VCPU_PMU_V3_INIT");
    }

    private static void Set(Vcpu vcpu, ulong attribute, byte[] value, string request)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        byte[] pinned = GC.AllocateArray<byte>(value.Length, pinned: true);
        value.CopyTo(pinned, 0);
        long rc = Transfer(vcpu, KvmIoctls.KVM_SET_DEVICE_ATTR, attribute, Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0));
        GC.KeepAlive(pinned);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_SET_DEVICE_ATTR", $"vcpu={vcpu.Id} {request}");
    }

    private static long Transfer(Vcpu vcpu, uint request, ulong attribute, nint address)
    {
        var attr = new kvm_device_attr { group = KVM_ARM_VCPU_PMU_V3_CTRL, attr = attribute, addr = (ulong)address };
        return vcpu.Vm.Kernel.Ioctl(vcpu.Handle, request, KvmCall.Bytes(ref attr));
    }
}
