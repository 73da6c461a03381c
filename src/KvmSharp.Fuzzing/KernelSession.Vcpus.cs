// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The calls added after the first fuzzer: KVM_ENABLE_CAP, KVM_SET_TSS_ADDR, vCPUs (creation, register round trips,
/// KVM_RUN, KVM_PRE_FAULT_MEMORY), madvise on gmem mappings and tiny guest runs (<see cref="TinyGuestRun"/>).
/// </summary>
public sealed partial class KernelSession
{
    private readonly Dictionary<int, MappedRegion> _runPages = [];

    private string ApplyNewerOp(FuzzOp op)
    {
        switch (op.Kind)
        {
            case OpKind.EnableCap:
            {
                var cap = new kvm_enable_cap { cap = (uint)op.A, flags = (uint)op.B };
                cap.args[0] = op.C;
                return Describe(_kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap)));
            }
            case OpKind.SetTssAddr:
                return Describe(_kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_SET_TSS_ADDR, op.A));
            case OpKind.CreateVcpu:
            {
                long rc = _kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_CREATE_VCPU, op.A);
                if (rc < 0) return Describe(rc);
                var vcpu = _kernel.Adopt((int)rc);
                _fds[op.Result] = vcpu;
                // kvm_run fits in the first page; the rest of the vCPU mapping (pio data, coalesced MMIO) is unused.
                long map = MappedRegion.Map(_kernel, vcpu, (ulong)PageSize, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, 0, out var run);
                if (map < 0) return "ok fd, run page " + Describe(map);
                _runPages[op.Result] = run!;
                return "ok fd";
            }
            case OpKind.RegsRoundTrip:
                return RegsRoundTrip(op);
            case OpKind.SregsRoundTrip:
                return SregsRoundTrip(op);
            case OpKind.RunVcpu:
                return RunVcpu(op);
            case OpKind.PreFault:
            {
                var range = new kvm_pre_fault_memory { gpa = op.A, size = op.B, flags = op.C };
                long rc = _kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_PRE_FAULT_MEMORY, Bytes(ref range));
                return string.Create(CultureInfo.InvariantCulture, $"{Describe(rc)} left gpa=0x{range.gpa:X} size=0x{range.size:X}");
            }
            case OpKind.Madvise:
            {
                if (!_mappings.TryGetValue(op.Target, out var m)) return "no mapping";
                if (op.A > m.Region.Length || op.B > m.Region.Length - op.A) return "outside mapping";
                return Describe(m.Region.Advise(op.A, op.B, op.E));
            }
            case OpKind.GuestRun:
                return TinyGuestRun.Run(_kernel, Fd(op.Target), op.A, realMode: (op.E & 1) != 0, hostMemory: (op.E & FuzzOp.GuestRunInHostMemory) != 0,
                    dirtyLog: (op.E & FuzzOp.GuestRunDirtyLog) != 0, farTransfers: (op.E & FuzzOp.GuestRunFarTransfers) != 0,
                    withReported: (op.E & FuzzOp.GuestRunWithReported) != 0);
            case OpKind.GetDirtyLog:
                return GetDirtyLog(op);
            case OpKind.ClearDirtyLog:
                return ClearDirtyLog(op);
            case OpKind.Mempolicy:
                return Mempolicy(op);
            default:
                return ApplyX86StateOp(op);
        }
    }

    private string RegsRoundTrip(FuzzOp op)
    {
        var fd = Fd(op.Target);
        var rng = new Random((int)op.A);
        var regs = new kvm_regs();
        Span<ulong> all = MemoryMarshal.Cast<byte, ulong>(Bytes(ref regs));
        for (int i = 0; i < all.Length; i++) all[i] = rng.Next(4) == 0 ? (ulong)rng.NextInt64() : (ulong)rng.Next(0x10000);
        // RFLAGS: mostly the reset value with a few defined bits, sometimes anything (bit 1 is forced to 1).
        regs.rflags = rng.Next(4) == 0 ? (ulong)rng.NextInt64() : 2UL | (ulong)(rng.Next(0x1000) & 0x8D5);
        if (op.E == 0) regs.rflags &= ~ReportedDivergences.RflagsVm;
        long set = _kernel.Ioctl(fd, KvmIoctls.KVM_SET_REGS, Bytes(ref regs));
        var back = new kvm_regs();
        long get = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_REGS, Bytes(ref back));
        return $"set {Describe(set)}, get {Describe(get)}" + (get == 0 ? " " + FuzzText.Regs(back) : "");
    }

    private string SregsRoundTrip(FuzzOp op)
    {
        var fd = Fd(op.Target);
        var sregs = new kvm_sregs();
        long get = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_SREGS, Bytes(ref sregs));
        if (get != 0) return "get " + Describe(get);
        SregsMutation.Apply(ref sregs, op.E, new Random((int)op.A));
        long set = _kernel.Ioctl(fd, KvmIoctls.KVM_SET_SREGS, Bytes(ref sregs));
        var back = new kvm_sregs();
        long again = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_SREGS, Bytes(ref back));
        return $"set {Describe(set)}, get {Describe(again)} " + FuzzText.Sregs(back);
    }

    private string RunVcpu(FuzzOp op)
    {
        var fd = Fd(op.Target);
        _runPages.TryGetValue(op.Target, out var run);
        if (run is not null && !run.IsClosed) run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = (byte)op.E;
        MarkRun(op.Target);
        long rc = _kernel.Ioctl(fd, KvmIoctls.KVM_RUN, 0UL);
        if (run is null || run.IsClosed) return Describe(rc);
        run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 0;
        uint reason = BitConverter.ToUInt32(run.GetSpan(KvmRunLayout.exit_reason, 4));
        return string.Create(CultureInfo.InvariantCulture, $"{Describe(rc)} exit_reason={reason}");
    }
}
