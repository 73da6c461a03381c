// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Confidential;

/// <summary>Turns on private memory for a micro-VM whose VM type and kernel offer it.</summary>
internal static class PrivateMemory
{
    /// <summary>
    /// When the guest_memfd can hold private pages and KVM can forward KVM_HC_MAP_GPA_RANGE, enables that exit
    /// (KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL)) and returns the converter; otherwise null, and a guest's VMCALL gets
    /// KVM's own answer (-KVM_ENOSYS upstream).
    /// </summary>
    public static MemoryConversion? Enable(Vm vm, GuestMemory memory)
    {
        if (!memory.SupportsPrivateMemory) return null;
        if ((vm.SupportedHypercallExits & HypercallExits.MapGpaRange) == 0)
        {
            throw new MicroVmException(
                $"VM type {vm.Type} has private guest_memfd pages but KVM_CAP_EXIT_HYPERCALL = 0x{(ulong)vm.SupportedHypercallExits:X} " +
                "does not forward KVM_HC_MAP_GPA_RANGE, so its guest could not ask for a conversion");
        }
        vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        return new MemoryConversion(memory);
    }
}
