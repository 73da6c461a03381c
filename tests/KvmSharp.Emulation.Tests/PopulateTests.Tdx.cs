// SPDX-License-Identifier: MIT
// kvm_gmem_populate() through TDX KVM_TDX_INIT_MEM_REGION (vCPU KVM_MEMORY_ENCRYPT_OP).
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

public sealed partial class PopulateTests
{
    private static long InitMemRegion(EmulatedKernel k, KernelFd vcpu, UserBuffer regionBuf, ref kvm_tdx_init_mem_region region, uint flags = 0, ulong hwError = 0)
    {
        regionBuf.Write(0, region);
        var cmd = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION, flags = flags, data = regionBuf.Address, hw_error = hwError };
        long rc = k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd));
        region = regionBuf.Read<kvm_tdx_init_mem_region>(0);
        return rc;
    }

    [Fact]
    public void Tdx_init_mem_region_copies_the_source_into_private_pages_and_advances_the_region()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM);
        var vcpu = Vcpu(k, vm);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var src = Source(2, 0xA0);
        var buf = Own(new UserBuffer(Ps));
        var region = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa + Ps, nr_pages = 2 };

        Assert.Equal(0, InitMemRegion(k, vcpu, buf, ref region, flags: KvmMemoryEncrypt.KVM_TDX_MEASURE_MEMORY_REGION));

        Assert.Equal(src.Address + 2 * Ps, region.source_addr);
        Assert.Equal(Gpa + 3 * Ps, region.gpa);
        Assert.Equal(0UL, region.nr_pages);
        Assert.True(Prepared(k, vm, Gfn + 1));
        Assert.Equal(Pattern(0xA0), GuestPage(k, vm, Gfn + 1));
        Assert.Equal(Pattern(0xA1), GuestPage(k, vm, Gfn + 2));
        // Pages outside the region were not touched: the guest's first use zeroes them.
        Assert.False(Prepared(k, vm, Gfn));
        Assert.Equal(new byte[Ps], GuestPage(k, vm, Gfn));
    }

    [Fact]
    public void Tdx_already_populated_page_is_EEXIST_and_progress_is_reported()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM);
        var vcpu = Vcpu(k, vm);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var src = Source(3, 0x10);
        var buf = Own(new UserBuffer(Ps));

        var one = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa + Ps, nr_pages = 1 };
        Assert.Equal(0, InitMemRegion(k, vcpu, buf, ref one));
        // A second run over [0, 2): page 0 is added, page 1 already was → EEXIST, region copied back mid-way.
        var two = new kvm_tdx_init_mem_region { source_addr = src.Address + Ps, gpa = Gpa, nr_pages = 2 };
        Assert.Equal(Raw.EEXIST, InitMemRegion(k, vcpu, buf, ref two));
        Assert.Equal(src.Address + 2 * Ps, two.source_addr);
        Assert.Equal(Gpa + Ps, two.gpa);
        Assert.Equal(1UL, two.nr_pages);
        Assert.Equal(Pattern(0x11), GuestPage(k, vm, Gfn));
        Assert.Equal(Pattern(0x10), GuestPage(k, vm, Gfn + 1)); // unchanged by the refused attempt
    }

    [Fact]
    public void Tdx_page_the_guest_already_used_is_prepared_and_EEXIST_in_6_18()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM);
        var vcpu = Vcpu(k, vm);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var src = Source(1, 0x20);
        var buf = Own(new UserBuffer(Ps));
        // kvm_gmem_get_pfn zeroes the folio and marks it up to date: populate then refuses it.
        Assert.Equal(new byte[Ps], GuestPage(k, vm, Gfn + 3));
        var touched = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa + 3 * Ps, nr_pages = 1 };
        Assert.Equal(Raw.EEXIST, InitMemRegion(k, vcpu, buf, ref touched));
        Assert.Equal(1UL, touched.nr_pages);
        Assert.Equal(new byte[Ps], GuestPage(k, vm, Gfn + 3));
    }

    [Fact]
    public void Tdx_requires_private_pages_and_a_guest_memfd_slot()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM);
        var vcpu = Vcpu(k, vm);
        var src = Source(1, 0x33);
        var buf = Own(new UserBuffer(Ps));

        // Shared (no PRIVATE attribute): kvm_range_has_memory_attributes fails → EINVAL.
        var region = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa, nr_pages = 1 };
        Assert.Equal(Raw.EINVAL, InitMemRegion(k, vcpu, buf, ref region));
        Assert.Equal(1UL, region.nr_pages);
        Assert.False(Prepared(k, vm, Gfn));

        // Private but no memslot at all, and a plain (non-gmem) memslot → kvm_slot_has_gmem fails → EINVAL.
        MakePrivate(k, vm, 0, 1UL << 33);
        region = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = 1UL << 40, nr_pages = 1 };
        Assert.Equal(Raw.EINVAL, InitMemRegion(k, vcpu, buf, ref region));
        var host = Own(new UserBuffer(Ps));
        Assert.Equal(0, Raw.Region2(k, vm, 2, 0, 1UL << 30, Ps, uaddr: host.Address));
        region = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = 1UL << 30, nr_pages = 1 };
        Assert.Equal(Raw.EINVAL, InitMemRegion(k, vcpu, buf, ref region));

        // Now private and gmem-backed: accepted.
        region = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa, nr_pages = 1 };
        Assert.Equal(0, InitMemRegion(k, vcpu, buf, ref region));
        Assert.Equal(Pattern(0x33), GuestPage(k, vm, Gfn));
    }

    [Fact]
    public void Tdx_bad_source_is_EFAULT_and_leaves_the_page_unpopulated()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM);
        var vcpu = Vcpu(k, vm);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var buf = Own(new UserBuffer(Ps));
        foreach (ulong bad in new[] { 0UL, Ps, 1UL << 47, ~0UL & ~(Ps - 1) })
        {
            var region = new kvm_tdx_init_mem_region { source_addr = bad, gpa = Gpa, nr_pages = 1 };
            Assert.Equal(Raw.EFAULT, InitMemRegion(k, vcpu, buf, ref region));
            Assert.Equal(bad, region.source_addr);
            Assert.False(Prepared(k, vm, Gfn));
        }
        // A source that runs off the end of its mapping: the first page is added, the second faults (EFAULT)
        // and the region reports the progress.
        Assert.Equal(0, LinuxKernel.Instance.Mmap(0, 2 * Ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, null, 0, out nint two));
        Marshal.Copy(Pattern(0x45), 0, two, (int)Ps);
        Assert.Equal(0, LinuxKernel.Instance.Munmap(two + (nint)Ps, Ps));
        var edge = new kvm_tdx_init_mem_region { source_addr = (ulong)two, gpa = Gpa + Ps, nr_pages = 2 };
        Assert.Equal(Raw.EFAULT, InitMemRegion(k, vcpu, buf, ref edge));
        Assert.Equal(0, LinuxKernel.Instance.Munmap(two, Ps));
        Assert.Equal((ulong)two + Ps, edge.source_addr);
        Assert.Equal(1UL, edge.nr_pages);
        Assert.Equal(Pattern(0x45), GuestPage(k, vm, Gfn + 1));
        Assert.False(Prepared(k, vm, Gfn + 2));
        var src = Source(1, 0x44);
        var ok = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa, nr_pages = 1 };
        Assert.Equal(0, InitMemRegion(k, vcpu, buf, ref ok));
        Assert.Equal(Pattern(0x44), GuestPage(k, vm, Gfn));
    }

    [Fact]
    public void Tdx_validation_runs_in_the_kernels_order()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM);
        var vcpu = Vcpu(k, vm);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var src = Source(1, 1);
        var buf = Own(new UserBuffer(Ps));
        var good = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa, nr_pages = 1 };

        // tdx_vcpu_ioctl: short/absent cmd → EFAULT; hw_error set → EINVAL; unknown id → EINVAL.
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, new byte[23]));
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, 0UL));
        var r = good;
        Assert.Equal(Raw.EINVAL, InitMemRegion(k, vcpu, buf, ref r, hwError: 1));
        var cmd = new kvm_tdx_cmd { id = 99, data = buf.Address };
        Assert.Equal(Raw.EINVAL, k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        // tdx_vcpu_init_mem_region: flags beyond MEASURE → EINVAL before the region is read; bad data → EFAULT.
        r = good;
        Assert.Equal(Raw.EINVAL, InitMemRegion(k, vcpu, buf, ref r, flags: 2));
        cmd = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION, data = Ps };
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        // Alignment, empty, wrapping and shared-bit (GPA bit 47) ranges → EINVAL, nothing populated.
        foreach (var bad in new[]
        {
            good with { source_addr = good.source_addr + 1 },
            good with { gpa = Gpa + 8 },
            good with { nr_pages = 0 },
            good with { nr_pages = 1UL << 52 },
            good with { gpa = ~(Ps - 1) },
            good with { gpa = Gpa | (1UL << 47) },
            good with { gpa = (1UL << 47) - Ps, nr_pages = 2 },
        })
        {
            r = bad;
            Assert.Equal(Raw.EINVAL, InitMemRegion(k, vcpu, buf, ref r));
        }
        Assert.False(Prepared(k, vm, Gfn));
        // On the VM fd, INIT_MEM_REGION is not a VM command → EINVAL.
        cmd = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION, data = buf.Address };
        Assert.Equal(Raw.EINVAL, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, new byte[8]));
    }

    [Fact]
    public void Tdx_region_write_back_fault_is_EFAULT_after_populating()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM);
        var vcpu = Vcpu(k, vm);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var src = Source(1, 0x5A);
        // The region struct in a read-only page: copy_from_user works, copy_to_user faults.
        var ro = Own(new ReadOnlyRegion(new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa, nr_pages = 1 }));
        var cmd = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION, data = ro.Address };
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        Assert.Equal(Pattern(0x5A), GuestPage(k, vm, Gfn));
    }

    [Fact]
    public void Huge_host_folios_do_not_make_neighbouring_pages_look_populated()
    {
        ulong pages = (4UL << 20) / Ps;
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_TDX_VM, pages);
        var vcpu = Vcpu(k, vm);
        MakePrivate(k, vm, Gpa, pages * Ps);
        var src = Source(3, 0x70);
        var buf = Own(new UserBuffer(Ps));
        for (ulong p = 0; p < 3; p++)
        {
            var r = new kvm_tdx_init_mem_region { source_addr = src.Address + p * Ps, gpa = Gpa + p * Ps, nr_pages = 1 };
            Assert.Equal(0, InitMemRegion(k, vcpu, buf, ref r));
        }
        for (ulong p = 0; p < 3; p++) Assert.Equal(Pattern((byte)(0x70 + p)), GuestPage(k, vm, Gfn + p));
        var again = new kvm_tdx_init_mem_region { source_addr = src.Address, gpa = Gpa + Ps, nr_pages = 1 };
        Assert.Equal(Raw.EEXIST, InitMemRegion(k, vcpu, buf, ref again));
    }

    [Fact]
    public void Only_vm_types_with_an_arch_populate_accept_the_ioctl()
    {
        var buf = Own(new UserBuffer(Ps));
        var tdx = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION, data = buf.Address };
        var sev = new kvm_sev_cmd { id = KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE, data = buf.Address };
        foreach (uint type in new[] { KvmConstants.KVM_X86_DEFAULT_VM, KvmConstants.KVM_X86_SW_PROTECTED_VM })
        {
            var (k, vm, _) = Setup(type);
            var vcpu = Vcpu(k, vm);
            // vt_mem_enc_ioctl: !is_td(kvm) → ENOTTY; vt_vcpu_mem_enc_ioctl: !is_td_vcpu → EINVAL.
            Assert.Equal(Raw.ENOTTY, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref sev)));
            Assert.Equal(Raw.EINVAL, k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref tdx)));
        }
        // SNP: no vCPU hook in kvm_amd → ENOTTY; a SEV (non-SNP) VM: snp_launch_update → EINVAL.
        var (ks, vms, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        Assert.Equal(Raw.ENOTTY, ks.Ioctl(Vcpu(ks, vms), KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref tdx)));
        var kSev = Kernel(EmulatorConfig.X86_64());
        var sysSev = Own(Raw.OpenKvm(kSev));
        var vmSev = Own(Raw.CreateVm(kSev, sysSev, KvmConstants.KVM_X86_SEV_VM));
        Assert.Equal(Raw.EINVAL, kSev.Ioctl(vmSev, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref sev)));
        // No vendor hook at all (this host's config: no HAVE_KVM_ARCH_GMEM_POPULATE) → ENOTTY on both fds.
        var kh = Kernel(EmulatorConfig.LikeThisHost());
        var sys = Own(Raw.OpenKvm(kh));
        var vmh = Own(Raw.CreateVm(kh, sys));
        Assert.Equal(Raw.ENOTTY, kh.Ioctl(vmh, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref sev)));
        Assert.Equal(Raw.ENOTTY, kh.Ioctl(Vcpu(kh, vmh), KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref tdx)));
    }
}
