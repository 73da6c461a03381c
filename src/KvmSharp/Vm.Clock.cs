// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// KVM_CHECK_EXTENSION(KVM_CAP_ADJUST_CLOCK) on the VM: the KVM_CLOCK_* bits KVM_GET_CLOCK can report and
    /// KVM_SET_CLOCK accepts (x86: TscStable | Realtime | HostTsc on Linux 5.16 and later); <see cref="KvmClockFlags.None"/>
    /// where the VM has no kvmclock ioctls (arm64).
    /// </summary>
    /// <exception cref="KvmException">The capability query failed.</exception>
    public KvmClockFlags SupportedClockFlags => (KvmClockFlags)(uint)Math.Max(0, CheckExtension(KvmCaps.KVM_CAP_ADJUST_CLOCK));

    /// <summary>
    /// KVM_CHECK_EXTENSION(KVM_CAP_TSC_CONTROL): whether the host can scale a guest's TSC, i.e. whether
    /// <see cref="Vcpu.SetTscKhz"/> accepts any rate (up to the hardware's limit). Without scaling only rates within
    /// 250 ppm of the host's and rates above it ("catch-up") are accepted.
    /// </summary>
    /// <exception cref="KvmException">The capability query failed.</exception>
    public bool SupportsTscScaling => CheckExtension(KvmCaps.KVM_CAP_TSC_CONTROL) > 0;

    /// <summary>
    /// KVM_GET_CLOCK: the VM's kvmclock now. A new VM's clock starts near 0 and runs at the host's rate; the host's
    /// CLOCK_REALTIME and TSC come along when the VM uses the master clock (after its vCPUs entered the guest or after
    /// <see cref="SetClock(ulong)"/>, on a host whose clocksource is the TSC).
    /// </summary>
    /// <exception cref="KvmException">ENOTTY: not an x86 VM with KVM_CAP_ADJUST_CLOCK (arm64 answers EINVAL).</exception>
    public KvmClockReading GetClock()
    {
        var data = new kvm_clock_data();
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_CLOCK, KvmCall.Bytes(ref data)), "KVM_GET_CLOCK", "");
        return KvmClockReading.FromAbi(data);
    }

    /// <summary>KVM_SET_CLOCK with flags 0: the kvmclock reads <paramref name="nanoseconds"/> now and runs on from there.</summary>
    /// <param name="nanoseconds">The new clock value (any value: the kernel keeps an offset to its own clock, which wraps).</param>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void SetClock(ulong nanoseconds) => SetClock(new kvm_clock_data { clock = nanoseconds });

    /// <summary>
    /// KVM_SET_CLOCK from a saved reading (a snapshot restore). By default only the clock value is restored, so the guest
    /// continues where it was saved (what Firecracker and cloud-hypervisor do: passing KVM_CLOCK_REALTIME back would make
    /// the guest's monotonic clock jump by the wall time between save and restore). With
    /// <paramref name="advanceByElapsedRealtime"/> and a reading that has <see cref="KvmClockReading.RealtimeNanoseconds"/>,
    /// KVM_CLOCK_REALTIME is passed: the kernel adds the CLOCK_REALTIME elapsed since the reading (live migration).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="advanceByElapsedRealtime"/> without a realtime in the reading.</exception>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void SetClock(KvmClockReading saved, bool advanceByElapsedRealtime = false)
    {
        var data = new kvm_clock_data { clock = saved.Nanoseconds };
        if (advanceByElapsedRealtime)
        {
            data.realtime = saved.RealtimeNanoseconds
                ?? throw new ArgumentException("the reading has no realtime (KVM_CLOCK_REALTIME was not reported)", nameof(saved));
            data.flags = KvmConstants.KVM_CLOCK_REALTIME;
        }
        SetClock(data);
    }

    /// <summary>
    /// KVM_SET_CLOCK with the struct as given. The kernel sets the clock to <c>clock</c> (plus the wall time elapsed since
    /// <c>realtime</c> with KVM_CLOCK_REALTIME, never stepping back) and ignores host_tsc and the pad fields.
    /// </summary>
    /// <exception cref="KvmException">EINVAL: a flag outside KVM_CLOCK_TSC_STABLE | REALTIME | HOST_TSC; EFAULT.</exception>
    public void SetClock(kvm_clock_data data) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_CLOCK, KvmCall.Bytes(ref data)), "KVM_SET_CLOCK",
            $"clock={data.clock} flags=0x{data.flags:X} realtime={data.realtime}");

    /// <summary>
    /// KVM_GET_TSC_KHZ on the VM (Linux 5.19+, KVM_CAP_VM_TSC_CONTROL's ioctl): the TSC rate new vCPUs start with —
    /// the host's unless <see cref="SetDefaultTscKhz"/> changed it.
    /// </summary>
    /// <exception cref="KvmException">ENOTTY before 5.19; EPERM (and other errnos) for a rate of 0xFFFFF001 kHz or more, which the kernel's int return value cannot carry.</exception>
    public uint DefaultTscKhz => (uint)KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_TSC_KHZ, 0UL), "KVM_GET_TSC_KHZ", "vm");

    /// <summary>
    /// KVM_SET_TSC_KHZ on the VM (Linux 5.19+): the TSC rate of the vCPUs created afterwards (0: the host's). Only before
    /// the first vCPU; the rate is not checked here — each vCPU takes it as <see cref="Vcpu.TscKhz"/>, scaled or not.
    /// </summary>
    /// <exception cref="KvmException">EINVAL: a vCPU exists already (or the rate is beyond the scaling limit on a host with TSC scaling).</exception>
    public void SetDefaultTscKhz(uint khz) =>
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_TSC_KHZ, khz), "KVM_SET_TSC_KHZ", $"vm khz={khz}");
}
