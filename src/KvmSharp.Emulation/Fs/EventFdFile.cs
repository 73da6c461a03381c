// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Fs;

/// <summary>
/// An eventfd (fs/eventfd.c eventfd_fops on the shared anon inode "[eventfd]"): read_iter/write of the 8-byte counter,
/// llseek = noop_llseek, no ioctl, mmap or fallocate (the VFS answers: ENOTTY, ENODEV, ENODEV). Probed on this host:
/// fstat gives the VM file's anon inode (dev 16, ino 1038, mode 0600, size 0).
/// </summary>
internal sealed class EventFdFile : KernelFile
{
    private volatile bool _nonBlocking;

    public EventFdFile(EventFdCtx ctx, bool nonBlocking)
    {
        Ctx = ctx;
        _nonBlocking = nonBlocking;
    }

    /// <summary>file->private_data.</summary>
    public EventFdCtx Ctx { get; }

    public override uint Mode => 0x180;

    public override ulong Device => KvmVmFile.AnonInodeFsDevice;

    public override ulong Inode => KvmVmFile.AnonInodeIno;

    public override bool HasNoopLlseek => true;

    /// <summary>O_NONBLOCK in f_flags (EFD_NONBLOCK at creation, FIONBIO later).</summary>
    public override bool NonBlocking
    {
        get => _nonBlocking;
        set => _nonBlocking = value;
    }

    /// <summary>eventfd_read; may block (the caller holds a file reference, not the kernel lock).</summary>
    public long Read(Span<byte> buffer) => Ctx.Read(buffer, _nonBlocking);

    /// <summary>eventfd_write; may block like <see cref="Read"/>.</summary>
    public long Write(ReadOnlySpan<byte> buffer) => Ctx.Write(buffer, _nonBlocking);

    /// <summary>eventfd_release: eventfd_ctx_put (a kernel user's reference keeps the context).</summary>
    protected override void OnRelease() => Ctx.Put();

    /// <summary>
    /// fs/eventfd.c do_eventfd: "if (flags &amp; ~EFD_FLAGS_SET) return -EINVAL" (EFD_SEMAPHORE | EFD_NONBLOCK |
    /// EFD_CLOEXEC), then get_unused_fd_flags (EMFILE) and the file; the counter starts at the unsigned int count.
    /// </summary>
    public static long Create(EmulatedKernel kernel, uint count, int flags)
    {
        const int EfdFlagsSet = LinuxConstants.EFD_SEMAPHORE | LinuxConstants.EFD_NONBLOCK | LinuxConstants.EFD_CLOEXEC;
        if ((flags & ~EfdFlagsSet) != 0) return Err.EINVAL;
        if (!kernel.HasFdRoom) return Err.EMFILE;
        var ctx = new EventFdCtx(kernel, count, flags);
        return kernel.InstallFile(new EventFdFile(ctx, (flags & LinuxConstants.EFD_NONBLOCK) != 0), (flags & LinuxConstants.EFD_CLOEXEC) != 0);
    }

    /// <summary>
    /// eventfd_ctx_fdget: fdget (no file → EBADF), eventfd_ctx_fileget ("if (file-&gt;f_op != &amp;eventfd_fops)
    /// return ERR_PTR(-EINVAL)"), kref_get. Returns 0 and the context with a reference the caller must put.
    /// </summary>
    public static long CtxFdget(EmulatedKernel kernel, int fd, out EventFdCtx? ctx)
    {
        ctx = null;
        if (fd < 0) return Err.EBADF;
        var file = kernel.Fget((uint)fd);
        if (file is null) return Err.EBADF;
        if (file is not EventFdFile e) return Err.EINVAL;
        e.Ctx.Get();
        ctx = e.Ctx;
        return 0;
    }
}
