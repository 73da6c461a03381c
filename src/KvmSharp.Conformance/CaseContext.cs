// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Conformance;

/// <summary>What a case body gets: the kernel under test and small helpers shared by the cases.</summary>
public sealed class CaseContext
{
    internal CaseContext(KernelTarget target, IKernel kernel)
    {
        Target = target;
        Kernel = kernel;
    }

    public KernelTarget Target { get; }

    public IKernel Kernel { get; }

    public static int PageSize => Environment.SystemPageSize;

    public Kvm OpenKvm() => Kvm.Open(Kernel);

    /// <summary>Ends the case as skipped with <paramref name="reason"/>.</summary>
    public static void Skip(string reason) => throw new SkipCaseException(reason);

    /// <summary>
    /// Skips the case unless KVM_CAP_VM_TYPES lists KVM_X86_SW_PROTECTED_VM (the x86 selftests' TEST_REQUIRE for
    /// private memory without CoCo hardware).
    /// </summary>
    public static void RequireSwProtectedVm(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        if (!kvm.SupportedVmTypes.Contains(VmType.SwProtected))
            Skip($"KVM_CAP_VM_TYPES (0x{kvm.CheckExtension(KvmSharp.Abi.KvmCaps.KVM_CAP_VM_TYPES):X}) lacks KVM_X86_SW_PROTECTED_VM");
    }

    /// <summary>
    /// The VM types to test, as the selftest's main() does: KVM_CAP_VM_TYPES, or only the default type when the
    /// capability is absent (arm64).
    /// </summary>
    public static IReadOnlyList<VmType> VmTypes(Kvm kvm) => kvm.SupportedVmTypes;

    /// <summary>
    /// The flag sets __test_guest_memfd() runs for a VM: 0, MMAP if supported, MMAP|INIT_SHARED if supported.
    /// </summary>
    public static IReadOnlyList<GuestMemfdFlags> FlagSets(Vm vm)
    {
        var supported = vm.SupportedGuestMemfdFlags;
        var sets = new List<GuestMemfdFlags> { GuestMemfdFlags.None };
        if (supported.HasFlag(GuestMemfdFlags.Mmap)) sets.Add(GuestMemfdFlags.Mmap);
        if (supported.HasFlag(GuestMemfdFlags.InitShared)) sets.Add(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        return sets;
    }

    /// <summary>
    /// The selftest's gmem_test(): for every VM type and every flag set <paramref name="applies"/> selects, run
    /// <paramref name="body"/> on a fresh 4-page guest_memfd and close it.
    /// </summary>
    public void GmemTest(Func<GuestMemfdFlags, bool> applies, Action<Vm, GuestMemfd> body, ulong? size = null)
    {
        using var kvm = OpenKvm();
        bool ran = false;
        foreach (var type in VmTypes(kvm))
        {
            using var vm = kvm.CreateVm(type);
            foreach (var flags in FlagSets(vm))
            {
                if (!applies(flags)) continue;
                using var gmem = vm.CreateGuestMemfd(size ?? 4 * (ulong)PageSize, flags);
                body(vm, gmem);
                ran = true;
            }
        }
        if (!ran) Skip("no VM type of this kernel supports the guest_memfd flags this case needs");
    }

    /// <summary>A struct's bytes in place, for a raw ioctl whose answer (and copy back) the case checks.</summary>
    public static Span<byte> Raw<T>(ref T value) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref value, 1));

    /// <summary>Asserts that a raw boundary result is <c>-errno</c>.</summary>
    public static void AssertErrno(Errno expected, long rc, string what)
    {
        if (rc != -(long)expected)
            throw new Xunit.Sdk.XunitException($"{what}: expected {expected}, got {(rc < 0 ? ErrnoInfo.NameOf((int)-rc) : rc.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
    }

    /// <summary>Asserts that <paramref name="action"/> throws a KvmException with <paramref name="expected"/>.</summary>
    public static KvmException AssertErrno(Errno expected, Action action)
    {
        var ex = Xunit.Assert.ThrowsAny<KvmException>(action);
        if (ex.Errno != expected)
            throw new Xunit.Sdk.XunitException($"expected {expected}, got {ex.ErrnoName}: {ex.Message}");
        return ex;
    }

    /// <summary>KVM_CAP_* value on /dev/kvm of this kernel.</summary>
    public long SystemCapability(int cap)
    {
        using var kvm = OpenKvm();
        return kvm.CheckExtension(cap);
    }

    internal static bool Has(GuestMemfdFlags flags, GuestMemfdFlags f) => (flags & f) == f;

    internal static ulong Private => KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE;
}
