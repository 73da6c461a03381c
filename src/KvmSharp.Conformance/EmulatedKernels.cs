// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Conformance;

/// <summary>The emulator configurations behind <see cref="EmulatedProfile"/>.</summary>
public static class EmulatedKernels
{
    public static IKernel Create(EmulatedProfile profile) => new EmulatedKernel(Config(profile));

    public static EmulatorConfig Config(EmulatedProfile profile) => profile switch
    {
        EmulatedProfile.LikeThisHost => EmulatorConfig.LikeThisHost(),
        EmulatedProfile.X86InPlaceConversion => EmulatorConfig.X86_64(inPlaceConversion: true),
        EmulatedProfile.X86 => EmulatorConfig.X86_64(inPlaceConversion: false),
        EmulatedProfile.Arm64 => EmulatorConfig.Arm64(),
        EmulatedProfile.LikeThisHostWithoutGuestMemfd => EmulatorConfig.LikeThisHost(guestMemfd: false),
        _ => throw new ArgumentOutOfRangeException(nameof(profile), profile, "unknown emulator profile"),
    };
}
