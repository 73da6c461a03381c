// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The session's descriptors: the <see cref="KernelFd"/> handle of a number, the kind each open number has, picking a
/// descriptor for a call (mostly one of the wanted kind, sometimes any open, closed, small or absurd number), and the
/// calls that create and destroy them outside ioctl: open(2) of /dev/kvm and friends, close(2) and eventfd2.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>The session's handle of a descriptor number (made once, never closing the number itself).</summary>
    private KernelFd Handle(int number)
    {
        if (!_handles.TryGetValue(number, out var fd))
        {
            fd = new KernelFd(_kernel, number);
            _handles[number] = fd;
        }
        return fd;
    }

    /// <summary>
    /// A descriptor for a call: mostly one of kind <paramref name="want"/> when there is one, else any open or closed
    /// number, a small number or an absurd one.
    /// </summary>
    private int PickFd(FdKind? want = null)
    {
        int r = _rng.Next(100);
        if (want is FdKind k && r < 80)
        {
            var of = _open.Where(p => p.Value == k).Select(p => p.Key).ToList();
            if (of.Count > 0) return of[_rng.Next(of.Count)];
        }
        if (r < 85 && _open.Count > 0) return _open.Keys.ElementAt(_rng.Next(_open.Count));
        if (r < 90 && _closed.Count > 0) return _closed[_rng.Next(_closed.Count)];
        if (r < 96) return _rng.Next(-2, 48);
        return _rng.Next(2) == 0 ? int.MaxValue - _rng.Next(4) : _rng.Next(int.MinValue, 0);
    }

    private FdKind KindOf(int fd) => _open.TryGetValue(fd, out var k) ? k : FdKind.Other;

    /// <summary>Notes a descriptor a successful call installed.</summary>
    private void Opened(int fd, FdKind kind)
    {
        _open[fd] = kind;
        _closed.Remove(fd);
        _expectedFds++;
    }

    private string Open()
    {
        // Now and then an eventfd, for KVM_IOEVENTFD / KVM_IRQFD to take.
        if (_rng.Next(4) == 0) return EventFd();
        string path = _rng.Next(10) switch
        {
            0 => _rng.Next(2) == 0 ? "/dev/null" : "/dev/kvm2",
            // The PSP's device (present on configurations with an SEV VM type): the SEV launch commands' sev_fd.
            1 => "/dev/sev",
            _ => "/dev/kvm",
        };
        Begin($"open({path})");
        long rc = _kernel.Open(path, LinuxConstants.O_RDWR, out var fd);
        if (rc >= 0)
        {
            fd!.SetHandleAsInvalid(); // the session owns the number; Teardown closes everything
            Opened((int)rc, path == "/dev/sev" ? FdKind.Other : FdKind.System);
        }
        return Record($"open({path})", rc);
    }

    private string Close()
    {
        int fd = PickFd();
        Begin($"close({fd})");
        long rc = _kernel.Close(fd);
        if (rc == 0 && _open.Remove(fd))
        {
            _closed.Add(fd);
            _expectedFds--;
        }
        return Record($"close({fd})", rc);
    }

    /// <summary>eventfd2 with mostly valid flags; the session keeps its eventfds non-blocking before it reads or writes them.</summary>
    private string EventFd()
    {
        uint count = _rng.Next(4) == 0 ? (uint)Interesting() : (uint)_rng.Next(3);
        int flags = _rng.Next(8) == 0 ? (int)Interesting() : _rng.Next(2) * LinuxConstants.EFD_SEMAPHORE | _rng.Next(2) * LinuxConstants.EFD_NONBLOCK;
        string what = string.Create(CultureInfo.InvariantCulture, $"eventfd2({count}, 0x{flags:X})");
        Begin(what);
        long rc = _kernel.EventFd(count, flags, out var fd);
        if (rc >= 0)
        {
            fd!.SetHandleAsInvalid(); // the session owns the number; Teardown closes everything
            Opened((int)rc, FdKind.EventFd);
        }
        return Record(what, rc);
    }

    /// <summary>Mostly one of the session's eventfds, else any descriptor <see cref="PickFd"/> gives.</summary>
    private int PickEventFd()
    {
        var eventFds = _open.Where(p => p.Value == FdKind.EventFd).Select(p => p.Key).ToList();
        return eventFds.Count > 0 && _rng.Next(5) != 0 ? eventFds[_rng.Next(eventFds.Count)] : PickFd();
    }
}
