// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Memory;
using KvmSharp.Tests.Infrastructure;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// mincore(2) through the boundary (IKernel.Mincore) and <see cref="GuestMapping.GetResidentPages"/>: anonymous memory
/// on every kernel (the real one is the truth), guest_memfd page-cache residency where guest_memfd can be mapped.
/// </summary>
public class ResidencyTests : KernelTest
{
    private static readonly ulong Page = (ulong)Environment.SystemPageSize;

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Anonymous_memory_is_resident_where_it_was_touched_and_bad_ranges_get_the_kernels_errno(string kernel)
    {
        using var kvm = Open(kernel);
        IKernel k = kvm.Kernel;
        Assert.Equal(0, MappedRegion.Map(k, null, 4 * Page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0, out var region));
        using (region)
        {
            region!.GetSpan(Page, 1)[0] = 1;
            region.GetSpan(3 * Page + 17, 1)[0] = 1;
            Span<byte> vector = stackalloc byte[4];
            Assert.Equal(0, k.Mincore(region.Address, 4 * Page, vector));
            Assert.Equal([0, 1, 0, 1], vector.ToArray().Select(b => b & 1));
            // A length that is not a page multiple covers the last partial page; length 0 is fine.
            Assert.Equal(0, k.Mincore(region.Address + (nint)Page, Page + 1, vector));
            Assert.Equal(0, k.Mincore(region.Address, 0, []));
            // sys_mincore: unaligned start EINVAL (before the vector is looked at); a short vector EFAULT.
            Assert.Equal(-(long)Errno.EINVAL, k.Mincore(region.Address + 1, Page, []));
            Assert.Equal(-(long)Errno.EFAULT, k.Mincore(region.Address, 4 * Page, vector[..3]));
            // do_mincore: a page with no mapping is ENOMEM. The hole is never unmapped again: another test's thread may
            // map something there meanwhile, and a whole-region munmap would take it away (a crashed test host under
            // load, session 13). So the pages still ours are unmapped one piece each and the region forgets its range.
            nint start = region.Address;
            Assert.Equal(0, k.Munmap(start + (nint)(2 * Page), Page));
            region.SetHandleAsInvalid();
            try
            {
                Assert.Equal(-(long)Errno.ENOMEM, k.Mincore(start, 4 * Page, vector));
                Assert.Equal(0, k.Mincore(start, 2 * Page, vector));
            }
            finally
            {
                Assert.Equal(0, k.Munmap(start, 2 * Page));
                Assert.Equal(0, k.Munmap(start + (nint)(3 * Page), Page));
            }
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_guest_memfd_page_is_resident_once_it_has_a_folio_and_not_after_a_punch(string kernel)
    {
        using var kvm = Open(kernel);
        RequireGuestMemfd(kvm);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * Page, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        // The mapping is larger than the file: pages beyond it have no folio (and may not be touched).
        using var map = gmem.Map(6 * Page);
        var resident = new bool[6];
        map.GetResidentPages(0, 6 * Page, resident);
        Assert.All(resident, Assert.False);

        map.Write<byte>(Page, 7);                       // a host fault allocates (and zeroes) the folio
        gmem.Allocate((long)(2 * Page), (long)Page);    // fallocate allocates one, never touched by a mapping
        map.GetResidentPages(0, 6 * Page, resident);
        Assert.Equal([false, true, true, false, false, false], resident);

        gmem.PunchHole((long)Page, (long)Page);
        map.GetResidentPages(0, 4 * Page, resident);
        Assert.Equal([false, false, true, false], resident[..4]);
        // Asking does not fault anything in: the pages stay holes.
        map.GetResidentPages(0, 4 * Page, resident);
        Assert.False(resident[0]);

        Assert.Throws<ArgumentOutOfRangeException>(() => map.GetResidentPages(1, Page, resident));
        Assert.Throws<ArgumentException>(() => map.GetResidentPages(0, 4 * Page, new bool[3]));
    }
}
