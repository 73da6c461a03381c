// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Kernel;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// kvm_gmem_populate() through the vendor uAPI: TDX KVM_TDX_INIT_MEM_REGION (vCPU KVM_MEMORY_ENCRYPT_OP) and SEV-SNP
/// KVM_SEV_SNP_LAUNCH_UPDATE (VM KVM_MEMORY_ENCRYPT_OP). The sub-command structs and the source buffers live in real
/// process memory (<see cref="UserBuffer"/>), as the kernel reads them with copy_from_user.
/// </summary>
public sealed class PopulateTests : IDisposable
{
    private static readonly ulong Ps = (ulong)Raw.Page;
    private const ulong Gpa = 1UL << 32;
    private const long EIO = -5; // not among Raw's errnos
    private static ulong Gfn => Gpa / Ps;

    private readonly List<IDisposable> _owned = [];
    private readonly List<EmulatedKernel> _kernels = [];

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        foreach (var k in _kernels)
        {
            // No descriptor or VM leaks, whatever path the test took.
            Assert.Equal(0, k.OpenFdCount);
            Assert.Equal(0, k.LiveVmCount);
            k.Dispose();
        }
    }

    private T Own<T>(T d) where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    private EmulatedKernel Kernel(EmulatorConfig config)
    {
        var k = new EmulatedKernel(config);
        _kernels.Add(k);
        return k;
    }

    /// <summary>A VM of <paramref name="type"/> with a <paramref name="pages"/>-page guest_memfd bound at 4 GiB.</summary>
    private (EmulatedKernel K, KernelFd Vm, KernelFd Gmem) Setup(uint type, ulong pages = 4, EmulatorConfig? config = null, ulong gmemFlags = 0)
    {
        var k = Kernel(config ?? EmulatorConfig.X86_64());
        var sys = Own(Raw.OpenKvm(k));
        var vm = Own(Raw.CreateVm(k, sys, type));
        // vmx/tdx.c tdx_vcpu_create: a TD's vCPUs need a split irqchip, enabled before the first one.
        if (type == KvmConstants.KVM_X86_TDX_VM) EnableSplitIrqchip(k, vm);
        // The launch steps populate needs first: KVM_TDX_INIT_VM (a TD's vCPUs and INIT_MEM_REGION come after it);
        // KVM_SEV_INIT2 + KVM_SEV_SNP_LAUNCH_START (snp_launch_update: sev_snp_guest() && sev->snp_context).
        if (type == KvmConstants.KVM_X86_TDX_VM) TdxInitVm(k, vm);
        if (type == KvmConstants.KVM_X86_SNP_VM) SnpLaunchStart(k, vm);
        var g = Own(Raw.CreateGmem(k, vm, pages * Ps, gmemFlags));
        Assert.Equal(0, Raw.Region2(k, vm, 1, KvmConstants.KVM_MEM_GUEST_MEMFD, Gpa, pages * Ps, gmemFd: g.Number));
        return (k, vm, g);
    }

    private static void EnableSplitIrqchip(EmulatedKernel k, KernelFd vm)
    {
        var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_SPLIT_IRQCHIP };
        cap.args[0] = 24;
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, MemoryMarshal.AsBytes(
            MemoryMarshal.CreateSpan(ref cap, 1))));
    }

    private KernelFd Vcpu(EmulatedKernel k, KernelFd vm)
    {
        long rc = k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL);
        Assert.True(rc >= 0, $"KVM_CREATE_VCPU: {rc}");
        var vcpu = Own(k.Adopt((int)rc));
        if (_tds.Contains(vm)) TdxInitVcpu(k, vcpu);
        return vcpu;
    }

    private readonly HashSet<KernelFd> _tds = [];
    private readonly Dictionary<EmulatedKernel, KernelFd> _sevFds = [];

    /// <summary>KVM_TDX_INIT_VM with the one CPUID entry it requires (0x80000008, GPAW 48: shared bit 47).</summary>
    private void TdxInitVm(EmulatedKernel k, KernelFd vm)
    {
        var buf = Own(new UserBuffer(Ps));
        var init = new kvm_tdx_init_vm();
        init.cpuid.nent = 1;
        buf.Write(0, init);
        buf.Write((ulong)Marshal.SizeOf<kvm_tdx_init_vm>(), new kvm_cpuid_entry2 { function = 0x8000_0008, eax = 48u << 16 });
        var cmd = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_INIT_VM, data = buf.Address };
        Assert.Equal(0, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        _tds.Add(vm);
    }

    /// <summary>KVM_SET_CPUID2 with x2APIC (TDX requires it), then KVM_TDX_INIT_VCPU.</summary>
    private static void TdxInitVcpu(EmulatedKernel k, KernelFd vcpu)
    {
        var bytes = new byte[Marshal.SizeOf<kvm_cpuid2>() + Marshal.SizeOf<kvm_cpuid_entry2>()];
        MemoryMarshal.Write(bytes, new kvm_cpuid2 { nent = 1 });
        MemoryMarshal.Write(bytes.AsSpan(Marshal.SizeOf<kvm_cpuid2>()), new kvm_cpuid_entry2 { function = 1, ecx = 1u << 21 });
        Assert.Equal(0, k.Ioctl(vcpu, KvmIoctls.KVM_SET_CPUID2, bytes));
        var cmd = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_INIT_VCPU };
        Assert.Equal(0, k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
    }

    /// <summary>/dev/sev of <paramref name="k"/> (the emulated PSP), opened once per kernel.</summary>
    private KernelFd SevFd(EmulatedKernel k)
    {
        if (_sevFds.TryGetValue(k, out var fd)) return fd;
        Assert.True(k.Open("/dev/sev", 2, out var opened) >= 0);
        return _sevFds[k] = Own(opened!);
    }

    /// <summary>KVM_SEV_INIT2 and KVM_SEV_SNP_LAUNCH_START (policy: bit 17, must be one).</summary>
    private void SnpLaunchStart(EmulatedKernel k, KernelFd vm)
    {
        var buf = Own(new UserBuffer(Ps));
        buf.Write(0, new kvm_sev_init());
        var cmd = new kvm_sev_cmd { id = KvmMemoryEncrypt.KVM_SEV_INIT2, data = buf.Address, sev_fd = (uint)SevFd(k).Number };
        Assert.Equal(0, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        buf.Write(0, new kvm_sev_snp_launch_start { policy = 1UL << 17 });
        cmd = new kvm_sev_cmd { id = KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START, data = buf.Address, sev_fd = (uint)SevFd(k).Number };
        Assert.Equal(0, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
    }

    private static void MakePrivate(EmulatedKernel k, KernelFd vm, ulong gpa, ulong size) =>
        Assert.Equal(0, Raw.VmAttributes(k, vm, gpa, size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE));

    private UserBuffer Source(ulong pages, byte seed)
    {
        var b = Own(new UserBuffer(pages * Ps));
        for (ulong p = 0; p < pages; p++) b.Fill(p * Ps, Ps, (byte)(seed + p));
        return b;
    }

    // ---- TDX ----

    private static long InitMemRegion(EmulatedKernel k, KernelFd vcpu, UserBuffer regionBuf, ref kvm_tdx_init_mem_region region, uint flags = 0, ulong hwError = 0)
    {
        regionBuf.Write(0, region);
        var cmd = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION, flags = flags, data = regionBuf.Address, hw_error = hwError };
        long rc = k.Ioctl(vcpu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd));
        region = regionBuf.Read<kvm_tdx_init_mem_region>(0);
        return rc;
    }

    /// <summary>What the guest sees at <paramref name="gfn"/> (kvm_gmem_get_pfn, the guest fault path).</summary>
    private static byte[] GuestPage(EmulatedKernel k, KernelFd vm, ulong gfn)
    {
        var kvm = GuestMemoryPath.VmOf(k, vm)!;
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn)!;
        Assert.Equal(0, GuestMemoryPath.GmemGetPfn(slot, gfn, out var page));
        var bytes = new byte[Ps];
        Assert.Equal((long)Ps, page.Read(0, bytes));
        return bytes;
    }

    /// <summary>The emulator's "prepared" (folio up to date) notion that 6.18's populate refuses with EEXIST.</summary>
    private static bool Prepared(EmulatedKernel k, KernelFd vm, ulong gfn)
    {
        var kvm = GuestMemoryPath.VmOf(k, vm)!;
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn)!;
        return GmemPopulate.Prepared(slot.GmemFile!.GmemInode, gfn - slot.BaseGfn + slot.GmemPgoff);
    }

    private static byte[] Pattern(byte value) => Enumerable.Repeat(value, (int)Ps).ToArray();

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

    // ---- SEV-SNP ----

    private long LaunchUpdate(EmulatedKernel k, KernelFd vm, UserBuffer paramsBuf, ref kvm_sev_snp_launch_update p, ref kvm_sev_cmd cmd)
    {
        paramsBuf.Write(0, p);
        cmd.id = KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE;
        cmd.data = paramsBuf.Address;
        // The firmware command of each page goes through kvm_sev_cmd.sev_fd (sev_gmem_post_populate).
        cmd.sev_fd = (uint)SevFd(k).Number;
        long rc = k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd));
        p = paramsBuf.Read<kvm_sev_snp_launch_update>(0);
        return rc;
    }

    private static kvm_sev_snp_launch_update Normal(ulong gfn, ulong uaddr, ulong pages) =>
        new() { gfn_start = gfn, uaddr = uaddr, len = pages * Ps, type = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_NORMAL };

    [Fact]
    public void Snp_launch_update_copies_the_source_and_advances_the_params()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var src = Source(2, 0xC0);
        var buf = Own(new UserBuffer(Ps));
        var p = Normal(Gfn, src.Address, 2);
        var cmd = new kvm_sev_cmd { error = 0x55, sev_fd = 7 };

        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));

        Assert.Equal(Gfn + 2, p.gfn_start);
        Assert.Equal(0UL, p.len);
        Assert.Equal(src.Address + 2 * Ps, p.uaddr);
        Assert.Equal(0x55u, cmd.error); // the cmd is copied back as read: no firmware error reported
        Assert.Equal(Pattern(0xC0), GuestPage(k, vm, Gfn));
        Assert.Equal(Pattern(0xC1), GuestPage(k, vm, Gfn + 1));
    }

    [Fact]
    public void Snp_zero_pages_ignore_uaddr_and_are_zero_filled()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var buf = Own(new UserBuffer(Ps));
        var p = new kvm_sev_snp_launch_update { gfn_start = Gfn, uaddr = 0xdead000, len = Ps, type = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_ZERO };
        var cmd = new kvm_sev_cmd();
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(0xdead000UL, p.uaddr);
        Assert.Equal(Gfn + 1, p.gfn_start);
        Assert.True(Prepared(k, vm, Gfn));
        Assert.Equal(new byte[Ps], GuestPage(k, vm, Gfn));
    }

    [Fact]
    public void Snp_populate_failures_on_the_first_page_are_EIO_with_firmware_error_zero()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        var src = Source(1, 0x66);
        var buf = Own(new UserBuffer(Ps));

        // Not private.
        var p = Normal(Gfn, src.Address, 1);
        var cmd = new kvm_sev_cmd { error = 0x55 };
        Assert.Equal(EIO, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(0u, cmd.error);
        Assert.Equal(Gfn, p.gfn_start); // params not copied back on failure

        MakePrivate(k, vm, Gpa, 4 * Ps);
        // Bad source address (copy_from_user fails) and a NULL source for a NORMAL page (6.18: WARN, EINVAL).
        foreach (ulong bad in new[] { Ps, 0UL })
        {
            p = Normal(Gfn, bad, 1);
            cmd = new kvm_sev_cmd { error = 0x55 };
            Assert.Equal(EIO, LaunchUpdate(k, vm, buf, ref p, ref cmd));
            Assert.Equal(0u, cmd.error);
            Assert.False(Prepared(k, vm, Gfn));
        }

        // Already populated: EIO for the first page; a later page failing yields partial success.
        p = Normal(Gfn + 1, src.Address, 1);
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        p = Normal(Gfn + 1, src.Address, 1);
        Assert.Equal(EIO, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        p = Normal(Gfn, src.Address, 2);
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(Gfn + 1, p.gfn_start);
        Assert.Equal(Ps, p.len);
        Assert.Equal(src.Address + Ps, p.uaddr);
    }

    [Fact]
    public void Snp_validation_runs_in_the_kernels_order()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        MakePrivate(k, vm, 0, 1UL << 40);
        var src = Source(1, 1);
        var buf = Own(new UserBuffer(Ps));
        var good = Normal(Gfn, src.Address, 1);

        // sev_mem_enc_ioctl: NULL argp → 0; short cmd → EFAULT; pre-SNP ids → EPERM; unknown id → EINVAL.
        Assert.Equal(0, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, 0UL));
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, new byte[23]));
        var cmd = new kvm_sev_cmd { id = KvmMemoryEncrypt.KVM_SEV_INIT2, data = buf.Address };
        Assert.Equal(Raw.EPERM, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        cmd = new kvm_sev_cmd { id = 200, data = buf.Address };
        Assert.Equal(Raw.EINVAL, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        // snp_launch_update: params unreadable → EFAULT.
        cmd = new kvm_sev_cmd { id = KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE, data = Ps };
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        // len 0 / unaligned, flags, page types 0, 2 (VMSA) and 7 → EINVAL.
        foreach (var bad in new[]
        {
            good with { len = 0 }, good with { len = Ps + 1 }, good with { flags = 1 },
            good with { type = 0 }, good with { type = 2 }, good with { type = 7 },
        })
        {
            var p = bad;
            cmd = new kvm_sev_cmd();
            Assert.Equal(Raw.EINVAL, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        }
        // No guest_memfd slot at gfn_start → EINVAL (checked before populating, not EIO).
        var noSlot = good with { gfn_start = 1 };
        cmd = new kvm_sev_cmd();
        Assert.Equal(Raw.EINVAL, LaunchUpdate(k, vm, buf, ref noSlot, ref cmd));
        // Padding is not validated: garbage in pad fields still succeeds.
        var padded = good with { pad0 = 9, pad1 = 9 };
        padded.pad2[3] = 9;
        cmd = new kvm_sev_cmd();
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref padded, ref cmd));
        // All page types but ZERO and SECRETS copy the source (the firmware's own checks are not modelled); SECRETS
        // is the firmware's secrets page (SnpPsp.SecretsPage: layout version 2 first), whatever the source.
        foreach (byte t in new[] { KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_UNMEASURED, KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_SECRETS, KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_CPUID })
        {
            var p = Normal(Gfn + t - 3, src.Address, 1) with { type = t };
            cmd = new kvm_sev_cmd();
            Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
            byte[] page = GuestPage(k, vm, Gfn + t - 3);
            if (t == KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_SECRETS)
            {
                Assert.NotEqual(Pattern(1), page);
                Assert.Equal(2u, BitConverter.ToUInt32(page, 0));
            }
            else
            {
                Assert.Equal(Pattern(1), page);
            }
        }
    }

    // ---- [PATCH v8] in-place conversion ----

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

    // ---- "prepared" per 4 KiB page, whatever the host backing's folio size ----

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

    // ---- robustness ----

    [Fact]
    public void Garbage_commands_never_throw_and_leave_no_descriptors()
    {
        var rng = new Random(20260618);
        var scratch = Own(new UserBuffer(Ps));
        var src = Source(1, 0x77);
        foreach (uint type in new[] { KvmConstants.KVM_X86_TDX_VM, KvmConstants.KVM_X86_SNP_VM, KvmConstants.KVM_X86_DEFAULT_VM })
        {
            var (k, vm, _) = Setup(type);
            var vcpu = Vcpu(k, vm);
            if (type != KvmConstants.KVM_X86_DEFAULT_VM) MakePrivate(k, vm, Gpa, 2 * Ps);
            var bytes = new byte[64];
            for (int i = 0; i < 2000; i++)
            {
                // The sub-command struct: random, but aimed at the scratch page, an unmapped page or a kernel address
                // (never at arbitrary process memory, which copy_to_user would legitimately overwrite).
                var inner = new byte[64];
                rng.NextBytes(inner);
                if (rng.Next(3) == 0) BitConverter.GetBytes(src.Address + (ulong)rng.Next(2) * 8).CopyTo(inner, rng.Next(2) * 8);
                if (rng.Next(3) == 0) BitConverter.GetBytes(Gpa + (ulong)rng.Next(4) * Ps).CopyTo(inner, 8);
                scratch.WriteBytes(0, inner);
                rng.NextBytes(bytes);
                if (rng.Next(2) == 0) BitConverter.GetBytes((uint)rng.Next(0, 110)).CopyTo(bytes, 0);
                ulong data = rng.Next(4) switch { 0 => Ps, 1 => 1UL << 63, _ => scratch.Address };
                BitConverter.GetBytes(data).CopyTo(bytes, 8);
                if (rng.Next(2) == 0) Array.Clear(bytes, 16, 8);
                int len = rng.Next(0, bytes.Length + 1);
                var fd = rng.Next(2) == 0 ? vm : vcpu;
                long rc = k.Ioctl(fd, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, bytes.AsSpan(0, len));
                Assert.True(rc == 0 || (rc < 0 && rc >= -4095), $"rc {rc}");
            }
        }
    }

    /// <summary>Page-aligned native memory standing in for a userspace buffer (freed on dispose).</summary>
    private sealed class UserBuffer : IDisposable
    {
        private readonly nint _raw;

        public UserBuffer(ulong size)
        {
            Size = size;
            _raw = Marshal.AllocHGlobal((nint)(size + Ps));
            Address = ((ulong)_raw + Ps - 1) & ~(Ps - 1);
            WriteBytes(0, new byte[size]);
        }

        public ulong Address { get; }

        public ulong Size { get; }

        public void Fill(ulong offset, ulong length, byte value) => WriteBytes(offset, Enumerable.Repeat(value, (int)length).ToArray());

        public void WriteBytes(ulong offset, byte[] bytes) => Marshal.Copy(bytes, 0, (nint)(Address + offset), bytes.Length);

        public void Write<T>(ulong offset, T value) where T : unmanaged =>
            WriteBytes(offset, Raw.Bytes(ref value).ToArray());

        public T Read<T>(ulong offset) where T : unmanaged
        {
            var bytes = new byte[Marshal.SizeOf<T>()];
            Marshal.Copy((nint)(Address + offset), bytes, 0, bytes.Length);
            return MemoryMarshal.Read<T>(bytes);
        }

        public void Dispose() => Marshal.FreeHGlobal(_raw);
    }

    /// <summary>A struct in a read-only anonymous page of this process (mmap + mprotect via the emulator's host mm).</summary>
    private sealed class ReadOnlyRegion : IDisposable
    {
        private readonly nint _page;

        public ReadOnlyRegion(kvm_tdx_init_mem_region value)
        {
            // A private read-only mapping of a file holding the struct: readable, not writable.
            string path = Path.Combine(Path.GetTempPath(), $"kvmsharp-populate-{Environment.ProcessId}-{Guid.NewGuid():N}");
            var bytes = new byte[Ps];
            Raw.Bytes(ref value).CopyTo(bytes);
            File.WriteAllBytes(path, bytes);
            try
            {
                Assert.True(LinuxKernel.Instance.Open(path, O_RDONLY, out var fd) >= 0);
                using (fd!)
                    Assert.Equal(0, LinuxKernel.Instance.Mmap(0, Ps, PROT_READ, MAP_PRIVATE, fd, 0, out _page));
            }
            finally
            {
                File.Delete(path);
            }
        }

        public ulong Address => (ulong)_page;

        public void Dispose() => Assert.Equal(0, LinuxKernel.Instance.Munmap(_page, Ps));
    }
}
