// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Private memory: VM type 0 has none (with either backing, on either kernel), so the micro-VM does not offer it and
/// the vault guest is told so; host memory has none even where the VM type does. The emulated kernel covers the
/// conversions themselves (KvmSharp.Emulation.Tests: ConfidentialMicroVmTests).
/// </summary>
public sealed class PrivateMemoryTests
{
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_default_vm_offers_no_private_memory_and_the_vault_guest_stops_before_any_hypercall(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Vault.Image(), k.Options(backing) with { HostFunctions = Vault.Functions(TextWriter.Null) });
        Assert.Equal(backing, vm.Memory.Backing);
        Assert.Null(vm.Conversion);
        Assert.False(vm.Memory.SupportsPrivateMemory);
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(Vault.NoPrivateMemory, r.Status);
        Assert.Equal(0, r.Conversions);
        Assert.Equal(CallRegion.FeatureConsoleWrite, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Features)));
        Assert.Equal(CallRegion.VersionValue, vm.Memory.Read<uint>(CallRegion.Address(CallRegion.Version)));
    }

    [Fact]
    public void Host_memory_has_no_private_pages_even_on_a_vm_type_with_them()
    {
        // SW_PROTECTED with in-place conversion: with a guest_memfd the vault hides its secret (ConfidentialMicroVmTests);
        // in host memory there is nothing to convert, so the guest is told so and never issues the hypercall.
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        var options = k.Options(GuestMemoryBacking.HostMemory) with { VmType = VmType.SwProtected, HostFunctions = Vault.Functions(TextWriter.Null) };
        using var vm = MicroVm.Create(Vault.Image(), options);
        Assert.Equal(GuestMemoryBacking.HostMemory, vm.Memory.Backing);
        Assert.Null(vm.GuestMemfdUnavailableReason); // guest_memfd was there; host memory was asked for
        Assert.Null(vm.Conversion);
        Assert.False(vm.Memory.SupportsPrivateMemory);
        var r = vm.Run();
        Assert.Equal(Vault.NoPrivateMemory, r.Status);
        Assert.Equal(0, r.Conversions);

        // The same VM type with guest_memfd memory does convert: the comparison is meaningful.
        using var gmem = MicroVm.Create(Vault.Image(), options with { Memory = GuestMemoryBacking.GuestMemfd });
        Assert.NotNull(gmem.Conversion);
        var converted = gmem.Run();
        Assert.Equal(0, converted.Status);
        Assert.True(converted.Conversions > 0);
    }

    [KvmFact]
    public void A_vm_type_the_host_lacks_is_refused_with_the_types_it_offers()
    {
        using var kvm = Kvm.Open();
        Skip.If(kvm.SupportedVmTypes.Contains(VmType.SwProtected),
            $"this host offers SW_PROTECTED VMs ({string.Join(", ", kvm.SupportedVmTypes)}): nothing to refuse");
        var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Vault.Image(), GuestRun.Quick with { Kvm = kvm, VmType = VmType.SwProtected }));
        Assert.Contains("KVM_CAP_VM_TYPES", e.Message, StringComparison.Ordinal);
        Assert.Contains("SwProtected", e.Message, StringComparison.Ordinal);
    }
}
