// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>The KVM_CLOCK_* bits of <c>struct kvm_clock_data</c> (KVM_GET_CLOCK / KVM_SET_CLOCK, x86).</summary>
[Flags]
public enum KvmClockFlags : uint
{
    /// <summary>No bit: the clock was read from the host's monotonic clock, without the TSC-based master clock.</summary>
    None = 0,

    /// <summary>
    /// KVM_CLOCK_TSC_STABLE: the VM uses the master clock (the host clocksource is the TSC and every vCPU's TSC is in
    /// one synchronisation generation), so all vCPUs see one kvmclock.
    /// </summary>
    TscStable = KvmConstants.KVM_CLOCK_TSC_STABLE,

    /// <summary>
    /// KVM_CLOCK_REALTIME: KVM_GET_CLOCK also read the host's CLOCK_REALTIME at the same instant
    /// (<see cref="KvmClockReading.RealtimeNanoseconds"/>). Passed to KVM_SET_CLOCK, the wall time elapsed since that
    /// realtime is added to the clock (never subtracted).
    /// </summary>
    Realtime = KvmConstants.KVM_CLOCK_REALTIME,

    /// <summary>KVM_CLOCK_HOST_TSC: KVM_GET_CLOCK also read the host's TSC at the same instant (<see cref="KvmClockReading.HostTsc"/>).</summary>
    HostTsc = KvmConstants.KVM_CLOCK_HOST_TSC,
}

/// <summary>
/// One KVM_GET_CLOCK reading of a VM's kvmclock (<see cref="Vm.GetClock"/>): what a VMM saves in a snapshot and
/// gives back to <see cref="Vm.SetClock(KvmClockReading, bool)"/>.
/// </summary>
/// <param name="Nanoseconds">The kvmclock: nanoseconds of guest time (a new VM starts near 0).</param>
/// <param name="Flags">The KVM_CLOCK_* bits the kernel reported.</param>
/// <param name="RealtimeNanoseconds">The host's CLOCK_REALTIME (ns since the Unix epoch) read with the clock, when <see cref="KvmClockFlags.Realtime"/> was reported.</param>
/// <param name="HostTsc">The host's TSC read with the clock, when <see cref="KvmClockFlags.HostTsc"/> was reported.</param>
public readonly record struct KvmClockReading(ulong Nanoseconds, KvmClockFlags Flags, ulong? RealtimeNanoseconds, ulong? HostTsc)
{
    /// <summary>Whether the VM was on the master clock (<see cref="KvmClockFlags.TscStable"/>) at the reading.</summary>
    public bool IsTscStable => (Flags & KvmClockFlags.TscStable) != 0;

    /// <summary><see cref="RealtimeNanoseconds"/> as a UTC time (100 ns resolution), or null.</summary>
    public DateTimeOffset? Realtime => RealtimeNanoseconds is ulong ns
        ? DateTimeOffset.UnixEpoch.AddTicks((long)(ns / 100))
        : null;

    /// <summary>Decodes the kernel's struct (the fields without their flag bit are not kept).</summary>
    public static KvmClockReading FromAbi(in kvm_clock_data data)
    {
        var flags = (KvmClockFlags)data.flags;
        return new KvmClockReading(data.clock, flags,
            (flags & KvmClockFlags.Realtime) != 0 ? data.realtime : null,
            (flags & KvmClockFlags.HostTsc) != 0 ? data.host_tsc : null);
    }
}
