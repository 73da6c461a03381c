// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// The C reference (../c-reference-vmm/vmm_ref.c, built into libvmmref.so next to this assembly), called in-process.
/// Functions return &gt;= 0 on success or -errno (or -100000 - reason for an unexpected guest ending).
/// </summary>
internal static unsafe partial class CReferenceVmm
{
    private const string Library = "vmmref";

    static CReferenceVmm() => NativeReference.ResolveNextToAssembly(typeof(CReferenceVmm).Assembly, Library);

    [LibraryImport(Library, EntryPoint = "vmm_ref_open")]
    internal static partial int Open();

    [LibraryImport(Library, EntryPoint = "vmm_ref_close")]
    internal static partial void Close();

    /// <summary>KVM_CREATE_VM, guest_memfd, mmap, SET_USER_MEMORY_REGION2, CREATE_VCPU + kvm_run mmap, then all closed.</summary>
    [LibraryImport(Library, EntryPoint = "vmm_ref_setup_teardown")]
    internal static partial long SetupTeardown(ulong memorySize);

    [LibraryImport(Library, EntryPoint = "vmm_ref_vm_create")]
    private static partial long VmCreate(byte* code, ulong length, byte* trampoline, ulong trampolineLength, ulong memorySize);

    [LibraryImport(Library, EntryPoint = "vmm_ref_vm_call")]
    internal static partial long VmCall(ulong entry, ulong arg0, ulong arg1);

    /// <summary>Probe: n KVM_RUNs with immediate_exit set (each returns EINTR without entering the guest).</summary>
    [LibraryImport(Library, EntryPoint = "vmm_ref_vm_eintr")]
    internal static partial long VmEintr(ulong n);

    [LibraryImport(Library, EntryPoint = "vmm_ref_vm_destroy")]
    internal static partial void VmDestroy();

    [LibraryImport(Library, EntryPoint = "vmm_ref_create_call_destroy")]
    private static partial long CreateCallDestroy(byte* code, ulong length, byte* trampoline, ulong trampolineLength,
        ulong memorySize, ulong entry, ulong arg0, ulong arg1);

    internal static long VmCreate(ReadOnlySpan<byte> code, ReadOnlySpan<byte> trampoline, ulong memorySize)
    {
        // SAFETY: both spans are pinned for the duration of the call and the C side reads exactly length bytes
        // of each (copied into guest memory) and keeps no pointer after it returns.
        fixed (byte* c = code)
        fixed (byte* t = trampoline)
            return VmCreate(c, (ulong)code.Length, t, (ulong)trampoline.Length, memorySize);
    }

    internal static long CreateCallDestroy(ReadOnlySpan<byte> code, ReadOnlySpan<byte> trampoline, ulong memorySize, ulong entry, ulong arg0, ulong arg1)
    {
        // SAFETY: as in VmCreate: pinned for the call, read-only, not retained.
        fixed (byte* c = code)
        fixed (byte* t = trampoline)
            return CreateCallDestroy(c, (ulong)code.Length, t, (ulong)trampoline.Length, memorySize, entry, arg0, arg1);
    }

    internal static long Check(long rc, string what) =>
        rc >= 0 ? rc : throw new InvalidOperationException($"C reference {what} failed: {rc}");
}
