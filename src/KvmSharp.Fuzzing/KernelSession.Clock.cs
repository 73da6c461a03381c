// SPDX-License-Identifier: MIT
using System.Diagnostics;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.Clock"/> and <see cref="OpKind.TscKhz"/> (<see cref="ClockOps"/>): results and errnos exactly,
/// clocks against bounds, TSC rates relative to this kernel's host rate.
/// </summary>
public sealed partial class KernelSession
{
    private uint _hostTscKhz;

    private string Clock(FuzzOp op)
    {
        var fd = Fd(op.Target);
        if (op.E == ClockOps.BadPointer)
        {
            // NULL and a kernel-half address: copy_to_user / copy_from_user fault (EFAULT) where the request is known.
            ulong at = (op.A & 1) == 0 ? 0 : 0xFFFF_8000_0000_0000;
            return $"get {Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_GET_CLOCK, at))}, set {Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_CLOCK, at))}";
        }
        string text = "";
        ulong expected = 0;
        bool setOk = false;
        var timer = Stopwatch.StartNew();
        if (op.E == ClockOps.SetThenGet)
        {
            ulong now = ClockOps.RealtimeNow();
            var data = new kvm_clock_data { clock = op.A, flags = (uint)op.B, realtime = ClockOps.Realtime((int)(op.C & 3), now, op.U) };
            if ((op.C & ClockOps.DirtyPads) != 0)
            {
                data.pad0 = (uint)op.U;
                data.pad[2] = 0xffff_ffff;
                data.host_tsc = op.U;
            }
            // kvm_vm_ioctl_set_clock: with KVM_CLOCK_REALTIME the realtime elapsed since data.realtime is added.
            expected = op.A;
            if ((data.flags & KvmConstants.KVM_CLOCK_REALTIME) != 0 && now > data.realtime) expected = unchecked(expected + (now - data.realtime));
            long set = _kernel.Ioctl(fd, KvmIoctls.KVM_SET_CLOCK, Bytes(ref data));
            text = $"set {Describe(set)}, ";
            setOk = set == 0;
        }
        var reading = new kvm_clock_data();
        Bytes(ref reading).Fill(0xee);
        long get = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_CLOCK, Bytes(ref reading));
        ulong elapsed = (ulong)timer.Elapsed.Ticks * 100;
        text += $"get {Describe(get)}";
        if (get != 0) return text;
        text += " " + ClockOps.DescribeFlags(reading);
        return setOk ? text + ", " + ClockOps.Bound(reading.clock, expected, elapsed) : text;
    }

    private string TscKhz(FuzzOp op)
    {
        var fd = Fd(op.Target);
        uint host = HostTscKhz();
        ulong rate = ClockOps.Rate((int)op.A, host, (int)(long)op.B, op.C);
        string text = "";
        if (op.E != 0) text = $"set {Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_TSC_KHZ, rate))}, ";
        return text + "get " + ClockOps.DescribeRate(_kernel.Ioctl(fd, KvmIoctls.KVM_GET_TSC_KHZ, 0UL), rate, host, Describe);
    }

    /// <summary>tsc_khz of this kernel's host: what a new VM's KVM_GET_TSC_KHZ reads (kvm->arch.default_tsc_khz).</summary>
    private uint HostTscKhz()
    {
        if (_hostTscKhz != 0) return _hostTscKhz;
        if (_kernel.Open("/dev/kvm", LinuxConstants.O_RDWR, out var sys) < 0 || sys is null) return 0;
        using (sys)
        {
            long vmFd = _kernel.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, 0UL);
            if (vmFd < 0) return 0;
            using var vm = _kernel.Adopt((int)vmFd);
            long khz = _kernel.Ioctl(vm, KvmIoctls.KVM_GET_TSC_KHZ, 0UL);
            _hostTscKhz = khz > 0 ? (uint)khz : 0;
        }
        return _hostTscKhz;
    }
}
