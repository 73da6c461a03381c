// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A micro-VM with private memory: SW_PROTECTED on x86_64 with the v8 in-place conversion series, which no kernel on
/// this machine has. The guest converts with KVM_HC_MAP_GPA_RANGE, the VMM answers with KVM_SET_MEMORY_ATTRIBUTES2.
/// </summary>
public sealed class ConfidentialMicroVmTests
{
    private static EmulatedKernel InPlaceConversionKernel() => new(EmulatorConfig.X86_64(inPlaceConversion: true));

    private static MicroVm Create(Kvm kvm, VmType type = VmType.SwProtected, TextWriter? log = null) =>
        MicroVm.Create(Vault.Image(), new MicroVmOptions
        {
            Kvm = kvm,
            VmType = type,
            Timeout = TimeSpan.FromSeconds(20),
            HostFunctions = Vault.Functions(log ?? TextWriter.Null),
        });

    private static ulong SecretSum => (ulong)Encoding.ASCII.GetBytes(Vault.Secret).Sum(b => (long)b);

    [Fact]
    public void Memory_without_private_pages_cannot_serve_conversions()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        {
            using var hostBacked = MicroVm.Create(Vault.Image(), new MicroVmOptions { Kvm = kvm, Memory = GuestMemoryBacking.HostMemory });
            using var defaultVm = MicroVm.Create(Vault.Image(), new MicroVmOptions { Kvm = kvm });
            foreach (var memory in new[] { hostBacked.Memory, defaultVm.Memory })
            {
                var ex = Assert.Throws<ArgumentException>(() => new KvmSharp.Vmm.Confidential.MemoryConversion(memory));
                Assert.Contains("without private pages", ex.Message, StringComparison.Ordinal);
            }
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void Vault_demo_hides_the_secret_from_the_host_while_private_and_shows_it_after_conversion_back()
    {
        using var k = InPlaceConversionKernel();
        var log = new StringWriter();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var vm = Create(kvm, log: log))
        {
            var r = vm.Run();
            Assert.True(r.IsSuccess, r.ToString() + r.Console);
            Assert.Contains("the host's peek was refused", r.Console, StringComparison.Ordinal);
            Assert.Contains("the host read the same bytes", r.Console, StringComparison.Ordinal);
            Assert.Contains($"read \"{Vault.Secret}\"", log.ToString(), StringComparison.Ordinal);
            Assert.Equal(2, vm.Conversion!.Converted);
            Assert.Equal(0, vm.Conversion.Refused);
            Assert.Equal(2, r.Conversions);
            Assert.Equal(0, vm.Call("checksum").Conversions);
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void A_sealed_page_is_private_to_the_host_readable_by_the_guest_and_keeps_its_bytes_when_shared_again()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = Create(kvm);
        byte[] secret = Encoding.ASCII.GetBytes("sixteen bytes!!!");
        Assert.Equal(0UL, vm.Call("seal", secret).Value);

        Assert.False(vm.Memory.IsShared(Vault.Page, Layout.PageSize));
        var fault = Assert.Throws<GuestMemoryFaultException>(() => vm.Memory.Read<ulong>(Vault.Page));
        Assert.Equal(GuestMemoryFault.PrivatePage, fault.Fault);
        // The neighbours stay shared: conversion is per page.
        Assert.True(vm.Memory.IsShared(Vault.Page + Layout.PageSize, Layout.PageSize));

        Assert.Equal((ulong)secret.Sum(b => (long)b), vm.Call("checksum").Value);
        Assert.Equal(0UL, vm.Call("unseal").Value);
        // In-place conversion keeps the contents on SW_PROTECTED (v8 selftests: init_private, "content preserved").
        Assert.Equal((ulong)secret.Length, vm.Memory.Read<ulong>(Vault.Page));
        var back = new byte[secret.Length];
        vm.Memory.Read(Vault.Page + sizeof(ulong), back);
        Assert.Equal(secret, back);
    }

    [Theory]
    [InlineData(0x1000UL, 1UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED, -KvmPara.KVM_EPERM)]           // the GDT: host-owned
    [InlineData(Layout.CallData, 1UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED, -KvmPara.KVM_EPERM)]     // call data: host-owned
    [InlineData(0x1F_F000UL, 2UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED, -KvmPara.KVM_EFAULT)]        // runs past 2 MiB
    [InlineData(Vault.Page, 1UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED | (1UL << 5), -KvmPara.KVM_EINVAL)] // reserved bit
    [InlineData(Vault.Page, 1UL, KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_2M | KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED, 0L)] // a hint only
    public void The_vmm_answers_each_request_with_the_hypercall_return_value(ulong gpa, ulong pages, ulong attributes, long expected)
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = Create(kvm);
        var r = vm.Call("map_gpa_range", gpa, pages, attributes);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(expected, (long)r.Value!.Value);
        Assert.Equal(expected == 0 ? 1 : 0, vm.Conversion!.Converted);
        Assert.Equal(expected == 0 ? 0 : 1, vm.Conversion.Refused);
        if (expected != 0) Assert.NotNull(vm.Conversion.LastRefusal);
        // A refused request changes nothing: every page is still shared.
        if (expected != 0) Assert.True(vm.Memory.IsShared(0, vm.Memory.Size));
    }

    [Fact]
    public void Kvm_itself_refuses_an_unaligned_gpa_without_an_exit()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = Create(kvm);
        // x86.c ____kvm_emulate_hypercall: !PAGE_ALIGNED(gpa) → -KVM_EINVAL in RAX, no KVM_EXIT_HYPERCALL.
        var r = vm.Call("map_gpa_range", Vault.Page + 8, 1, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED);
        Assert.Equal(-KvmPara.KVM_EINVAL, (long)r.Value!.Value);
        Assert.Equal(0, vm.Conversion!.Converted + vm.Conversion.Refused);
    }

    [Fact]
    public void Sealing_an_already_private_page_succeeds_and_the_host_peek_is_still_refused()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = Create(kvm);
        Assert.Equal(0UL, vm.Call("seal", Encoding.ASCII.GetBytes("x")).Value);
        // _start would stop at seal (already private is fine: converting again succeeds) and then peek: refused.
        var r = vm.Run();
        Assert.True(r.IsSuccess, r.ToString() + r.Console);
        Assert.Contains("the host's peek was refused", r.Console, StringComparison.Ordinal);
    }

    [Fact]
    public void Reset_makes_every_page_shared_again_and_the_demo_runs_twice()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = Create(kvm);
        Assert.Equal(0UL, vm.Call("seal", Encoding.ASCII.GetBytes("secret")).Value);
        vm.Reset();
        Assert.True(vm.Memory.IsShared(0, vm.Memory.Size));
        Assert.Equal(0UL, vm.Memory.Read<ulong>(Vault.Page));
        Assert.True(vm.Run().IsSuccess);
        Assert.True(vm.Run().IsSuccess);
    }

    [Fact]
    public void Without_private_memory_the_guest_is_told_so_and_never_issues_the_hypercall()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(k);
        using var vm = Create(kvm, VmType.Default);
        Assert.Null(vm.Conversion);
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(Vault.NoPrivateMemory, r.Status);
        Assert.Contains("no private memory", r.Console, StringComparison.Ordinal);
    }

    [Fact]
    public void Mainline_sw_protected_cannot_be_guest_memfd_only_and_says_which_flags_are_missing()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: false));
        using var kvm = Kvm.Open(k);
        var e = Assert.Throws<MicroVmException>(() => Create(kvm));
        Assert.Contains("KVM_CAP_GUEST_MEMFD_FLAGS = 0x1", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(1, k.OpenFdCount); // only /dev/kvm
    }

    [Fact]
    public void A_vm_type_the_kernel_lacks_is_named_with_the_types_it_has()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(k);
        var e = Assert.Throws<MicroVmException>(() => Create(kvm, VmType.Tdx));
        Assert.Contains("KVM_CAP_VM_TYPES: Default", e.Message, StringComparison.Ordinal);
    }
}
