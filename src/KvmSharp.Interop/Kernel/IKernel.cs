// SPDX-License-Identifier: MIT
namespace KvmSharp.Kernel;

/// <summary>
/// The syscall boundary. Two kernels stand behind it: <see cref="LinuxKernel"/> (real syscalls on /dev/kvm) and the
/// emulated kernel. Every call returns the raw syscall result: a value &gt;= 0 on success, or <c>-errno</c>
/// (in [-4095, -1]) on failure; it never throws for an error the kernel would report. Ioctl arguments are the
/// kernel's binary structs as bytes, so a layout mistake fails on both kernels alike.
/// </summary>
public interface IKernel
{
    /// <summary>A short name for messages ("linux", "emulated").</summary>
    string Name { get; }

    /// <summary>open(2). On success <paramref name="fd"/> owns the new descriptor.</summary>
    long Open(string path, int flags, out KernelFd? fd);

    /// <summary>Wraps a descriptor a call returned (KVM_CREATE_VM, KVM_CREATE_VCPU, KVM_CREATE_GUEST_MEMFD).</summary>
    KernelFd Adopt(int fd);

    /// <summary>close(2). Called by <see cref="KernelFd"/> when it is released; not for direct use.</summary>
    long Close(int fd);

    /// <summary>ioctl(2) whose argument is a pointer to <paramref name="arg"/>; in/out structs are updated in place.</summary>
    long Ioctl(KernelFd fd, uint request, Span<byte> arg);

    /// <summary>ioctl(2) whose argument is an integer (KVM_CHECK_EXTENSION, KVM_CREATE_VM …).</summary>
    long Ioctl(KernelFd fd, uint request, ulong arg);

    /// <summary>mmap(2) of <paramref name="fd"/> (or anonymous memory when null).</summary>
    long Mmap(nint address, ulong length, int prot, int flags, KernelFd? fd, long offset, out nint mapped);

    long Munmap(nint address, ulong length);

    long Fallocate(KernelFd fd, int mode, long offset, long length);

    long Read(KernelFd fd, Span<byte> buffer);

    long Write(KernelFd fd, ReadOnlySpan<byte> buffer);

    long Pread(KernelFd fd, Span<byte> buffer, long offset);

    long Pwrite(KernelFd fd, ReadOnlySpan<byte> buffer, long offset);

    long Lseek(KernelFd fd, long offset, int whence);

    long Fstat(KernelFd fd, out KernelStat stat);

    long Ftruncate(KernelFd fd, long length);

    /// <summary>
    /// eventfd2(2): a new eventfd whose counter starts at <paramref name="initialValue"/>; <paramref name="flags"/> are
    /// EFD_SEMAPHORE, EFD_NONBLOCK, EFD_CLOEXEC (any other bit: -EINVAL). On success <paramref name="fd"/> owns the
    /// new descriptor; its counter is read and written (8 bytes) through <see cref="Read"/> and <see cref="Write"/>.
    /// </summary>
    long EventFd(uint initialValue, int flags, out KernelFd? fd);

    /// <summary>madvise(2) on a range this kernel mapped (MADV_HUGEPAGE, MADV_COLLAPSE, MADV_DONTNEED …).</summary>
    long Madvise(nint address, ulong length, int advice) => -(long)Errno.ENOSYS;

    /// <summary>
    /// mincore(2): one byte per page of [<paramref name="address"/>, +<paramref name="length"/>) into
    /// <paramref name="vector"/>, bit 0 set when the page is resident (for a file mapping such as guest_memfd: in the
    /// file's page cache, mapped here or not). A vector shorter than the range's page count is -EFAULT.
    /// </summary>
    long Mincore(nint address, ulong length, Span<byte> vector) => -(long)Errno.ENOSYS;

    /// <summary>
    /// mbind(2): sets the NUMA memory policy <paramref name="mode"/> (MPOL_*, with MPOL_F_* mode flags) on
    /// [<paramref name="address"/>, +<paramref name="length"/>). <paramref name="nodemask"/> is the user address of a
    /// bitmap of <paramref name="maxnode"/> - 1 usable bits (0 = NULL), read by the kernel as mm/mempolicy.c get_nodes
    /// does; <paramref name="flags"/> are MPOL_MF_*. Argument order and errnos are the syscall's.
    /// </summary>
    long Mbind(nint address, ulong length, int mode, ulong nodemask, ulong maxnode, uint flags) => -(long)Errno.ENOSYS;

    /// <summary>
    /// get_mempolicy(2): writes the policy (an <c>int</c>) at user address <paramref name="policy"/> and the node mask
    /// at <paramref name="nodemask"/> (each 0 = NULL: not written), of the VMA at <paramref name="address"/> with
    /// MPOL_F_ADDR, or of the task; MPOL_F_NODE|MPOL_F_ADDR reports the node of the page at <paramref name="address"/>.
    /// </summary>
    long GetMempolicy(ulong policy, ulong nodemask, ulong maxnode, nint address, ulong flags) => -(long)Errno.ENOSYS;

    /// <summary>
    /// move_pages(2) in query mode (nodes = NULL): for each of <paramref name="count"/> user pointers in the array at
    /// user address <paramref name="pages"/>, the node its page is on, or -errno (-ENOENT: not present, -EFAULT: no
    /// VMA or the zero page), into the <c>int</c> array at <paramref name="status"/>. <paramref name="pid"/> 0 is this
    /// process; <paramref name="flags"/> MPOL_MF_MOVE / MPOL_MF_MOVE_ALL.
    /// </summary>
    long MovePages(int pid, ulong count, ulong pages, ulong status, int flags) => -(long)Errno.ENOSYS;

    /// <summary>gettid(2): the calling thread's id, as the kernel knows it.</summary>
    int GetTid() => Environment.CurrentManagedThreadId;

    /// <summary>
    /// Interrupts the thread <paramref name="tid"/> (tgkill(2) with the SDK's vCPU kick signal, whose handler does
    /// nothing): a KVM_RUN in progress on that thread returns EINTR. Used with kvm_run.immediate_exit to stop a
    /// running vCPU from another thread.
    /// </summary>
    long KickThread(int tid) => -(long)Errno.ENOSYS;

    /// <summary>
    /// The numbers of unmerged uAPI this kernel speaks (KVM_SET_MEMORY_ATTRIBUTES2, KVM_CAP_GUEST_MEMFD_FLAGS_HI …),
    /// when it knows them (an emulated kernel does, from its configuration); null when it cannot say (a real kernel).
    /// <c>Kvm.Open</c> takes them when not given others, so a caller need not pass them by hand.
    /// </summary>
    Abi.UapiProposals? Proposals => null;
}
