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
    private static partial int OpenDevice();

    /// <summary>0: the C side uses a guest_memfd, 1: host memory (chosen by vmm_ref_open).</summary>
    [LibraryImport(Library, EntryPoint = "vmm_ref_memory")]
    private static partial int MemoryMode();

    /// <summary>
    /// Opens /dev/kvm for the C side, which picks its guest memory the way <see cref="BenchGuest.Memory"/> is picked;
    /// a different pick would compare different work, so it is an error.
    /// </summary>
    internal static int Open()
    {
        int rc = OpenDevice();
        if (rc < 0) return rc;
        var c = MemoryMode() == 0 ? GuestMemoryBacking.GuestMemfd : GuestMemoryBacking.HostMemory;
        if (c != BenchGuest.Memory)
            throw new InvalidOperationException($"the C reference picked {c} guest memory, the C# side {BenchGuest.Memory}: not the same work");
        return rc;
    }

    [LibraryImport(Library, EntryPoint = "vmm_ref_close")]
    internal static partial void Close();

    /// <summary>
    /// KVM_CREATE_VM, guest memory (guest_memfd + mmap, or anonymous mmap), SET_USER_MEMORY_REGION2, CREATE_VCPU +
    /// kvm_run mmap, then all closed.
    /// </summary>
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

    [LibraryImport(Library, EntryPoint = "vmm_ref_density_create")]
    private static partial long DensityCreate(int n, byte* code, ulong length, byte* trampoline, ulong trampolineLength,
        ulong memorySize, ulong entry, ulong arg0, ulong arg1);

    /// <summary>Density probe: every micro-VM of <see cref="DensityCreate(int, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ulong, ulong, ulong)"/> torn down.</summary>
    [LibraryImport(Library, EntryPoint = "vmm_ref_density_destroy")]
    internal static partial void DensityDestroy();

    /// <summary>Density probe: <paramref name="n"/> micro-VMs alive at once, each created, booted and called once.</summary>
    internal static long DensityCreate(int n, ReadOnlySpan<byte> code, ReadOnlySpan<byte> trampoline, ulong memorySize, ulong entry, ulong arg0)
    {
        // SAFETY: as in VmCreate: pinned for the call, read-only, not retained.
        fixed (byte* c = code)
        fixed (byte* t = trampoline)
            return DensityCreate(n, c, (ulong)code.Length, t, (ulong)trampoline.Length, memorySize, entry, arg0, 0);
    }

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
