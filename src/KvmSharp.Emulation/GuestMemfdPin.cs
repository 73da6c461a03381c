// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.GuestMemfd;

namespace KvmSharp.Emulation;

/// <summary>
/// A long-term pin on one guest_memfd page, the emulator's stand-in for pin_user_pages(FOLL_LONGTERM) (the v8
/// conversions selftest uses CONFIG_GUP_TEST). While it is held, converting the page to private fails with EAGAIN
/// and error_offset = the page's offset. Dispose unpins.
/// </summary>
public sealed class GuestMemfdPin : IDisposable
{
    private readonly EmulatedKernel _kernel;
    private readonly GmemInode _inode;
    private bool _released;

    internal GuestMemfdPin(EmulatedKernel kernel, GmemInode inode, ulong index)
    {
        _kernel = kernel;
        _inode = inode;
        PageIndex = index;
    }

    /// <summary>The pinned page's index in the file.</summary>
    public ulong PageIndex { get; }

    /// <summary>Unpins the page; conversions to private may succeed again. Idempotent.</summary>
    public void Dispose()
    {
        lock (_kernel.SyncRoot)
        {
            if (_released) return;
            _released = true;
            _inode.Unpin(PageIndex);
        }
    }
}
