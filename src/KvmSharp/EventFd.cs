// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// An eventfd (eventfd2(2)): a 64-bit counter in the kernel that writes add to and reads take. KVM signals one when a
/// guest write matches an ioeventfd (<see cref="Vm.RegisterIoEventFd"/>). Every call goes through the
/// <see cref="IKernel"/> it was created on, so it behaves the same on the real and the emulated kernel. Dispose closes
/// the descriptor; a registration that still uses the counter keeps it alive in the kernel.
/// </summary>
public sealed class EventFd : IDisposable
{
    private EventFd(IKernel kernel, KernelFd handle, EventFdOptions options)
    {
        Kernel = kernel;
        Handle = handle;
        Options = options;
    }

    /// <summary>The kernel the descriptor belongs to.</summary>
    public IKernel Kernel { get; }

    /// <summary>The eventfd descriptor; pass it to raw kernel calls.</summary>
    public KernelFd Handle { get; }

    /// <summary>The flags it was created with.</summary>
    public EventFdOptions Options { get; }

    /// <summary>
    /// eventfd2(<paramref name="initialValue"/>, <paramref name="options"/> | EFD_CLOEXEC) on <paramref name="kernel"/>.
    /// </summary>
    /// <exception cref="KvmException">The kernel refused (EINVAL for an unknown option bit, EMFILE, ENOMEM).</exception>
    public static EventFd Create(IKernel kernel, uint initialValue = 0, EventFdOptions options = EventFdOptions.None)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        long rc = kernel.EventFd(initialValue, (int)options, out var fd);
        KvmCall.Check(rc, "eventfd2", $"initval={initialValue} flags=0x{(int)options:X}");
        return new EventFd(kernel, fd!, options);
    }

    /// <summary>Adds 1 to the counter (write(2) of 1).</summary>
    /// <exception cref="KvmException">EAGAIN: non-blocking and the counter is at 2^64 - 2.</exception>
    public void Signal() => Add(1);

    /// <summary>
    /// Adds <paramref name="value"/> to the counter (write(2) of 8 bytes); a blocking eventfd waits while the sum would
    /// reach 2^64 - 1.
    /// </summary>
    /// <exception cref="KvmException">EINVAL for 2^64 - 1; EAGAIN when non-blocking and the sum would reach it.</exception>
    public void Add(ulong value)
    {
        if (!TryAdd(value)) KvmCall.ThrowKvm(-(long)Errno.EAGAIN, "write(eventfd)", $"value={value}");
    }

    /// <summary>Adds <paramref name="value"/>; false (nothing added) when a non-blocking eventfd answers EAGAIN.</summary>
    /// <exception cref="KvmException">EINVAL for 2^64 - 1, or any error but EAGAIN.</exception>
    public bool TryAdd(ulong value)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        long rc = Kernel.Write(Handle, bytes);
        if (rc == -(long)Errno.EAGAIN) return false;
        KvmCall.Check(rc, "write(eventfd)", $"value={value}");
        return true;
    }

    /// <summary>
    /// Takes the counter (read(2) of 8 bytes): the whole count, or 1 with <see cref="EventFdOptions.Semaphore"/>;
    /// waits while it is 0 unless the eventfd is <see cref="EventFdOptions.NonBlocking"/>.
    /// </summary>
    /// <exception cref="KvmException">EAGAIN: non-blocking and the counter is 0.</exception>
    public ulong Read()
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        KvmCall.Check(Kernel.Read(Handle, bytes), "read(eventfd)", "8 bytes");
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }

    /// <summary>
    /// Takes the counter if it is not 0 (see <see cref="Read"/>); false when it is 0. Needs
    /// <see cref="EventFdOptions.NonBlocking"/>: a blocking eventfd's read would wait.
    /// </summary>
    /// <exception cref="InvalidOperationException">The eventfd is blocking.</exception>
    public bool TryRead(out ulong value)
    {
        if ((Options & EventFdOptions.NonBlocking) == 0)
            throw new InvalidOperationException("TryRead needs an eventfd created with EventFdOptions.NonBlocking: a blocking eventfd's read waits for a signal");
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        long rc = Kernel.Read(Handle, bytes);
        if (rc == -(long)Errno.EAGAIN)
        {
            value = 0;
            return false;
        }
        KvmCall.Check(rc, "read(eventfd)", "8 bytes");
        value = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return true;
    }

    /// <summary>Closes the descriptor (the kernel keeps the counter while an ioeventfd still holds it).</summary>
    public void Dispose() => Handle.Dispose();
}
