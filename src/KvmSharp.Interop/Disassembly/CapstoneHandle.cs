// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Disassembly;

/// <summary>
/// A capstone engine handle (<c>csh</c>, a <c>size_t</c> in capstone 4's capstone.h) from <c>cs_open</c>; releasing it
/// (Dispose or finalizer) calls <c>cs_close</c>. Owned by one <see cref="Capstone"/>, which serialises its use.
/// </summary>
public sealed class CapstoneHandle : SafeHandle
{
    /// <summary>An unopened handle (0, what cs_close leaves behind); <see cref="Capstone"/> sets it from cs_open.</summary>
    public CapstoneHandle()
        : base(invalidHandleValue: 0, ownsHandle: true)
    {
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == 0;

    /// <summary>The <c>csh</c> value; valid only while the handle is open (callers hold a DangerousAddRef).</summary>
    internal nuint Value => (nuint)handle;

    /// <summary>Handles opened and not yet closed by cs_close, in this process (the leak check of the tests).</summary>
    internal static int Live => Volatile.Read(ref s_live);

    private static int s_live;

    internal void Set(nuint value)
    {
        SetHandle((nint)value);
        Interlocked.Increment(ref s_live);
    }

    /// <inheritdoc/>
    protected override unsafe bool ReleaseHandle()
    {
        nuint value = (nuint)handle;
        // SAFETY: value is the csh cs_open returned, closed exactly once (SafeHandle calls ReleaseHandle once);
        // cs_close writes only the local it is given.
        if (CapstoneNative.cs_close(&value) != 0) return false;
        Interlocked.Decrement(ref s_live);
        return true;
    }
}
