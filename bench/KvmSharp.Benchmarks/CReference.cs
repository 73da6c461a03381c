// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Benchmarks;

/// <summary>
/// The C reference (../c-reference/gmem_ref.c, built by this project into libgmemref.so next to the assembly),
/// called in-process so BenchmarkDotNet times it beside the SDK under the same conditions. Every function returns
/// a value &gt;= 0 on success or -errno on failure; <see cref="Check"/> turns a failure into an exception.
/// </summary>
internal static partial class CReference
{
    private const string Library = "gmemref";

    static CReference() => NativeReference.ResolveNextToAssembly(typeof(CReference).Assembly, Library);

    /// <summary>Opens /dev/kvm and creates the VM the C side reuses until <see cref="Close"/>.</summary>
    [LibraryImport(Library, EntryPoint = "gmem_ref_open")]
    internal static partial int Open();

    [LibraryImport(Library, EntryPoint = "gmem_ref_close")]
    internal static partial void Close();

    /// <summary>create gmem (MMAP|INIT_SHARED) → mmap → one byte per 4 KiB page → munmap → close.</summary>
    [LibraryImport(Library, EntryPoint = "gmem_ref_first_touch")]
    internal static partial long FirstTouch(nuint bytes);

    [LibraryImport(Library, EntryPoint = "gmem_ref_warm_setup")]
    internal static partial int WarmSetup(nuint bytes);

    /// <summary>memcpy of the prepared source buffer into the faulted mapping.</summary>
    [LibraryImport(Library, EntryPoint = "gmem_ref_warm_copy")]
    internal static partial long WarmCopy();

    /// <summary>One volatile byte store per 4 KiB page into the faulted mapping (first touch without the faults).</summary>
    [LibraryImport(Library, EntryPoint = "gmem_ref_warm_touch")]
    internal static partial long WarmTouch();

    [LibraryImport(Library, EntryPoint = "gmem_ref_warm_teardown")]
    internal static partial void WarmTeardown();

    internal static long Check(long rc, string what) =>
        rc >= 0 ? rc : throw new InvalidOperationException($"C reference {what} failed: errno {-rc} ({Marshal.GetPInvokeErrorMessage((int)-rc)})");
}
