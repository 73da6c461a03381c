// SPDX-License-Identifier: MIT
using KvmSharp.Conformance;
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Infrastructure;

/// <summary>
/// The kernels an SDK test body runs on: the conformance suite's targets (the same body checks the real kernel and
/// keeps the emulator honest), and this machine as it would be on older kernels, so the SDK's answers there (legacy
/// ioctls, capability errors) and the tests' skips are checked too.
/// </summary>
public static class Kernels
{
    /// <summary>This machine on Linux 6.1: no KVM_SET_USER_MEMORY_REGION2, no guest_memfd.</summary>
    public const string Emulated61 = "emulated-6.1";

    /// <summary>This machine on a 6.11–6.15 distro kernel: guest_memfd (KVM_AMD_SEV selects it) without MMAP.</summary>
    public const string Emulated611 = "emulated-6.11";

    /// <summary>Theory data: one row per kernel.</summary>
    public static TheoryData<string> All
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var target in KernelTarget.All) data.Add(target.Name);
            data.Add(Emulated61);
            data.Add(Emulated611);
            return data;
        }
    }

    public static IKernel Create(string name) => name switch
    {
        Emulated61 => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false, KernelGeneration.Linux61)),
        Emulated611 => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: true, KernelGeneration.Linux611)),
        _ => KernelTarget.Parse(name).CreateKernel(EmulatedProfile.LikeThisHost),
    };
}
