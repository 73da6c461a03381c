// SPDX-License-Identifier: MIT
// Populate with [PATCH v8] in-place conversion.
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

public sealed partial class PopulateTests
{
    [Fact]
    public void V8_in_place_populate_keeps_the_contents_the_host_wrote_while_shared()
    {
        var config = EmulatorConfig.X86_64(inPlaceConversion: true);
        var (k, vm, g) = Setup(KvmConstants.KVM_X86_SNP_VM, 2, config, KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED);
        Assert.Equal(0, k.Mmap(0, 2 * Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint a));
        Marshal.Copy(Pattern(0x9E), 0, a, (int)Ps);
        Assert.Equal(0, k.Munmap(a, 2 * Ps));
        var buf = Own(new UserBuffer(Ps));

        // Still shared: the per-gmem attribute is what counts → the populate fails (EIO for SNP).
        var p = Normal(Gfn, 0, 1);
        var cmd = new kvm_sev_cmd();
        Assert.Equal(EIO, LaunchUpdate(k, vm, buf, ref p, ref cmd));

        Assert.Equal(0, Raw.Convert(k, g, 0, Ps, toPrivate: true));
        p = Normal(Gfn, 0, 1);
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(0UL, p.uaddr); // no source: not advanced
        Assert.Equal(Gfn + 1, p.gfn_start);
        Assert.Equal(Pattern(0x9E), GuestPage(k, vm, Gfn));
        // A second add of the same page: the RMP entry is assigned → EEXIST → EIO.
        p = Normal(Gfn, 0, 1);
        Assert.Equal(EIO, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        // The v8-era tree also requires a page-aligned source.
        p = Normal(Gfn + 1, 8, 1);
        Assert.Equal(Raw.EINVAL, LaunchUpdate(k, vm, buf, ref p, ref cmd));
    }

    [Fact]
    public void V8_tdx_without_source_is_in_place_only_with_gmem_in_place_conversion()
    {
        foreach (bool inPlace in new[] { true, false })
        {
            var config = EmulatorConfig.X86_64(inPlaceConversion: true) with { GmemInPlaceConversion = inPlace };
            var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM, 2, config);
            var vcpu = Vcpu(k, vm);
            if (!inPlace) MakePrivate(k, vm, Gpa, 2 * Ps); // per-VM attributes when not converting in place
            var buf = Own(new UserBuffer(Ps));
            var region = new kvm_tdx_init_mem_region { source_addr = 0, gpa = Gpa, nr_pages = 2 };
            if (inPlace)
            {
                Assert.Equal(0, InitMemRegion(k, vcpu, buf, ref region));
                Assert.Equal(0UL, region.source_addr);
                Assert.Equal(Gpa + 2 * Ps, region.gpa);
                Assert.Equal(new byte[Ps], GuestPage(k, vm, Gfn));
                // Adding a page twice fails in TDH.MEM.PAGE.ADD → EIO.
                region = new kvm_tdx_init_mem_region { source_addr = 0, gpa = Gpa, nr_pages = 1 };
                Assert.Equal(EIO, InitMemRegion(k, vcpu, buf, ref region));
            }
            else
            {
                Assert.Equal(Raw.EOPNOTSUPP, InitMemRegion(k, vcpu, buf, ref region));
                Assert.Equal(2UL, region.nr_pages);
            }
        }
    }
}
