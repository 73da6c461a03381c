// SPDX-License-Identifier: MIT
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Kernel.Tracing;

/// <summary>
/// strace for KVM: a kernel that forwards every call to another one (real or emulated) and reports each to
/// a sink as a <see cref="KernelCall"/> — descriptors named by what created them (<c>kvm#1</c>,
/// <c>vm#1</c>, <c>vcpu#1</c>, <c>gmem#1</c>), the guest_memfd ioctls' structs decoded, the exit reason after KVM_RUN.
/// With comparable, host addresses print as <c>&lt;addr&gt;</c> and new descriptors by name only (no number), so the
/// same program traced on two kernels gives lines that compare equal. Descriptors returned through it belong to it; close them through it too.
/// </summary>
public sealed class TracingKernel : DelegatingKernel, IDisposable
{
    private readonly Action<KernelCall> _sink;
    private readonly bool _comparable;
    private readonly bool _ownsInner;
    private readonly IoctlArguments _arguments;
    private readonly ConcurrentDictionary<int, TracedFd> _fds = new();
    private readonly ConcurrentDictionary<nint, int> _runPages = new();
    private readonly ConcurrentDictionary<string, int> _ordinals = new();

    /// <param name="inner">The kernel that answers.</param>
    /// <param name="sink">Receives every call, on the calling thread, after it returned.</param>
    /// <param name="comparable">Leave out what differs between processes and kernels for the same program: host
    /// addresses print as <c>&lt;addr&gt;</c>, a new descriptor by its name only.</param>
    /// <param name="ownsInner">Dispose <paramref name="inner"/> (when it is disposable) with this kernel.</param>
    public TracingKernel(IKernel inner, Action<KernelCall> sink, bool comparable = false, bool ownsInner = false)
        : base(inner)
    {
        ArgumentNullException.ThrowIfNull(sink);
        _sink = sink;
        _comparable = comparable;
        _ownsInner = ownsInner;
        _arguments = new IoctlArguments(fd => Label((int)fd), Address, comparable);
    }

    /// <inheritdoc/>
    public override long Open(string path, int flags, out KernelFd? fd)
    {
        long start = Stopwatch.GetTimestamp();
        long rc = Inner.Open(path, flags, out var innerFd);
        fd = innerFd is null ? null : Track(innerFd, path.EndsWith("/kvm", StringComparison.Ordinal) ? "kvm" : path).Outer = new KernelFd(this, innerFd.Number);
        Report($"open(\"{path}\", 0x{flags:x})", rc, fd is null ? "" : Label(fd.Number), start, resultIsDescriptor: fd is not null);
        return rc;
    }

    /// <inheritdoc/>
    public override KernelFd Adopt(int fd)
    {
        // A descriptor an ioctl created was named (and its inner handle taken) when the ioctl returned.
        var traced = _fds.TryGetValue(fd, out var known) ? known : Track(Inner.Adopt(fd), "fd");
        return traced.Outer ??= new KernelFd(this, fd);
    }

    /// <inheritdoc/>
    public override long Close(int fd)
    {
        long start = Stopwatch.GetTimestamp();
        string label = Label(fd);
        long rc;
        if (_fds.TryRemove(fd, out var traced))
        {
            foreach (var page in _runPages.Where(p => p.Value == fd).Select(p => p.Key).ToList()) _runPages.TryRemove(page, out _);
            // The inner descriptor's own release is the close(2).
            traced.Inner.Dispose();
            rc = 0;
        }
        else
        {
            rc = Inner.Close(fd);
        }
        Report($"close({label})", rc, "", start);
        return rc;
    }

    /// <inheritdoc/>
    public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
    {
        long start = Stopwatch.GetTimestamp();
        string label = Label(fd);
        string call = $"ioctl({label}, {KvmIoctls.NameOf(request)}, {_arguments.Before(request, arg, label)})";
        long rc = Inner.Ioctl(InnerOf(fd), request, arg);
        string outcome = rc < 0 ? "" : request == KvmIoctls.KVM_CREATE_DEVICE ? CreatedDevice(arg) : Created(request, rc);
        string after = _arguments.After(request, arg, rc, label);
        Report(call, rc, outcome.Length == 0 ? after : outcome, start, resultIsDescriptor: outcome.Length > 0);
        return rc;
    }

    /// <inheritdoc/>
    public override long Ioctl(KernelFd fd, uint request, ulong arg)
    {
        long start = Stopwatch.GetTimestamp();
        string call = $"ioctl({Label(fd)}, {KvmIoctls.NameOf(request)}, {IoctlArguments.Value(request, arg)})";
        long rc = Inner.Ioctl(InnerOf(fd), request, arg);
        bool run = request == KvmIoctls.KVM_RUN;
        string outcome = rc < 0 ? "" : run ? ExitReason(fd) : Created(request, rc);
        bool created = !run && outcome.Length > 0;
        if (outcome.Length == 0) outcome = IoctlArguments.ValueResult(request, rc);
        Report(call, rc, outcome, start, resultIsDescriptor: created);
        return rc;
    }

    /// <inheritdoc/>
    public override long Mmap(nint address, ulong length, int prot, int flags, KernelFd? fd, long offset, out nint mapped)
    {
        long start = Stopwatch.GetTimestamp();
        long rc = Inner.Mmap(address, length, prot, flags, fd is null ? null : InnerOf(fd), offset, out mapped);
        if (rc >= 0 && fd is not null && _fds.TryGetValue(fd.Number, out var traced) && traced.Label.StartsWith("vcpu", StringComparison.Ordinal))
            _runPages[mapped] = fd.Number;
        string target = fd is null ? "-1" : Label(fd);
        Report($"mmap({(address == 0 ? "NULL" : Address((ulong)address))}, 0x{length:x}, {Prot(prot)}, {MapFlags(flags)}, {target}, 0x{offset:x})",
            rc, rc >= 0 ? Address((ulong)mapped) : "", start);
        return rc;
    }

    /// <inheritdoc/>
    public override long Munmap(nint address, ulong length)
    {
        long start = Stopwatch.GetTimestamp();
        _runPages.TryRemove(address, out _);
        long rc = Inner.Munmap(address, length);
        Report($"munmap({Address((ulong)address)}, 0x{length:x})", rc, "", start);
        return rc;
    }

    /// <inheritdoc/>
    public override long Fallocate(KernelFd fd, int mode, long offset, long length)
    {
        long start = Stopwatch.GetTimestamp();
        long rc = Inner.Fallocate(InnerOf(fd), mode, offset, length);
        Report($"fallocate({Label(fd)}, {FallocateMode(mode)}, 0x{offset:x}, 0x{length:x})", rc, "", start);
        return rc;
    }

    /// <inheritdoc/>
    public override long Read(KernelFd fd, Span<byte> buffer) => Traced($"read({Label(fd)}, {buffer.Length})", Inner.Read(InnerOf(fd), buffer));

    /// <inheritdoc/>
    public override long Write(KernelFd fd, ReadOnlySpan<byte> buffer) => Traced($"write({Label(fd)}, {buffer.Length})", Inner.Write(InnerOf(fd), buffer));

    /// <inheritdoc/>
    public override long Pread(KernelFd fd, Span<byte> buffer, long offset) =>
        Traced($"pread64({Label(fd)}, {buffer.Length}, 0x{offset:x})", Inner.Pread(InnerOf(fd), buffer, offset));

    /// <inheritdoc/>
    public override long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset) =>
        Traced($"pwrite64({Label(fd)}, {buffer.Length}, 0x{offset:x})", Inner.Pwrite(InnerOf(fd), buffer, offset));

    /// <inheritdoc/>
    public override long Lseek(KernelFd fd, long offset, int whence) =>
        Traced($"lseek({Label(fd)}, 0x{offset:x}, {whence})", Inner.Lseek(InnerOf(fd), offset, whence));

    /// <inheritdoc/>
    public override long Fstat(KernelFd fd, out KernelStat stat)
    {
        long start = Stopwatch.GetTimestamp();
        long rc = Inner.Fstat(InnerOf(fd), out stat);
        Report($"fstat({Label(fd)})", rc, rc == 0 ? $"{{st_size=0x{stat.Size:x}, st_blksize={stat.BlockSize}}}" : "", start);
        return rc;
    }

    /// <inheritdoc/>
    public override long Ftruncate(KernelFd fd, long length) => Traced($"ftruncate({Label(fd)}, 0x{length:x})", Inner.Ftruncate(InnerOf(fd), length));

    /// <inheritdoc/>
    public override long EventFd(uint initialValue, int flags, out KernelFd? fd)
    {
        long start = Stopwatch.GetTimestamp();
        long rc = Inner.EventFd(initialValue, flags, out var innerFd);
        fd = innerFd is null ? null : Track(innerFd, "eventfd").Outer = new KernelFd(this, innerFd.Number);
        Report($"eventfd2({initialValue}, 0x{flags:x})", rc, fd is null ? "" : Label(fd.Number), start, resultIsDescriptor: fd is not null);
        return rc;
    }

    /// <inheritdoc/>
    public override long Madvise(nint address, ulong length, int advice) =>
        Traced($"madvise({Address((ulong)address)}, 0x{length:x}, {advice})", Inner.Madvise(address, length, advice));

    /// <inheritdoc/>
    public override long Mincore(nint address, ulong length, Span<byte> vector) =>
        Traced($"mincore({Address((ulong)address)}, 0x{length:x})", Inner.Mincore(address, length, vector));

    /// <inheritdoc/>
    public override long Mbind(nint address, ulong length, int mode, ulong nodemask, ulong maxnode, uint flags) =>
        Traced($"mbind({Address((ulong)address)}, 0x{length:x}, {MempolicyMode(mode)}, {Pointer(nodemask)}, {maxnode}, {MbindFlags(flags)})",
            Inner.Mbind(address, length, mode, nodemask, maxnode, flags));

    /// <inheritdoc/>
    public override long GetMempolicy(ulong policy, ulong nodemask, ulong maxnode, nint address, ulong flags) =>
        Traced($"get_mempolicy({Pointer(policy)}, {Pointer(nodemask)}, {maxnode}, {Pointer((ulong)address)}, {GetMempolicyFlags(flags)})",
            Inner.GetMempolicy(policy, nodemask, maxnode, address, flags));

    /// <inheritdoc/>
    public override long MovePages(int pid, ulong count, ulong pages, ulong status, int flags) =>
        Traced($"move_pages({pid}, {count}, {Pointer(pages)}, NULL, {Pointer(status)}, {MbindFlags((uint)flags)})",
            Inner.MovePages(pid, count, pages, status, flags));

    /// <summary>Disposes the inner kernel when this one owns it.</summary>
    public void Dispose()
    {
        if (_ownsInner) (Inner as IDisposable)?.Dispose();
    }

    private long Traced(string call, long rc)
    {
        Report(call, rc, "", Stopwatch.GetTimestamp());
        return rc;
    }

    private void Report(string call, long rc, string outcome, long start, bool resultIsDescriptor = false) =>
        _sink(new KernelCall(call, rc, outcome, Stopwatch.GetElapsedTime(start)) { HidesResult = _comparable && resultIsDescriptor });

    /// <summary>A descriptor a successful ioctl created, named after the request.</summary>
    private string Created(uint request, long rc)
    {
        string? kind = request == KvmIoctls.KVM_CREATE_VM ? "vm"
            : request == KvmIoctls.KVM_CREATE_VCPU ? "vcpu"
            : request == KvmIoctls.KVM_CREATE_GUEST_MEMFD ? "gmem"
            : request == KvmIoctls.KVM_GET_STATS_FD ? "stats" : null;
        if (kind is null) return "";
        // The caller adopts the number next (Adopt hands out this kernel's handle); name it now.
        return Track(Inner.Adopt((int)rc), kind).Label;
    }

    /// <summary>
    /// KVM_CREATE_DEVICE: the new device's descriptor is in the struct (kvm_create_device.fd), not the return value;
    /// with KVM_CREATE_DEVICE_TEST there is none.
    /// </summary>
    private string CreatedDevice(Span<byte> arg)
    {
        if (arg.Length < Unsafe.SizeOf<kvm_create_device>()) return "";
        var device = MemoryMarshal.Read<kvm_create_device>(arg);
        if ((device.flags & KvmDeviceConstants.KVM_CREATE_DEVICE_TEST) != 0) return "";
        return Track(Inner.Adopt((int)device.fd), "device").Label;
    }

    /// <summary>
    /// The traced program duplicated <paramref name="oldFd"/> as <paramref name="newFd"/> (dup, dup2, dup3, F_DUPFD,
    /// made by the kernel itself): the copy is traced too, named after the original. A traced file that had the
    /// number before was closed by that call.
    /// </summary>
    public void Duplicated(int oldFd, int newFd)
    {
        long start = Stopwatch.GetTimestamp();
        string original = Label(oldFd);
        Replaced(newFd);
        var copy = new TracedFd(Inner.Adopt(newFd), $"dup({original})");
        _fds[newFd] = copy;
        Report($"dup({original})", newFd, copy.Label, start, resultIsDescriptor: true);
    }

    /// <summary>A traced number now holds a file of the program's own (dup2 onto it): forgotten, not closed.</summary>
    public void Replaced(int fd)
    {
        if (_fds.TryRemove(fd, out var replaced)) replaced.Inner.SetHandleAsInvalid();
    }

    /// <summary>KVM_RUN's exit reason and its fields (<see cref="ExitDetails"/>), read from the vCPU's kvm_run page when it was mapped through this kernel.</summary>
    private string ExitReason(KernelFd vcpu)
    {
        foreach (var (page, fd) in _runPages)
        {
            if (fd != vcpu.Number) continue;
            // SAFETY: the page was mapped through this kernel for this vCPU and is removed from _runPages when it is
            // unmapped or the vCPU closed through this kernel; kvm_run.exit_reason is a u32 at a fixed offset.
            uint reason = (uint)Marshal.ReadInt32(page, KvmRunLayout.exit_reason);
            return Enum.IsDefined((KvmExitReason)reason) ? ((KvmExitReason)reason).ToString() + ExitDetails.Of(page, (KvmExitReason)reason)
                : $"exit_reason {reason}";
        }
        return "";
    }

    private TracedFd Track(KernelFd inner, string kind)
    {
        int n = _ordinals.AddOrUpdate(kind, 1, (_, v) => v + 1);
        var traced = new TracedFd(inner, $"{kind}#{n}");
        _fds[inner.Number] = traced;
        return traced;
    }

    private KernelFd InnerOf(KernelFd fd) =>
        ReferenceEquals(fd.Kernel, this) && _fds.TryGetValue(fd.Number, out var traced) ? traced.Inner : fd;

    private string Label(KernelFd fd) => fd.IsClosed ? "<closed>" : Label(fd.Number);

    private string Label(int fd) => _fds.TryGetValue(fd, out var traced) ? traced.Label : $"{fd}";

    private string Address(ulong address) => _comparable && address != 0 ? "<addr>" : $"0x{address:x}";

    private static string Prot(int prot) => prot == PROT_NONE ? "PROT_NONE" : string.Join('|',
        new[] { (PROT_READ, "PROT_READ"), (PROT_WRITE, "PROT_WRITE"), (PROT_EXEC, "PROT_EXEC") }.Where(p => (prot & p.Item1) != 0).Select(p => p.Item2));

    private static string MapFlags(int flags) => (flags & MAP_SHARED) != 0 ? $"MAP_SHARED|0x{flags & ~MAP_SHARED:x}" : $"MAP_PRIVATE|0x{flags & ~MAP_PRIVATE:x}";

    private static string FallocateMode(int mode) => mode switch
    {
        FALLOC_FL_KEEP_SIZE => "FALLOC_FL_KEEP_SIZE",
        FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE => "FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE",
        _ => $"0x{mode:x}",
    };

    /// <summary>A user pointer argument: NULL, or the address (as <see cref="Address"/> prints it).</summary>
    private string Pointer(ulong pointer) => pointer == 0 ? "NULL" : Address(pointer);

    private static string MempolicyMode(int mode)
    {
        int flags = mode & Mempolicy.MPOL_MODE_FLAGS;
        string name = Mempolicy.ModeName(mode & ~Mempolicy.MPOL_MODE_FLAGS);
        if ((flags & Mempolicy.MPOL_F_STATIC_NODES) != 0) name += "|MPOL_F_STATIC_NODES";
        if ((flags & Mempolicy.MPOL_F_RELATIVE_NODES) != 0) name += "|MPOL_F_RELATIVE_NODES";
        if ((flags & Mempolicy.MPOL_F_NUMA_BALANCING) != 0) name += "|MPOL_F_NUMA_BALANCING";
        return name;
    }

    private static string MbindFlags(uint flags) => flags == 0 ? "0" : string.Join('|',
        new[] { (Mempolicy.MPOL_MF_STRICT, "MPOL_MF_STRICT"), (Mempolicy.MPOL_MF_MOVE, "MPOL_MF_MOVE"), (Mempolicy.MPOL_MF_MOVE_ALL, "MPOL_MF_MOVE_ALL") }
            .Where(f => (flags & f.Item1) != 0).Select(f => f.Item2)
            .Append((flags & ~Mempolicy.MPOL_MF_VALID) != 0 ? $"0x{flags & ~Mempolicy.MPOL_MF_VALID:x}" : null).OfType<string>());

    private static string GetMempolicyFlags(ulong flags) => flags == 0 ? "0" : string.Join('|',
        new[] { (Mempolicy.MPOL_F_NODE, "MPOL_F_NODE"), (Mempolicy.MPOL_F_ADDR, "MPOL_F_ADDR"), (Mempolicy.MPOL_F_MEMS_ALLOWED, "MPOL_F_MEMS_ALLOWED") }
            .Where(f => (flags & f.Item1) != 0).Select(f => f.Item2)
            .Append((flags & ~7UL) != 0 ? $"0x{flags & ~7UL:x}" : null).OfType<string>());

    /// <summary>A descriptor of the inner kernel, its name, and the handle this kernel gave out for it (once adopted).</summary>
    private sealed class TracedFd(KernelFd inner, string label)
    {
        public KernelFd Inner { get; } = inner;

        public string Label { get; } = label;

        public KernelFd? Outer { get; set; }
    }
}
