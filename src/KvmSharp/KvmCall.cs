// SPDX-License-Identifier: MIT
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>Turns raw boundary results into values or typed exceptions; keeps throw sites off the hot paths.</summary>
internal static class KvmCall
{
    /// <summary>Returns <paramref name="rc"/> when it is a success, else throws a <see cref="KvmException"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Check(long rc, string operation, string request)
    {
        if (IsError(rc)) ThrowKvm(rc, operation, request);
        return rc;
    }

    /// <summary>
    /// <see cref="Check(long, string, string)"/> for an interpolated request text, which is formatted only on failure.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Check(long rc, string operation, [InterpolatedStringHandlerArgument(nameof(rc))] ref RequestText request)
    {
        if (IsError(rc)) ThrowKvm(rc, operation, request.ToStringAndClear());
        return rc;
    }

    /// <summary>Results in [-4095, -1] are -errno; anything else (even a negative capability value) is data.</summary>
    public static bool IsError(long rc) => rc < 0 && rc >= -LinuxConstants.MAX_ERRNO;

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowKvm(long rc, string operation, string request) =>
        throw new KvmException(operation, (int)-rc, request);

    /// <summary>The bytes of one uAPI struct, for <see cref="IKernel.Ioctl(KernelFd, uint, Span{byte})"/>.</summary>
    public static Span<byte> Bytes<T>(ref T value) where T : unmanaged =>
        MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1));
}
