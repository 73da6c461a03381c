// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The emulator's public test hooks, called like any other operation: pinning a guest_memfd page (and dropping pins,
/// sometimes twice), the host-access verdict of a range and the zap count of a host mapping.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>The emulator's public test hooks with random arguments.</summary>
    private string Hooks() => _rng.Next(4) switch
    {
        0 => PinGuestMemfdPage(),
        1 => Unpin(),
        2 => CheckHostAccess(),
        _ => HostMappingZapCount(),
    };

    /// <summary>EmulatedKernel.PinGuestMemfdPage on a (mostly) guest_memfd at a page offset; a pin is kept until unpinned or teardown.</summary>
    private string PinGuestMemfdPage()
    {
        int fd = PickFd(FdKind.Gmem);
        ulong offset = _rng.Next(4) == 0 ? Interesting() : Ps * (ulong)_rng.Next(0, 16);
        string what = string.Create(CultureInfo.InvariantCulture, $"PinGuestMemfdPage({fd}, 0x{offset:X})");
        Begin(what);
        long rc = _kernel.PinGuestMemfdPage(Handle(fd), offset, out var pin);
        if (pin is not null) _pins.Add(pin);
        return Record(what, rc);
    }

    /// <summary>Drops one of the session's pins; a quarter of them stay listed, so a second Dispose runs later.</summary>
    private string Unpin()
    {
        if (_pins.Count == 0) return Record("unpin (none)", 0);
        int i = _rng.Next(_pins.Count);
        Begin("unpin");
        _pins[i].Dispose();
        if (_rng.Next(4) != 0) _pins.RemoveAt(i); // else: a second Dispose later must be harmless
        return Record("unpin", 0);
    }

    /// <summary>EmulatedKernel.CheckHostAccess of a range starting at one of the session's mappings (or anywhere).</summary>
    private string CheckHostAccess()
    {
        nint address = _mappings.Count > 0 && _rng.Next(4) != 0 ? _mappings[_rng.Next(_mappings.Count)].Start : (nint)(long)Interesting();
        ulong length = _rng.Next(4) == 0 ? Interesting() : Ps * (ulong)_rng.Next(0, 4);
        Begin($"CheckHostAccess(0x{address:X}, 0x{length:X})");
        // Bound the walk: the verdict is computed page by page.
        if (length > 1UL << 30) length = (ulong)_rng.Next(0, 1 << 20);
        var v = _kernel.CheckHostAccess(address, length);
        return Record($"CheckHostAccess(0x{address:X}, 0x{length:X}) -> {v?.ToString() ?? "ok"}", 0);
    }

    /// <summary>EmulatedKernel.HostMappingZapCount of one of the session's mappings (or any address).</summary>
    private string HostMappingZapCount()
    {
        nint address = _mappings.Count > 0 && _rng.Next(4) != 0 ? _mappings[_rng.Next(_mappings.Count)].Start : (nint)(long)Interesting();
        Begin($"HostMappingZapCount(0x{address:X})");
        return Record($"HostMappingZapCount(0x{address:X})", _kernel.HostMappingZapCount(address));
    }
}
