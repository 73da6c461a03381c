// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// tools/testing/selftests/kvm/x86/guest_memfd_conversions_test.c of "[PATCH v8] guest_memfd: In-place conversion
/// support" (kernel-spec.md §3, §4), one case per TEST with the same names and the same helper structure
/// (test_shared / test_private / test_convert_to_shared / test_convert_to_private / host_do_rmw /
/// run_guest_do_rmw). Host accesses the selftest expects to SIGBUS are checked as the SDK's typed
/// <see cref="GuestMemoryFaultException"/> (a .NET process cannot survive SIGBUS); on the emulator the kernel's own
/// verdict for the mapping (<see cref="EmulatedKernel.CheckHostAccess"/>) is asserted too, so the cases test the
/// kernel and not only the SDK's bookkeeping. Needs KVM_X86_SW_PROTECTED_VM and KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
/// &amp; PRIVATE (the selftest's main()); a kernel without them skips every case with the reason.
/// </summary>
[ConformanceGroup(Requires = KernelRequirement.GuestMemfd)]
public static class GuestMemfdConversionsTest
{
    private const string Selftest = "[PATCH v8] guest_memfd: In-place conversion support, tools/testing/selftests/kvm/x86/guest_memfd_conversions_test.c";

    private static ulong Ps => (ulong)PageSize;

    // ------------------------------------------------------------------ fixture (GMEM_CONVERSION_TEST macros)

    /// <summary>main(): TEST_REQUIRE(KVM_CAP_VM_TYPES has SW_PROTECTED) and TEST_REQUIRE(GUEST_MEMFD_MEMORY_ATTRIBUTES &amp; PRIVATE).</summary>
    private static void Require(Kvm kvm)
    {
        RequireSwProtectedVm(kvm);
        int cap = kvm.Proposals.GuestMemfdMemoryAttributesCap;
        if (((ulong)kvm.CheckExtension(cap) & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0)
            Skip($"KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES ({cap}) on /dev/kvm lacks KVM_MEMORY_ATTRIBUTE_PRIVATE: no in-place conversion");
        using var vm = kvm.CreateVm(VmType.SwProtected);
        if (((ulong)vm.CheckExtension(cap) & KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0)
            Skip($"KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES ({cap}) on a SW_PROTECTED VM lacks KVM_MEMORY_ATTRIBUTE_PRIVATE");
    }

    /// <summary>GMEM_CONVERSION_TEST(test, nr_pages, flags): one fresh fixture.</summary>
    private static void ConversionTest(CaseContext ctx, int nrPages, GuestMemfdFlags flags, Action<ConversionGuest> body)
    {
        using var kvm = ctx.OpenKvm();
        Require(kvm);
        using var t = ConversionGuest.Create(kvm, nrPages, flags);
        body(t);
    }

    /// <summary>GMEM_CONVERSION_MULTIPAGE_TEST_INIT_SHARED(test, nr_pages): a fresh fixture for every test_page.</summary>
    private static void MultipageTestInitShared(CaseContext ctx, int nrPages, Action<ConversionGuest, int> body, Action<Kvm>? require = null)
    {
        using var kvm = ctx.OpenKvm();
        Require(kvm);
        require?.Invoke(kvm);
        for (int testPage = 0; testPage < nrPages; testPage++)
        {
            using var t = ConversionGuest.Create(kvm, nrPages, GuestMemfdFlags.InitShared);
            body(t, testPage);
        }
    }

    // ------------------------------------------------------------------ helpers, as in the selftest

    private static void GmemSetPrivate(ConversionGuest t, ulong offset, ulong size) =>
        t.Memfd.SetAttributes(offset, size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);

    private static void GmemSetShared(ConversionGuest t, ulong offset, ulong size) =>
        t.Memfd.SetAttributes(offset, size, 0);

    /// <summary>host_do_rmw(mem, pgoff, expected_val, write_val).</summary>
    private static void HostDoRmw(GuestMapping mem, ulong pgoff, byte expected, byte write)
    {
        ulong at = pgoff * Ps;
        AssertKernelAllowsHostAccess(mem, at);
        byte seen = mem.Read<byte>(at);
        if (seen != expected)
            Assert.Fail($"host read 0x{seen:X2} at page {pgoff}, expected 0x{expected:X2}");
        mem.Write(at, write);
    }

    /// <summary>TEST_EXPECT_SIGBUS(READ_ONCE(mem[...])) and TEST_EXPECT_SIGBUS(WRITE_ONCE(mem[...], v)).</summary>
    private static void ExpectSigbus(GuestMapping mem, ulong pgoff, byte? write)
    {
        ulong at = pgoff * Ps;
        var ex = write is byte v
            ? Assert.Throws<GuestMemoryFaultException>(() => mem.Write(at, v))
            : Assert.Throws<GuestMemoryFaultException>(() => mem.Read<byte>(at));
        Assert.Equal(GuestMemoryFault.PrivatePage, ex.Fault);
        Assert.Equal(mem.FileOffset + at, ex.FileOffset);
        // The kernel side: a fault on this page of this mapping would be answered with SIGBUS.
        if (mem.Memfd.Vm.Kernel is EmulatedKernel emu)
        {
            var verdict = emu.CheckHostAccess(mem.Address + (nint)at, 1);
            Assert.True(verdict == HostAccessFault.PrivatePage, $"emulated kernel's verdict for page {pgoff}: {verdict?.ToString() ?? "access allowed"}, expected SIGBUS (private page)");
        }
    }

    private static void AssertKernelAllowsHostAccess(GuestMapping mem, ulong at)
    {
        if (mem.Memfd.Vm.Kernel is EmulatedKernel emu)
        {
            var verdict = emu.CheckHostAccess(mem.Address + (nint)at, 1);
            Assert.True(verdict is null, $"emulated kernel refuses a host access at offset 0x{at:X} of a shared page: {verdict}");
        }
    }

    /// <summary>test_private: host write SIGBUS, guest rmw, host read SIGBUS.</summary>
    private static void TestPrivate(ConversionGuest t, ulong pgoff, byte startingVal, byte writeVal)
    {
        ExpectSigbus(t.Mem, pgoff, writeVal);
        t.RunGuestDoRmw(pgoff, startingVal, writeVal);
        ExpectSigbus(t.Mem, pgoff, write: null);
    }

    private static void TestConvertToPrivate(ConversionGuest t, ulong pgoff, byte startingVal, byte writeVal)
    {
        GmemSetPrivate(t, pgoff * Ps, Ps);
        TestPrivate(t, pgoff, startingVal, writeVal);
    }

    /// <summary>test_shared: host rmw, guest rmw, host sees the guest's write.</summary>
    private static void TestShared(ConversionGuest t, ulong pgoff, byte startingVal, byte hostWriteVal, byte writeVal)
    {
        HostDoRmw(t.Mem, pgoff, startingVal, hostWriteVal);
        t.RunGuestDoRmw(pgoff, hostWriteVal, writeVal);
        Assert.Equal(writeVal, t.Mem.Read<byte>(pgoff * Ps));
    }

    private static void TestConvertToShared(ConversionGuest t, ulong pgoff, byte startingVal, byte hostWriteVal, byte writeVal)
    {
        GmemSetShared(t, pgoff * Ps, Ps);
        TestShared(t, pgoff, startingVal, hostWriteVal, writeVal);
    }

    /// <summary>test_convert_to_private_fails: EAGAIN with error_offset == the pinned page's offset.</summary>
    private static void TestConvertToPrivateFails(ConversionGuest t, ulong pgoff, ulong nrPages, ulong expectedErrorOffset)
    {
        var ex = Assert.Throws<MemoryAttributesException>(() => GmemSetPrivate(t, pgoff * Ps, nrPages * Ps));
        Assert.True(ex.Errno == Errno.EAGAIN, $"Wanted EAGAIN on page {pgoff}, got {ex.ErrnoName}");
        Assert.Equal(expectedErrorOffset, ex.ErrorOffset);
    }

    private static byte B(char c) => (byte)c;

    // ------------------------------------------------------------------ the tests

    [ConformanceCase(Selftest + " init_private", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void init_private(CaseContext ctx) => ConversionTest(ctx, 1, GuestMemfdFlags.None, t =>
    {
        TestPrivate(t, 0, 0, B('A'));
        TestConvertToShared(t, 0, B('A'), B('B'), B('C'));
        TestConvertToPrivate(t, 0, B('C'), B('E'));
    });

    [ConformanceCase(Selftest + " init_shared", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void init_shared(CaseContext ctx) => ConversionTest(ctx, 1, GuestMemfdFlags.InitShared, t =>
    {
        TestShared(t, 0, 0, B('A'), B('B'));
        TestConvertToPrivate(t, 0, B('B'), B('C'));
        TestConvertToShared(t, 0, B('C'), B('D'), B('E'));
    });

    /// <summary>Indexing of pages within guest_memfd with data that varies with the page index; only the converted page changes.</summary>
    [ConformanceCase(Selftest + " indexing", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void indexing(CaseContext ctx) => MultipageTestInitShared(ctx, 4, (t, testPage) =>
    {
        int nrPages = t.NrPages;
        // #define combine(x, n) (((x) << 4) + (n)); i_(n) = combine(i, n); t_(n) = combine(test_page, n)
        static byte Combine(int x, int n) => (byte)((x << 4) + n);
        byte T(int n) => Combine(testPage, n);

        // Start with the highest index, to catch the first page being returned for the last index.
        for (int i = nrPages - 1; i >= 0; --i)
            TestShared(t, (ulong)i, 0, Combine(i, 0), Combine(i, 2));

        TestConvertToPrivate(t, (ulong)testPage, T(2), T(3));

        for (int i = 0; i < nrPages; ++i)
        {
            if (i == testPage) TestPrivate(t, (ulong)testPage, T(3), T(4));
            else TestShared(t, (ulong)i, Combine(i, 2), Combine(i, 3), Combine(i, 4));
        }

        TestConvertToShared(t, (ulong)testPage, T(4), T(5), T(6));

        for (int i = 0; i < nrPages; ++i)
        {
            byte expected = i == testPage ? T(6) : Combine(i, 4);
            TestShared(t, (ulong)i, expected, Combine(i, 7), Combine(i, 8));
        }
    });

    /// <summary>Even if there are no folios yet, conversion requests are recorded in guest_memfd.</summary>
    [ConformanceCase(Selftest + " before_allocation_shared", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void before_allocation_shared(CaseContext ctx) => ConversionTest(ctx, 1, GuestMemfdFlags.InitShared, t =>
        TestConvertToPrivate(t, 0, 0, B('A')));

    [ConformanceCase(Selftest + " before_allocation_private", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void before_allocation_private(CaseContext ctx) => ConversionTest(ctx, 1, GuestMemfdFlags.None, t =>
        TestConvertToShared(t, 0, 0, B('A'), B('B')));

    /// <summary>Some folios of the conversion range allocated, others not, in every layout test_page gives.</summary>
    [ConformanceCase(Selftest + " unallocated_folios", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void unallocated_folios(CaseContext ctx) => MultipageTestInitShared(ctx, 8, (t, testPage) =>
    {
        const int SecondPageToFault = 4;
        int nrPages = t.NrPages;
        // Fault 2 of the pages to test filemap range operations except when test_page == second_page_to_fault.
        HostDoRmw(t.Mem, (ulong)testPage, 0, B('A'));
        if (testPage != SecondPageToFault)
            HostDoRmw(t.Mem, SecondPageToFault, 0, B('A'));

        GmemSetPrivate(t, 0, (ulong)nrPages * Ps);
        for (int i = 0; i < nrPages; ++i)
        {
            byte expected = i == testPage || i == SecondPageToFault ? B('A') : (byte)0;
            TestPrivate(t, (ulong)i, expected, B('B'));
        }

        for (int i = 0; i < nrPages; ++i)
            TestConvertToShared(t, (ulong)i, B('B'), B('C'), B('D'));
    });

    /// <summary>Truncation (PUNCH_HOLE) does not affect shared/private status; the content resets to 0.</summary>
    [ConformanceCase(Selftest + " truncate", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void truncate(CaseContext ctx) => ConversionTest(ctx, 1, GuestMemfdFlags.InitShared, t =>
    {
        HostDoRmw(t.Mem, 0, 0, B('A'));
        t.Memfd.PunchHole(0, PageSize);
        HostDoRmw(t.Mem, 0, 0, B('A'));

        TestConvertToPrivate(t, 0, B('A'), B('B'));

        t.Memfd.PunchHole(0, PageSize);
        TestPrivate(t, 0, 0, B('A'));
    });

    /// <summary>
    /// Shared/private protections are seen from any process. Upstream forks a child that maps the page (by touching
    /// it) and, after the parent converts the page to private, expects SIGBUS on read and write in the child:
    /// unmap_mapping_pages() must revoke the page in every process. .NET cannot fork, so the child is ported as a
    /// second, independent mapping of the file (its own VMA, as another process would have), faulted in while
    /// shared and checked after the conversion. On the emulator the case also asserts that the conversion zapped
    /// that VMA and that the kernel would now answer a fault on it with SIGBUS.
    /// </summary>
    [ConformanceCase(Selftest + " forked_accesses", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void forked_accesses(CaseContext ctx) => ConversionTest(ctx, 1, GuestMemfdFlags.InitShared, t =>
    {
        const byte Inconsequential = 0xdd;
        using var child = t.Memfd.Map();

        TestShared(t, 0, 0, 0xA, 0xB);

        // STATE_CHECK_SHARED: this maps the page into the "child" as well.
        HostDoRmw(child, 0, 0xB, 0xC);
        int zapsBefore = t.Emulator?.HostMappingZapCount(child.Address) ?? 0;

        TestConvertToPrivate(t, 0, 0xC, 0xD);

        // STATE_CHECK_PRIVATE: the child's mapping was revoked too.
        if (t.Emulator is EmulatedKernel emu)
            Assert.True(emu.HostMappingZapCount(child.Address) > zapsBefore, "converting to private did not zap the second mapping's page table entries (unmap_mapping_pages)");
        ExpectSigbus(child, 0, write: null);
        ExpectSigbus(child, 0, Inconsequential);
    });

    /// <summary>
    /// A page with an elevated refcount (a long-term GUP pin) cannot become private: EAGAIN with error_offset = the
    /// pinned page, in bulk and page-wise; the other pages convert; after unpinning the whole range converts.
    /// Upstream pins through CONFIG_GUP_TEST; here the pin is <see cref="EmulatedKernel.PinGuestMemfdPage"/>.
    /// </summary>
    [ConformanceCase(Selftest + " elevated_refcount", Profile = EmulatedProfile.X86InPlaceConversion)]
    public static void elevated_refcount(CaseContext ctx) => MultipageTestInitShared(ctx, 4, (t, testPage) =>
    {
        var emu = (EmulatedKernel)t.Vm.Kernel;
        int nrPages = t.NrPages;
        ulong pinnedOffset = (ulong)testPage * Ps;
        long rc = emu.PinGuestMemfdPage(t.Memfd.Handle, pinnedOffset, out var pin);
        Assert.True(rc == 0, $"pin_pages: {(rc < 0 ? ErrnoInfo.NameOf((int)-rc) : rc)}");
        using (pin)
        {
            for (int i = 0; i < nrPages; i++)
                TestShared(t, (ulong)i, 0, B('A'), B('B'));

            // Converting in bulk fails as long as any page in the range has unexpected refcounts.
            TestConvertToPrivateFails(t, 0, (ulong)nrPages, pinnedOffset);

            for (int i = 0; i < nrPages; i++)
            {
                // Converting page-wise also fails as long as any page in the range has unexpected refcounts.
                if (i == testPage) TestConvertToPrivateFails(t, (ulong)i, 1, pinnedOffset);
                else TestConvertToPrivate(t, (ulong)i, B('B'), B('C'));
            }
        }

        // unpin_pages()
        GmemSetPrivate(t, 0, (ulong)nrPages * Ps);

        for (int i = 0; i < nrPages; i++)
        {
            byte expected = i == testPage ? B('B') : B('C');
            TestPrivate(t, (ulong)i, expected, B('D'));
        }
    }, require: kvm =>
    {
        if (kvm.Kernel is not EmulatedKernel)
            Skip("needs a long-term pin (CONFIG_GUP_TEST): pin_user_pages(FOLL_LONGTERM) is not reachable through IKernel on this kernel");
    });
}
