// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_MEMORY_ENCRYPT_REG_REGION / UNREG_REGION on the SEV VM types (arch/x86/kvm/svm/sev.c
/// sev_mem_enc_register_region, sev_mem_enc_unregister_region, sev_pin_memory; Linux 6.18), which the real host here
/// cannot create: ENOTTY until KVM_SEV_INIT2, the pin's refusals, and the exact-match unregister.
/// </summary>
public sealed class SevEncRegionTests : IDisposable
{
    private const int Pages = 4;
    private static readonly ulong PageSize = (ulong)Environment.SystemPageSize;
    private readonly EmulatedKernel _k = new(EmulatorConfig.X86_64());
    private readonly Kvm _kvm;
    private readonly nint _memory;

    public SevEncRegionTests()
    {
        _kvm = Kvm.Open(_k, proposals: _k.Config.Proposals);
        Assert.Equal(0, HostMemory.Mmap(0, Pages * PageSize, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
            LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, -1, 0, out _memory));
    }

    public void Dispose()
    {
        HostMemory.Munmap(_memory, Pages * PageSize);
        _kvm.Dispose();
        _k.Dispose();
    }

    private ulong Base => (ulong)_memory;

    /// <summary>An SEV-type VM, past KVM_SEV_INIT2 when <paramref name="init"/>.</summary>
    private Vm SevVm(VmType type, bool init = true)
    {
        var vm = _kvm.CreateVm(type);
        if (!init) return vm;
        if (type == VmType.Snp)
        {
            using var snp = SnpLaunch.Open(vm);
            snp.Init();
        }
        else
        {
            using var sev = SevLaunch.Open(vm);
            sev.Init();
        }
        return vm;
    }

    private static Errno Fails(Action call) => Assert.Throws<KvmException>(call).Errno;

    private long Raw(Vm vm, uint request, ulong addr, ulong size)
    {
        var region = new kvm_enc_region { addr = addr, size = size };
        return _k.Ioctl(vm.Handle, request, System.Runtime.InteropServices.MemoryMarshal.AsBytes(
            System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref region, 1)));
    }

    [Theory]
    [InlineData(VmType.Sev)]
    [InlineData(VmType.SevEs)]
    [InlineData(VmType.Snp)]
    public void Before_init2_both_are_enotty_after_it_a_range_registers_and_unregisters(VmType type)
    {
        using var vm = SevVm(type, init: false);
        // sev_guest(kvm) is sev->active, which only KVM_SEV_INIT2 sets.
        Assert.Equal(Errno.ENOTTY, Fails(() => vm.RegisterEncryptedRegion(Base, PageSize)));
        Assert.Equal(Errno.ENOTTY, Fails(() => vm.UnregisterEncryptedRegion(Base, PageSize)));
        if (type == VmType.Snp)
        {
            using var snp = SnpLaunch.Open(vm);
            snp.Init();
        }
        else
        {
            using var sev = SevLaunch.Open(vm);
            sev.Init();
        }
        // 6.18 has no SNP refusal in sev_mem_enc_register_region: an SNP guest pins like the others.
        vm.RegisterEncryptedRegion(Base, Pages * PageSize);
        vm.UnregisterEncryptedRegion(Base, Pages * PageSize);
        Assert.Equal(Errno.EINVAL, Fails(() => vm.UnregisterEncryptedRegion(Base, Pages * PageSize)));
    }

    [Fact]
    public void The_argument_is_copied_before_anything_else_is_checked()
    {
        // x86.c kvm_arch_vm_ioctl: copy_from_user → EFAULT comes before the ENOTTY of a VM that is no SEV guest.
        using var before = SevVm(VmType.Sev, init: false);
        Assert.Equal(-(long)Errno.EFAULT, _k.Ioctl(before.Handle, KvmIoctls.KVM_MEMORY_ENCRYPT_REG_REGION, 0UL));
        Assert.Equal(-(long)Errno.EFAULT, _k.Ioctl(before.Handle, KvmIoctls.KVM_MEMORY_ENCRYPT_UNREG_REGION, new byte[15]));
        using var plain = _kvm.CreateVm();
        Assert.Equal(-(long)Errno.EFAULT, _k.Ioctl(plain.Handle, KvmIoctls.KVM_MEMORY_ENCRYPT_REG_REGION, 0UL));
        Assert.Equal(-(long)Errno.ENOTTY, Raw(plain, KvmIoctls.KVM_MEMORY_ENCRYPT_REG_REGION, Base, PageSize));
        Assert.Equal(-(long)Errno.ENOTTY, Raw(plain, KvmIoctls.KVM_MEMORY_ENCRYPT_UNREG_REGION, Base, PageSize));
    }

    [Fact]
    public void Unregister_wants_the_exact_address_and_size_and_duplicates_are_separate_entries()
    {
        using var vm = SevVm(VmType.SevEs);
        // list_add_tail without an overlap check: the same range twice, and a range inside it, all register.
        vm.RegisterEncryptedRegion(Base, 2 * PageSize);
        vm.RegisterEncryptedRegion(Base, 2 * PageSize);
        vm.RegisterEncryptedRegion(Base + 1, 100);
        // find_enc_region compares uaddr and size exactly.
        Assert.Equal(Errno.EINVAL, Fails(() => vm.UnregisterEncryptedRegion(Base, PageSize)));
        Assert.Equal(Errno.EINVAL, Fails(() => vm.UnregisterEncryptedRegion(Base + 1, 2 * PageSize)));
        Assert.Equal(Errno.EINVAL, Fails(() => vm.UnregisterEncryptedRegion(Base, 0)));
        vm.UnregisterEncryptedRegion(Base, 2 * PageSize);
        vm.UnregisterEncryptedRegion(Base, 2 * PageSize);
        Assert.Equal(Errno.EINVAL, Fails(() => vm.UnregisterEncryptedRegion(Base, 2 * PageSize)));
        vm.UnregisterEncryptedRegion(Base + 1, 100);
    }

    [Fact]
    public void Size_zero_and_a_wrapping_range_are_einval()
    {
        using var vm = SevVm(VmType.Sev);
        // sev_pin_memory: "if (ulen == 0 || uaddr + ulen < uaddr) return ERR_PTR(-EINVAL);"
        Assert.Equal(Errno.EINVAL, Fails(() => vm.RegisterEncryptedRegion(Base, 0)));
        Assert.Equal(Errno.EINVAL, Fails(() => vm.RegisterEncryptedRegion(Base, ulong.MaxValue - Base + 2)));
        Assert.Equal(Errno.EINVAL, Fails(() => vm.RegisterEncryptedRegion(0, 0)));
    }

    [Fact]
    public void A_range_the_pin_cannot_take_whole_is_enomem()
    {
        using var vm = SevVm(VmType.Sev);
        // pin_user_pages_fast(FOLL_WRITE) pins fewer pages than asked → "ret = -ENOMEM" (never EFAULT).
        Assert.Equal(0, HostMemory.Mprotect(_memory + (nint)(2 * PageSize), PageSize, LinuxConstants.PROT_READ));
        Assert.Equal(Errno.ENOMEM, Fails(() => vm.RegisterEncryptedRegion(Base, Pages * PageSize)));
        Assert.Equal(Errno.ENOMEM, Fails(() => vm.RegisterEncryptedRegion(Base + 2 * PageSize + 8, 8)));
        vm.RegisterEncryptedRegion(Base, 2 * PageSize);
        // Writable again, page 2 pins; a range reaching into an unmapped page, a page this process does not map, and
        // one above TASK_SIZE do not.
        Assert.Equal(0, HostMemory.Mprotect(_memory + (nint)(2 * PageSize), PageSize, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE));
        vm.RegisterEncryptedRegion(Base + 2 * PageSize + 8, 8);
        Assert.Equal(0, HostMemory.Munmap(_memory + (nint)(3 * PageSize), PageSize));
        Assert.Equal(Errno.ENOMEM, Fails(() => vm.RegisterEncryptedRegion(Base + 3 * PageSize - 1, 2)));
        Assert.Equal(Errno.ENOMEM, Fails(() => vm.RegisterEncryptedRegion(PageSize, PageSize)));
        Assert.Equal(Errno.ENOMEM, Fails(() => vm.RegisterEncryptedRegion(1UL << 48, PageSize)));
        // Crossing into a second page pins two pages, both writable here.
        vm.RegisterEncryptedRegion(Base + PageSize - 1, 2);
    }

    [Fact]
    public void More_than_int_max_pages_is_einval_for_a_process_the_memlock_limit_does_not_stop()
    {
        using var vm = SevVm(VmType.Sev);
        ulong size = (ulong)int.MaxValue * PageSize + PageSize; // INT_MAX + 1 pages
        // sev_pin_memory checks the memlock limit (ENOMEM unless CAP_IPC_LOCK) before "WARN_ON_ONCE(npages > INT_MAX)".
        Errno expected = HasCapIpcLock() || MemlockUnlimited() ? Errno.EINVAL : Errno.ENOMEM;
        Assert.Equal(expected, Fails(() => vm.RegisterEncryptedRegion(Base, size)));
        // INT_MAX pages exactly pass that check and fail the pin (not mapped).
        Assert.Equal(Errno.ENOMEM, Fails(() => vm.RegisterEncryptedRegion(Base, size - PageSize)));
    }

    private static bool HasCapIpcLock()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        return ((ulong.Parse(line[7..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture) >> 14) & 1) != 0;
    }

    private static bool MemlockUnlimited() =>
        File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max locked memory", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] == "unlimited";
}
