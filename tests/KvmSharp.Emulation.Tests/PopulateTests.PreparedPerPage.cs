// SPDX-License-Identifier: MIT
// "Prepared" per 4 KiB page, whatever the host backing's folio size.
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

public sealed partial class PopulateTests
{
    [Fact]
    public void Tdx_page_next_to_a_guest_touched_one_is_not_prepared_and_populates()
    {
        // 4 MiB: room for 2 MiB host folios around the touched page.
        ulong pages = (4UL << 20) / Ps;
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM, pages);
        var vcpu = Vcpu(k, vm);
        MakePrivate(k, vm, Gpa, pages * Ps);
        var src = Source(2, 0x60);
        var buf = Own(new UserBuffer(Ps));
        // The guest path zeroes page 3's order-0 folio and marks it up to date; pages 2 and 4 stay absent.
        Assert.Equal(new byte[Ps], GuestPage(k, vm, Gfn + 3));
        Assert.True(Prepared(k, vm, Gfn + 3));
        Assert.False(Prepared(k, vm, Gfn + 2));
        Assert.False(Prepared(k, vm, Gfn + 4));
        foreach (ulong p in new[] { 2UL, 4UL })
        {
            var region = new kvm_tdx_init_mem_region { source_addr = src.Address + (p / 4) * Ps, gpa = Gpa + p * Ps, nr_pages = 1 };
            Assert.Equal(0, InitMemRegion(k, vcpu, buf, ref region));
            Assert.Equal(0UL, region.nr_pages);
            Assert.Equal(Pattern((byte)(0x60 + p / 4)), GuestPage(k, vm, Gfn + p));
        }
        // Page 3 itself really is prepared: EEXIST, and page 5 (next to a populated page) is not.
        var three = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa + 3 * Ps, nr_pages = 1 };
        Assert.Equal(Raw.EEXIST, InitMemRegion(k, vcpu, buf, ref three));
        Assert.False(Prepared(k, vm, Gfn + 5));
    }

    [Fact]
    public void Snp_page_after_a_fallocate_is_not_prepared_until_populated_and_a_punch_forgets_it()
    {
        ulong pages = (4UL << 20) / Ps;
        var (k, vm, g) = Setup(KvmConstants.KVM_X86_SNP_VM, pages);
        MakePrivate(k, vm, Gpa, pages * Ps);
        var src = Source(1, 0x61);
        var buf = Own(new UserBuffer(Ps));
        // kvm_gmem_allocate: folios exist but are not up to date.
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE, 0, (long)(pages * Ps)));
        Assert.False(Prepared(k, vm, Gfn + 1));
        var p = Normal(Gfn + 1, src.Address, 1);
        var cmd = new kvm_sev_cmd();
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.True(Prepared(k, vm, Gfn + 1));
        Assert.False(Prepared(k, vm, Gfn));
        Assert.False(Prepared(k, vm, Gfn + 2));
        // Punch-hole: page 1 is gone (and its RMP entry reclaimed); populating it again works.
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, (long)(2UL << 20)));
        Assert.False(Prepared(k, vm, Gfn + 1));
        p = Normal(Gfn + 1, src.Address, 1);
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(Pattern(0x61), GuestPage(k, vm, Gfn + 1));
    }

    [Fact]
    public void V8_snp_host_touch_prepares_only_the_touched_page()
    {
        ulong pages = (4UL << 20) / Ps;
        var config = EmulatorConfig.X86_64(inPlaceConversion: true);
        var (k, vm, g) = Setup(KvmConstants.KVM_X86_SNP_VM, pages, config, KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED);
        Assert.Equal(0, k.Mmap(0, pages * Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint a));
        // kvm_gmem_fault_user_mapping zeroes and marks up to date the one order-0 folio it faults in.
        Marshal.WriteByte(a + (nint)Ps, 0x42);
        Assert.True(Prepared(k, vm, Gfn + 1));
        Assert.False(Prepared(k, vm, Gfn));
        Assert.False(Prepared(k, vm, Gfn + 2));
        Assert.False(Prepared(k, vm, Gfn + 511));
        Assert.Equal(0, k.Munmap(a, pages * Ps));
    }

    [Fact]
    public void V8_snp_punched_page_populates_again_after_the_host_touched_its_neighbour()
    {
        ulong pages = (4UL << 20) / Ps;
        var config = EmulatorConfig.X86_64(inPlaceConversion: true);
        var (k, vm, g) = Setup(KvmConstants.KVM_X86_SNP_VM, pages, config, KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED);
        var buf = Own(new UserBuffer(Ps));
        Assert.Equal(0, Raw.Convert(k, g, 0, Ps, toPrivate: true));
        var p = Normal(Gfn, 0, 1);
        var cmd = new kvm_sev_cmd();
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        // Punching page 0's 2 MiB out reclaims its RMP entry (sev_gmem_invalidate); page 0 stays private (v8).
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, (long)(2UL << 20)));
        // The host touches shared page 1, in the same 2 MiB (a whole-file mapping, so a huge folio could back it).
        Assert.Equal(0, k.Mmap(0, pages * Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint a));
        Marshal.WriteByte(a + (nint)Ps, 0x17);
        Assert.Equal(0, k.Munmap(a, pages * Ps));
        // Page 0 is neither populated nor prepared: adding it again succeeds (no false EEXIST → EIO).
        p = Normal(Gfn, 0, 1);
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(new byte[Ps], GuestPage(k, vm, Gfn));
    }
}
