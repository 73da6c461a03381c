// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Cli.Preload;

/// <summary>
/// The managed half of <c>kvmsharp exec</c>: libkvmsharp-preload.so (native/kvmsharp_preload.c), preloaded into an
/// ordinary program, starts .NET in that process on its first open of /dev/kvm and sends every syscall on the
/// descriptors it got from here to these entry points, which answer them with the kernel <see cref="Start"/> chose
/// (the emulated one, or with --kernel linux --trace the real one traced). Each entry point returns what the syscall
/// returns: a value &gt;= 0, or -errno.
/// Arguments are the program's own addresses: they are read and written with process_vm_readv/writev
/// (<see cref="HostMemory"/>), so a bad pointer is EFAULT, as from the kernel, never a crash.
/// </summary>
public static partial class PreloadBridge
{
    /// <summary>The environment variable that carries the kernel options of the <c>exec</c> command, one per line.</summary>
    public const string KernelOptionsVariable = "KVMSHARP_PRELOAD_KERNEL";

    // Linux tid → the id the emulated kernel knows the thread by, for every thread that has entered KVM_RUN.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, int> RunningThreads = new();

    private static IKernel? s_kernel;
    private static EmulatedKernel? s_emulated;

    // --trace's kernel keeps one handle per descriptor (closed by its close(2)); the emulated kernel hands out a new
    // one per Adopt, which must not close the number when it is collected.
    private static bool s_kernelKeepsHandles;

    /// <summary>
    /// Creates the kernel from <see cref="KernelOptionsVariable"/>: 0 for the emulated kernel, 1 for the real one
    /// traced (its descriptors are the program's own), or -EINVAL with one line on stderr.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_start")]
    public static long Start() => Guard("start", () =>
    {
        string[] args = (Environment.GetEnvironmentVariable(KernelOptionsVariable) ?? "")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        try
        {
            (s_kernel, s_emulated) = PreloadKernel.Create(args);
            s_kernelKeepsHandles = s_kernel is Kernel.Tracing.TracingKernel;
            return s_emulated is null ? 1 : 0;
        }
        catch (Exception e) when (e is UsageException or UnavailableException or ArgumentException)
        {
            Console.Error.WriteLine($"kvmsharp exec: {e.Message}");
            return -(long)Errno.EINVAL;
        }
    });

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_open")]
    public static long Open(nint path, int flags) => Guard("open", () =>
    {
        long rc = Kernel.Open(Marshal.PtrToStringUTF8(path) ?? "", flags, out var fd);
        // The number stays open in the kernel's table; the program closes it with close(2).
        if (!s_kernelKeepsHandles) fd?.SetHandleAsInvalid();
        return rc;
    });

    /// <summary>
    /// eventfd(2) once the bridge runs: an emulated eventfd, so the program can hand it to KVM_IRQFD and KVM_IOEVENTFD;
    /// its real descriptor polls as it does (IFdNumberSource.MirrorReadable).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_eventfd")]
    public static long EventFd(uint initialValue, int flags) => Guard("eventfd", () =>
    {
        long rc = Kernel.EventFd(initialValue, flags, out var fd);
        if (!s_kernelKeepsHandles) fd?.SetHandleAsInvalid();
        return rc;
    });

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_close")]
    public static long Close(int fd) => Guard("close", () => Kernel.Close(fd));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_ioctl")]
    public static long Ioctl(int fd, nuint request, nuint arg) => Guard("ioctl", () => WithFd(fd, f =>
    {
        bool run = (uint)request == Abi.KvmIoctls.KVM_RUN;
        try
        {
            return IoctlArguments.Call(Kernel, f, (uint)request, arg, realKernel: s_emulated is null, (r, argument) =>
            {
                if (s_emulated is { } emulated) ProcessMemory.SlotSet(emulated, r, argument);
            });
        }
        finally
        {
            if (run) s_emulated?.EndExpectedRun();
        }
    }));

    /// <summary>
    /// Called by the library just before it enters KVM_RUN on vCPU <paramref name="fd"/>: from now on a kick for this
    /// thread (<see cref="Kick"/>) is a signal pending at entry, which the run answers with EINTR, even if it comes
    /// before the run is inside the emulated kernel (<see cref="EmulatedKernel.ExpectRun"/>). Returns 1 and the vCPU's
    /// KVM_SET_SIGNAL_MASK mask at <paramref name="mask"/> when it has one — the library applies it to the thread for
    /// the run, as kvm_sigset_activate does —, 0 when it has none, or -errno (the run then fails the same way).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_prepare_run")]
    public static long PrepareRun(int fd, nint mask) => Guard("prepare run", () =>
    {
        // The library's own variable on its stack, not a program pointer.
        Marshal.WriteInt64(mask, 0);
        if (s_emulated is not { } emulated) return 0;
        // The emulated kernel knows a thread by its .NET id; a kick names the thread's Linux tid.
        RunningThreads[LinuxKernel.Instance.GetTid()] = emulated.GetTid();
        emulated.ExpectRun();
        var f = emulated.Adopt(fd);
        try
        {
            long rc = emulated.VcpuRunSignalMask(f, out ulong bits);
            Marshal.WriteInt64(mask, (long)bits);
            return rc;
        }
        finally
        {
            f.SetHandleAsInvalid();
        }
    });

    /// <summary>
    /// A signal the program handles reached thread <paramref name="tid"/> while it was in KVM_RUN (or about to enter
    /// it): as the real kernel's signal_pending check does, that KVM_RUN returns EINTR (EmulatedKernel.KickThread). The
    /// library keeps the signal and delivers it again once the run returned, where the kernel would have.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_kick")]
    public static long Kick(int tid) => Guard("kick", () =>
        RunningThreads.TryGetValue(tid, out int thread) ? Kernel.KickThread(thread) : 0);

    /// <summary>The program is about to unmap, remap or reprotect a range the library watches (see <see cref="ProcessMemory"/>).</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_forget")]
    public static long Forget(nuint address, nuint length) => Guard("forget", () =>
    {
        s_emulated?.ForgetProcessMemory((nint)address, length);
        return 0;
    });

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_mmap")]
    public static long Mmap(nuint address, nuint length, int prot, int flags, int fd, long offset) => Guard("mmap", () =>
        WithFd(fd, f =>
        {
            long rc = Kernel.Mmap((nint)address, length, prot, flags, f, offset, out nint mapped);
            return rc < 0 ? rc : mapped;
        }));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_munmap")]
    public static long Munmap(nuint address, nuint length) => Guard("munmap", () => Kernel.Munmap((nint)address, length));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_madvise")]
    public static long Madvise(nuint address, nuint length, int advice) => Guard("madvise", () => Kernel.Madvise((nint)address, length, advice));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_fallocate")]
    public static long Fallocate(int fd, int mode, long offset, long length) => Guard("fallocate", () => WithFd(fd, f => Kernel.Fallocate(f, mode, offset, length)));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_read")]
    public static long Read(int fd, nuint buffer, nuint count) => Guard("read", () => WithFd(fd, f => UserBuffers.Read(buffer, count, span => Kernel.Read(f, span))));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_write")]
    public static long Write(int fd, nuint buffer, nuint count) => Guard("write", () => WithFd(fd, f => UserBuffers.Write(buffer, count, span => Kernel.Write(f, span))));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_pread")]
    public static long Pread(int fd, nuint buffer, nuint count, long offset) => Guard("pread", () => WithFd(fd, f => UserBuffers.Read(buffer, count, span => Kernel.Pread(f, span, offset))));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_pwrite")]
    public static long Pwrite(int fd, nuint buffer, nuint count, long offset) => Guard("pwrite", () => WithFd(fd, f => UserBuffers.Write(buffer, count, span => Kernel.Pwrite(f, span, offset))));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_lseek")]
    public static long Lseek(int fd, long offset, int whence) => Guard("lseek", () => WithFd(fd, f => Kernel.Lseek(f, offset, whence)));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_fstat")]
    public static long Fstat(int fd, nuint statBuffer) => Guard("fstat", () => WithFd(fd, f =>
    {
        long rc = Kernel.Fstat(f, out var stat);
        return rc < 0 ? rc : UserBuffers.PutStat(statBuffer, stat);
    }));

    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_ftruncate")]
    public static long Ftruncate(int fd, long length) => Guard("ftruncate", () => WithFd(fd, f => Kernel.Ftruncate(f, length)));

    /// <summary>
    /// The program duplicated emulated descriptor <paramref name="oldFd"/> as <paramref name="newFd"/> (dup, dup2,
    /// dup3, F_DUPFD: the library made the real copy first); with <paramref name="oldFd"/> -1, it put a file of its own
    /// on <paramref name="newFd"/> (dup2 of a real descriptor onto an emulated one). Under --kernel linux --trace the
    /// same calls keep the trace following the real kernel's descriptors. 0 or -errno.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_dup")]
    public static long Dup(int oldFd, int newFd) => Guard("dup", () =>
    {
        if (s_emulated is { } emulated) return oldFd < 0 ? emulated.ForgetLentNumber(newFd) : emulated.DuplicateLentNumber(oldFd, newFd);
        // The real kernel, traced: it made the copy; the trace follows it.
        if (s_kernel is not Kernel.Tracing.TracingKernel tracing) return -(long)Errno.EBADF;
        if (oldFd < 0) tracing.Replaced(newFd);
        else tracing.Duplicated(oldFd, newFd);
        return 0;
    });

    /// <summary>
    /// Called from the preload library's SIGSEGV handler for an access fault in a mapping made here: 1 when the kernel
    /// would answer that access with SIGBUS (a private guest_memfd page, which <see cref="EmulatedKernel.ProtectsPrivatePages"/>
    /// made inaccessible), so the library sends SIGBUS instead; 0 for a fault that stays a SIGSEGV.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvmsharp_bridge_host_fault")]
    public static long HostFault(nuint address) => Guard("host fault", () =>
        s_emulated is { } emulated && emulated.HostAccessRaisesSigbus((nint)address) ? 1 : 0);

    private static IKernel Kernel => s_kernel ?? throw new InvalidOperationException("the bridge was not started");

    /// <summary>
    /// A descriptor object for one call on a number the program owns: it must not close the number when it is
    /// collected (the program closes it with close(2)), so it is marked invalid afterwards.
    /// </summary>
    private static long WithFd(int number, Func<KernelFd, long> call)
    {
        var fd = Kernel.Adopt(number);
        try
        {
            return call(fd);
        }
        finally
        {
            if (!s_kernelKeepsHandles) fd.SetHandleAsInvalid();
        }
    }

    /// <summary>
    /// An exception must not unwind into C (the process would abort): it becomes one line on stderr and -EIO, the
    /// errno of "the kernel failed", so the program sees an error it can report.
    /// </summary>
    private static long Guard(string call, Func<long> body)
    {
        try
        {
            return body();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"kvmsharp exec: internal error in {call}: {e.GetType().Name}: {e.Message}");
            return -(long)Errno.EIO;
        }
    }
}
