// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Fuzzing;

/// <summary>What <see cref="OpKind.IoEventFd"/> does (E) and on which of the session's eventfds (U: a slot or no descriptor).</summary>
public static class IoEventFdOps
{
    /// <summary>E: KVM_IOEVENTFD (the DEASSIGN flag is among the drawn flags).</summary>
    public const int IoEventFd = 0;

    /// <summary>E: KVM_IRQFD (flags from D).</summary>
    public const int IrqFd = 1;

    /// <summary>E: read(2) of 8 bytes from the eventfd.</summary>
    public const int Read = 2;

    /// <summary>E: write(2) of B (8 bytes) to the eventfd.</summary>
    public const int Write = 3;

    /// <summary>E: the eventfd closed and made again (a registration keeps the old one's counter).</summary>
    public const int Recreate = 4;

    public const int Calls = 5;

    /// <summary>The session's eventfds; slot <see cref="Slots"/> stands for a number that is no descriptor (EBADF).</summary>
    public const int Slots = 3;

    /// <summary>Mostly slot 0 (so reads see earlier writes and deassigns find their registrations), else 1, 2 or no fd.</summary>
    public static int Slot(ulong u) => (u & 7) switch
    {
        < 5 => 0,
        5 => 1,
        6 => 2,
        _ => Slots,
    };

    internal static string Describe(FuzzOp op, string target)
    {
        var ci = CultureInfo.InvariantCulture;
        string fd = Slot(op.U) == Slots ? "no fd" : $"eventfd {Slot(op.U)}";
        return op.E switch
        {
            IoEventFd => string.Create(ci, $"KVM_IOEVENTFD({target}, addr=0x{op.A:X}, len={(uint)op.C}, {fd}, flags=0x{(uint)op.D:X}, datamatch=0x{op.B:X})"),
            IrqFd => string.Create(ci, $"KVM_IRQFD({target}, {fd}, gsi={op.A}, flags=0x{(uint)op.D:X})"),
            Read => $"read({fd})",
            Write => string.Create(ci, $"write({fd}, {op.B})"),
            _ => $"close+eventfd2({fd})",
        };
    }
}
