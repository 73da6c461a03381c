// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.GuestMemfd;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// kvm_gmem_populate() through the vendor uAPI: TDX KVM_TDX_INIT_MEM_REGION (vCPU KVM_MEMORY_ENCRYPT_OP) and SEV-SNP
/// KVM_SEV_SNP_LAUNCH_UPDATE (VM KVM_MEMORY_ENCRYPT_OP). The sub-command structs and the source buffers live in real
/// process memory (<see cref="UserBuffer"/>), as the kernel reads them with copy_from_user.
/// </summary>
public sealed partial class PopulateTests : IDisposable
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
}
