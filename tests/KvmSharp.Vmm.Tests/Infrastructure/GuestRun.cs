// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>Runs one image in a fresh micro-VM.</summary>
public static class GuestRun
{
    public static MicroVmOptions Quick { get; } = new() { Timeout = TimeSpan.FromMilliseconds(300), MaxExits = 100_000 };

    public static CallResult Run(GuestImage image, MicroVmOptions? options = null)
    {
        using var vm = MicroVm.Create(image, options ?? Quick);
        return vm.Run();
    }
}
