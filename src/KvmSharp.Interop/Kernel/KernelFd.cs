// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Kernel;

/// <summary>
/// A file descriptor owned by one kernel (real or emulated). Closing it (Dispose or finalizer) calls that
/// kernel's close. Pass it, never the raw number, so a descriptor cannot be closed and reused mid-call.
/// </summary>
public sealed class KernelFd : SafeHandle
{
    public KernelFd(IKernel kernel, int fd)
        : base(invalidHandleValue: -1, ownsHandle: true)
    {
        Kernel = kernel;
        SetHandle(fd);
    }

    /// <summary>The kernel this descriptor belongs to.</summary>
    public IKernel Kernel { get; }

    /// <summary>The descriptor number. Valid only while the handle is open.</summary>
    public int Number => (int)handle;

    public override bool IsInvalid
    {
        get
        {
            long h = handle;
            return h < 0 || h > int.MaxValue;
        }
    }

    /// <summary>Holds a reference for the length of a call so a concurrent Dispose cannot close the number.</summary>
    public Lease Borrow() => new(this);

    protected override bool ReleaseHandle() => Kernel.Close((int)handle) == 0;

    public override string ToString() => $"fd {Number} ({Kernel.Name})";

    /// <summary>A reference on an open descriptor, released on Dispose.</summary>
    public readonly ref struct Lease
    {
        private readonly KernelFd _fd;

        internal Lease(KernelFd fd)
        {
            bool added = false;
            fd.DangerousAddRef(ref added);
            _fd = fd;
        }

        public int Number => _fd.Number;

        public void Dispose() => _fd.DangerousRelease();
    }
}
