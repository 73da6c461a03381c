// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// Filling a guest_memfd with write(2) — PROPOSAL: GUEST_MEMFD_FLAG_WRITE of "[PATCH v7 1/2] KVM: guest_memfd: add
/// generic population via write" (unmerged; <see cref="GuestMemfdFlags.Write"/>). The kernel copies whole pages straight
/// into the file's page cache: no host mapping, no page fault per page.
/// </summary>
public sealed partial class GuestMemfd
{
    /// <summary>
    /// pwrite(2) of <paramref name="data"/> at file offset <paramref name="offset"/>. The kernel takes whole pages only:
    /// <paramref name="offset"/> and the length must be page multiples inside the file. It writes page by page and stops
    /// at the first page it refuses: the result is the bytes written, fewer than <c>data.Length</c> when a page after the
    /// first was refused (call again from there for the reason). An empty <paramref name="data"/> returns 0 without a
    /// system call (the kernel would answer EFAULT and still mark the page at <paramref name="offset"/> up to date).
    /// </summary>
    /// <returns>The bytes written (&gt; 0).</returns>
    /// <exception cref="KvmCapabilityException">The kernel's guest_memfd has no write support (ESPIPE: no
    /// GUEST_MEMFD_FLAG_WRITE in KVM_CAP_GUEST_MEMFD_FLAGS).</exception>
    /// <exception cref="KvmException">The first page was refused: ENODEV (the file lacks
    /// <see cref="GuestMemfdFlags.Write"/>), EINVAL (unaligned, beyond the file, or a private page), EEXIST (a
    /// <see cref="GuestMemfdFlags.NoDirectMap"/> page already faulted or written), … — the message says which.</exception>
    public long Write(long offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return 0;
        long rc = Kernel.Pwrite(Handle, data, offset);
        if (KvmCall.IsError(rc)) throw WriteFailure((int)-rc, offset, data.Length);
        return rc;
    }

    /// <summary>
    /// Writes all of <paramref name="data"/> at <paramref name="offset"/> with <see cref="Write"/>, checking first what
    /// the kernel requires (page-aligned offset and length, inside the file) so a mistake names the numbers.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The offset or length is not a page multiple, or the range is
    /// outside the file.</exception>
    /// <exception cref="KvmException">The kernel refused a page (see <see cref="Write"/>).</exception>
    public void WriteAll(long offset, ReadOnlySpan<byte> data)
    {
        CheckWholePages(offset, data.Length);
        long done = 0;
        while (done < data.Length) done += Write(offset + done, data[(int)done..]);
    }

    /// <summary>
    /// Writes an image of any length at page-aligned <paramref name="offset"/>: its whole pages with one write, and a
    /// partial last page through a zero-padded page (the kernel writes whole pages only), so the bytes after the image
    /// up to the page end read as zero.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is not page aligned, or the image (rounded
    /// up to whole pages) does not fit in the file.</exception>
    /// <exception cref="KvmException">The kernel refused a page (see <see cref="Write"/>).</exception>
    public void WriteImage(long offset, ReadOnlySpan<byte> image)
    {
        int ps = PageSize;
        long rounded = ((long)image.Length + ps - 1) / ps * ps;
        CheckWholePages(offset, rounded);
        int whole = image.Length / ps * ps;
        WriteAll(offset, image[..whole]);
        if (whole == image.Length) return;
        byte[] last = new byte[ps];
        image[whole..].CopyTo(last);
        WriteAll(offset + whole, last);
    }

    private void CheckWholePages(long offset, long length)
    {
        long ps = PageSize;
        if (offset < 0 || offset % ps != 0)
            throw new ArgumentOutOfRangeException(nameof(offset), $"guest_memfd write: offset 0x{offset:X} is not a page multiple (page size 0x{ps:X}); the kernel writes whole pages only");
        if (length % ps != 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"guest_memfd write: length 0x{length:X} is not a page multiple (page size 0x{ps:X}); pad the data or use WriteImage");
        if ((ulong)offset + (ulong)length > Size)
            throw new ArgumentOutOfRangeException(nameof(offset), $"guest_memfd write: [0x{offset:X}, +0x{length:X}) ends beyond the 0x{Size:X}-byte file");
    }

    private KvmException WriteFailure(int errno, long offset, int length)
    {
        string request = $"offset=0x{offset:X} length=0x{length:X} (file size 0x{Size:X}, flags {Flags.ToKernelString()})";
        switch ((Errno)errno)
        {
            case Errno.ESPIPE:
                // No FMODE_PWRITE: the kernel predates (or lacks) the write proposal, which sets it on every gmem file.
                return new KvmCapabilityException("pwrite", errno, request,
                    "GUEST_MEMFD_FLAG_WRITE (1 << 3) in KVM_CAP_GUEST_MEMFD_FLAGS", (long)Vm.SupportedGuestMemfdFlags);
            case Errno.ENODEV:
                bool offered = Vm.SupportedGuestMemfdFlags.HasFlag(GuestMemfdFlags.Write);
                return new KvmException("pwrite", errno, request,
                    $"pwrite failed with ENODEV: this guest_memfd was created without GUEST_MEMFD_FLAG_WRITE (flags {Flags.ToKernelString()}); " +
                    (offered
                        ? "the VM offers WRITE: create the file with GuestMemfdFlags.Write"
                        : $"this VM does not offer it (KVM_CAP_GUEST_MEMFD_FLAGS = {Vm.SupportedGuestMemfdFlags.ToKernelString()}): copy through a mapping instead") +
                    $": {request}");
            case Errno.EINVAL:
                return new KvmException("pwrite", errno, request,
                    "pwrite failed with EINVAL: guest_memfd writes whole pages only — offset and length page multiples, inside the file — " +
                    $"and, with in-place conversion, shared pages only: {request}");
            case Errno.EEXIST:
                return new KvmException("pwrite", errno, request,
                    "pwrite failed with EEXIST: the page was already faulted in or written and so removed from the direct map " +
                    $"(NO_DIRECT_MAP); write() fills only fresh pages — punch a hole first to replace it: {request}");
            default:
                return new KvmException("pwrite", errno, request);
        }
    }
}
