// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Private memory on this machine's kernel: VM type 0 has none, so the micro-VM does not offer it and the vault guest
/// is told so (the emulated kernel covers the conversions themselves: ConfidentialMicroVmTests).
/// </summary>
public sealed class PrivateMemoryTests
{
    [KvmFact]
    public void A_default_vm_offers_no_private_memory_and_the_vault_guest_stops_before_any_hypercall()
    {
        using var vm = MicroVm.Create(Vault.Image(), GuestRun.Quick with { HostFunctions = Vault.Functions(TextWriter.Null) });
        Assert.Null(vm.Conversion);
        Assert.False(vm.Memory.SupportsPrivateMemory);
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(Vault.NoPrivateMemory, r.Status);
        Assert.Equal(0UL, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Features)));
        Assert.Equal(CallRegion.VersionValue, vm.Memory.Read<uint>(CallRegion.Address(CallRegion.Version)));
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
