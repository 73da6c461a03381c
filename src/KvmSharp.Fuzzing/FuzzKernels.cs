// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>The two kernels a differential run on this machine compares.</summary>
public static class FuzzKernels
{
    /// <summary>The reference: this machine's kernel.</summary>
    public static IKernel Real() => LinuxKernel.Instance;

    /// <summary>
    /// The candidate: a fresh emulator with the preset that matches the machine running now
    /// (<see cref="HostMatching.LikeThisHostAsItIs"/>: EmulatorConfig.LikeThisHost with guest_memfd where /dev/kvm
    /// offers it, without where the kernel was built without CONFIG_KVM_GUEST_MEMFD).
    /// </summary>
    public static IKernel EmulatorLikeThisMachine() => new EmulatedKernel(HostMatching.LikeThisHostAsItIs());
}
