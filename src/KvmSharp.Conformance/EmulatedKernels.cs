// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Conformance;

/// <summary>The emulator configurations behind <see cref="EmulatedProfile"/>.</summary>
internal static class EmulatedKernels
{
    public static IKernel Create(EmulatedProfile profile) => new EmulatedKernel(profile switch
    {
        EmulatedProfile.LikeThisHost => EmulatorConfig.LikeThisHost(),
        EmulatedProfile.X86InPlaceConversion => EmulatorConfig.X86_64(inPlaceConversion: true),
        EmulatedProfile.X86 => EmulatorConfig.X86_64(inPlaceConversion: false),
        EmulatedProfile.Arm64 => EmulatorConfig.Arm64(),
        _ => throw new ArgumentOutOfRangeException(nameof(profile), profile, "unknown emulator profile"),
    });
}
