// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// GUEST_MEMFD_FLAG_NO_DIRECT_MAP ("[PATCH v12 00/16] Direct Map Removal Support for guest_memfd") in the emulator:
/// the switch is off in every preset, kvm_arch_gmem_supports_no_direct_map per arch, one meaning per flag bit, GUP
/// refused on such files.
/// </summary>
public sealed class NoDirectMapTests
{
    private const int Flags = KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS;
    private const ulong Ndm = 1UL << 2;

    private static (long System, long Vm) FlagCaps(EmulatorConfig config, ulong type = 0)
    {
        using var k = new EmulatedKernel(config);
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys, type);
        return (Raw.Cap(k, sys, Flags), Raw.Cap(k, vm, Flags));
    }

    [Fact]
    public void Every_preset_leaves_the_proposal_off()
    {
        EmulatorConfig[] presets =
        [
            EmulatorConfig.LikeThisHost(), EmulatorConfig.LikeThisHost(guestMemfd: false), HostMatching.LikeThisHostAsItIs(),
            EmulatorConfig.X86_64(), EmulatorConfig.X86_64(inPlaceConversion: true), EmulatorConfig.Arm64(),
        ];
        foreach (var config in presets)
        {
            Assert.False(config.GuestMemfdNoDirectMap);
            Assert.Equal(0, FlagCaps(config).System & (long)Ndm);
        }
    }

    [Theory]
    // [PATCH v12 08/16]: x86 excludes TDX and SNP only.
    [InlineData(KvmConstants.KVM_X86_DEFAULT_VM, true)]
    [InlineData(KvmConstants.KVM_X86_SW_PROTECTED_VM, true)]
    [InlineData(KvmConstants.KVM_X86_SEV_VM, true)]
    [InlineData(KvmConstants.KVM_X86_SEV_ES_VM, true)]
    [InlineData(KvmConstants.KVM_X86_SNP_VM, false)]
    [InlineData(KvmConstants.KVM_X86_TDX_VM, false)]
    public void X86_lists_the_flag_per_vm_type_and_dev_kvm_always(uint type, bool listed)
    {
        var (system, vm) = FlagCaps(EmulatorConfig.X86_64() with { GuestMemfdNoDirectMap = true }, type);
        Assert.Equal(Ndm, (ulong)system & Ndm);
        Assert.Equal(listed, ((ulong)vm & Ndm) != 0);
    }

    [Theory]
    // [PATCH v12 09/16]: arm64 needs can_set_direct_map() and FEAT_S2FWB; /dev/kvm lists the flag regardless (!kvm).
    [InlineData(true, true, true)]
    [InlineData(false, true, false)]
    [InlineData(true, false, false)]
    public void Arm64_needs_a_page_granular_direct_map_and_stage2_fwb(bool canSetDirectMap, bool fwb, bool listed)
    {
        var config = EmulatorConfig.Arm64() with { GuestMemfdNoDirectMap = true, CanSetDirectMap = canSetDirectMap, Arm64Stage2Fwb = fwb };
        var (system, vm) = FlagCaps(config);
        Assert.Equal(0x7, system);
        Assert.Equal(listed ? 0x7 : 0x3, vm);
    }

    [Fact]
    public void Creation_follows_the_capability_and_a_refusal_changes_nothing()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64() with { GuestMemfdNoDirectMap = true });
        using var sys = Raw.OpenKvm(k);
        using var snp = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_SNP_VM);
        int fds = k.OpenFdCount;
        Assert.Equal(Raw.EINVAL, Raw.CreateGmemRc(k, snp, (ulong)Raw.Page, Ndm));
        Assert.Equal(fds, k.OpenFdCount);
        using var vm = Raw.CreateVm(k, sys);
        // No dependency on MMAP or INIT_SHARED.
        foreach (ulong flags in new[] { Ndm, Ndm | KvmConstants.GUEST_MEMFD_FLAG_MMAP, Ndm | KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED })
        {
            long fd = Raw.CreateGmemRc(k, vm, (ulong)Raw.Page, flags);
            Assert.True(fd >= 0, $"flags 0x{flags:X}: {fd}");
            Assert.Equal(0, k.Close((int)fd));
        }
    }

    [Fact]
    public void Flags_hi_and_an_extra_flag_stay_consistent_with_the_proposal()
    {
        var config = EmulatorConfig.X86_64() with
        {
            GuestMemfdNoDirectMap = true, GuestMemfdFlagsHiCap = 4001, ExtraGuestMemfdFlags = (1UL << 40) | (1UL << 3),
        };
        using var k = new EmulatedKernel(config);
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(0xF, Raw.Cap(k, sys, Flags));
        Assert.Equal(1L << 8, Raw.Cap(k, sys, 4001));
    }

    [Fact]
    public void Bit_2_has_one_meaning_and_the_proposal_needs_a_6_18_tree()
    {
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(EmulatorConfig.X86_64() with { GuestMemfdNoDirectMap = true, ExtraGuestMemfdFlags = Ndm }));
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux611) with { GuestMemfdNoDirectMap = true }));
        // Without the proposal an extra bit 2 is accepted with no behaviour: GUP still works on such a file.
        using var k = new EmulatedKernel(EmulatorConfig.X86_64() with { ExtraGuestMemfdFlags = Ndm });
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var g = Raw.CreateGmem(k, vm, (ulong)Raw.Page, Ndm | KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED);
        Assert.Equal(0, k.PinGuestMemfdPage(g, 0, out var pin));
        pin!.Dispose();
    }

    [Fact]
    public void A_long_term_pin_is_refused_on_a_no_direct_map_file()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64() with { GuestMemfdNoDirectMap = true });
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        const ulong Shared = KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED;
        using var plain = Raw.CreateGmem(k, vm, (ulong)Raw.Page, Shared);
        using var ndm = Raw.CreateGmem(k, vm, (ulong)Raw.Page, Shared | Ndm);
        Assert.Equal(0, k.PinGuestMemfdPage(plain, 0, out var pin));
        pin!.Dispose();
        // [PATCH v12 06/16] check_vma_flags: AS_NO_DIRECT_MAP → -EFAULT.
        Assert.Equal(Raw.EFAULT, k.PinGuestMemfdPage(ndm, 0, out var refused));
        Assert.Null(refused);
    }
}
