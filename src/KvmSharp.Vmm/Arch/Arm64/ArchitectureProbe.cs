// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Arm64;
using KvmSharp.Kernel;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// Which instruction set a <see cref="Kvm"/>'s VMs run. The real kernel's is the machine's (the process's
/// architecture: KVM runs guests of the host's instruction set), asked of nothing; another kernel (the emulated one,
/// which can be either) is asked once per <see cref="Kvm"/> object: KVM_ARM_PREFERRED_TARGET on a VM succeeds only on
/// arm64 (arch/arm64/kvm/arm.c kvm_arch_vm_ioctl; x86 has no such ioctl: ENOTTY).
/// </summary>
internal static class ArchitectureProbe
{
    private static readonly ConditionalWeakTable<Kvm, StrongBox<GuestArchitecture>> Known = [];

    public static GuestArchitecture Of(Kvm kvm, Vm vm)
    {
        if (kvm.Kernel is LinuxKernel)
            return RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? GuestArchitecture.Arm64 : GuestArchitecture.X86_64;
        if (Known.TryGetValue(kvm, out StrongBox<GuestArchitecture>? known)) return known.Value;
        GuestArchitecture found;
        try
        {
            vm.PreferredTarget();
            found = GuestArchitecture.Arm64;
        }
        catch (KvmException)
        {
            found = GuestArchitecture.X86_64;
        }
        Known.AddOrUpdate(kvm, new StrongBox<GuestArchitecture>(found));
        return found;
    }
}
