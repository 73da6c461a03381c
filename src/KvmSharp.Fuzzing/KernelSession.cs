// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// One kernel's side of a fuzz run: applies ops, owns every descriptor and mapping they create (all closed on
/// Dispose) and describes each result as text that is compared across kernels. Descriptor numbers differ between
/// kernels, so results never contain them.
/// </summary>
public sealed partial class KernelSession : IDisposable
{
    /// <summary>A descriptor number no process has open: stands in for a closed or missing handle.</summary>
    private const int NoSuchFd = 0x7fff0000;

    private readonly IKernel _kernel;
    private readonly Dictionary<int, KernelFd> _fds = [];
    private readonly Dictionary<int, GmemInfo> _gmems = [];
    private readonly Dictionary<int, (MappedRegion Region, GmemInfo Gmem, ulong Offset)> _mappings = [];
    private static int PageSize => Environment.SystemPageSize;

    public KernelSession(IKernel kernel) => _kernel = kernel;

    private sealed record GmemInfo(ulong Size, ulong Flags);

    /// <summary>Applies <paramref name="op"/>; returns what happened, e.g. "ok", "EINVAL", "value 3", "read 0xaa".</summary>
    public string Apply(FuzzOp op)
    {
        try
        {
            return ApplyCore(op);
        }
#pragma warning disable CA1031 // an exception is an outcome to compare (and a bug when the kernel is the emulator)
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return $"exception {ex.GetType().Name}: {ex.Message}";
        }
    }

    private string ApplyCore(FuzzOp op)
    {
        switch (op.Kind)
        {
            case OpKind.OpenKvm:
                return Adopt(op.Result, _kernel.Open("/dev/kvm", LinuxConstants.O_RDWR, out var sys), sys);
            case OpKind.CreateVm:
                return AdoptIoctl(op.Result, Fd(op.Target), KvmIoctls.KVM_CREATE_VM, op.A);
            case OpKind.CheckExtension:
                return Describe(_kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_CHECK_EXTENSION, op.A));
            case OpKind.CreateGmem:
            {
                var args = new kvm_create_guest_memfd { size = op.A, flags = op.B };
                long rc = _kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_CREATE_GUEST_MEMFD, Bytes(ref args));
                if (rc >= 0) _gmems[op.Result] = new GmemInfo(op.A, op.B);
                return Adopt(op.Result, rc, rc >= 0 ? _kernel.Adopt((int)rc) : null);
            }
            case OpKind.Fallocate:
                return Describe(_kernel.Fallocate(Fd(op.Target), op.E, (long)op.A, (long)op.B));
            case OpKind.SetRegion2:
            {
                var region = new kvm_userspace_memory_region2
                {
                    slot = (uint)op.E, flags = (uint)op.D, guest_phys_addr = op.A, memory_size = op.B,
                    guest_memfd_offset = op.C, guest_memfd = (uint)RawFd(op.Other), userspace_addr = op.U,
                };
                return Describe(_kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Bytes(ref region)));
            }
            case OpKind.Mmap:
            {
                int flags = op.E == 0 ? LinuxConstants.MAP_SHARED : LinuxConstants.MAP_PRIVATE;
                long rc = MappedRegion.Map(_kernel, Fd(op.Target), op.A, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, flags, (long)op.B, out var region);
                if (rc == 0) _mappings[op.Result] = (region!, _gmems[op.Target], op.B);
                return Describe(rc);
            }
            case OpKind.Touch:
                return Touch(op);
            case OpKind.Munmap:
                if (!_mappings.Remove(op.Target, out var m)) return "no mapping";
                m.Region.Dispose();
                return "ok";
            case OpKind.Close:
                if (!_fds.Remove(op.Target, out var fd)) return "no handle";
                fd.Dispose();
                return "ok";
            case OpKind.Fstat:
            {
                long rc = _kernel.Fstat(Fd(op.Target), out var st);
                return rc < 0 ? Describe(rc) : string.Create(CultureInfo.InvariantCulture, $"size={st.Size} blksize={st.BlockSize} blocks={st.Blocks} mode=0x{st.Mode & LinuxConstants.S_IFMT:X}");
            }
            case OpKind.FileIo:
                return FileIo(op);
            case OpKind.SetAttributes:
            {
                var args = new kvm_memory_attributes { address = op.A, size = op.B, attributes = op.C, flags = op.D };
                return Describe(_kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, Bytes(ref args)));
            }
            case OpKind.SetAttributes2:
            {
                var args = new kvm_memory_attributes2 { offset = op.A, size = op.B, attributes = op.C, flags = op.D };
                long rc = _kernel.Ioctl(Fd(op.Target), KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, Bytes(ref args));
                return rc < 0 ? $"{Describe(rc)} error_offset=0x{args.error_offset:X}" : Describe(rc);
            }
            default:
                return ApplyNewerOp(op);
        }
    }

    private string Touch(FuzzOp op)
    {
        if (!_mappings.TryGetValue(op.Target, out var m)) return "no mapping";
        if (op.A >= m.Region.Length) return "outside mapping";
        ulong fileOffset = m.Offset + op.A;
        // The host would take SIGBUS here (kvm_gmem_fault_user_mapping): refuse, as the SDK does.
        if (fileOffset / (ulong)PageSize * (ulong)PageSize >= m.Gmem.Size) return "refused: beyond EOF";
        if ((m.Gmem.Flags & KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) == 0) return "refused: private";
        var span = m.Region.GetSpan(op.A, 1);
        if (op.C != 0)
        {
            span[0] = (byte)op.B;
            return "ok";
        }
        return $"read 0x{span[0]:X2}";
    }

    private string FileIo(FuzzOp op)
    {
        var fd = Fd(op.Target);
        byte[] buf = new byte[Math.Min(op.A, 64UL)];
        long rc = op.E switch
        {
            0 => _kernel.Read(fd, buf),
            1 => _kernel.Write(fd, buf),
            2 => _kernel.Pread(fd, buf, 0),
            3 => _kernel.Pwrite(fd, buf, 0),
            4 => _kernel.Lseek(fd, (long)op.A, LinuxConstants.SEEK_SET),
            _ => _kernel.Ftruncate(fd, (long)op.A),
        };
        return Describe(rc);
    }

    private string AdoptIoctl(int id, KernelFd target, uint request, ulong arg)
    {
        long rc = _kernel.Ioctl(target, request, arg);
        return Adopt(id, rc, rc >= 0 ? _kernel.Adopt((int)rc) : null);
    }

    private string Adopt(int id, long rc, KernelFd? fd)
    {
        if (rc < 0) return Describe(rc);
        _fds[id] = fd!;
        return "ok fd";
    }

    /// <summary>The handle's descriptor, or a closed one (the kernel answers EBADF) when it is gone.</summary>
    private KernelFd Fd(int id) => _fds.TryGetValue(id, out var fd) ? fd : ClosedFd;

    private int RawFd(int id) => _fds.TryGetValue(id, out var fd) ? fd.Number : NoSuchFd;

    private KernelFd ClosedFd
    {
        get
        {
            var fd = new KernelFd(_kernel, -1);
            fd.SetHandleAsInvalid();
            return fd;
        }
    }

    private static string Describe(long rc) =>
        rc < 0 && rc >= -LinuxConstants.MAX_ERRNO ? ErrnoInfo.NameOf((int)-rc) : rc == 0 ? "ok" : "value " + rc.ToString(CultureInfo.InvariantCulture);

    private static Span<byte> Bytes<T>(ref T value) where T : unmanaged => MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1));

    public void Dispose()
    {
        foreach (var m in _mappings.Values) m.Region.Dispose();
        _mappings.Clear();
        foreach (var run in _runPages.Values) run.Dispose();
        _runPages.Clear();
        // Children before parents: mappings, then guest_memfds and VMs in reverse creation order.
        foreach (var id in _fds.Keys.OrderDescending().ToList()) _fds[id].Dispose();
        _fds.Clear();
        _scratch?.Dispose();
        _scratch = null;
        _numaPages?.Dispose();
        _numaPages = null;
        DisposeDevices();
        DisposeEventFds();
    }
}
