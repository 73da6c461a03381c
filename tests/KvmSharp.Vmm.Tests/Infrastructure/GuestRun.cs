// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// The options of every test about the sandbox's general behaviour (outcomes, calls, watchdog, host calls, loader,
/// pool, leaks): this machine's /dev/kvm, with the best guest memory it offers (<see cref="RealKernel.Backing"/>), so
/// they test real KVM on a host with guest_memfd and on one without. Tests of one backing say so themselves
/// (<see cref="TestKernel"/>).
/// </summary>
public static class GuestRun
{
    /// <summary>The library's defaults, except guest memory: the real kernel's best (never a silent fallback).</summary>
    public static MicroVmOptions Default { get; } = new() { Memory = RealKernel.Backing };

    /// <summary>
    /// For guests that finish: a limit far above what they need (this host runs guest code at ≈1.5 µs an instruction,
    /// and a loaded CI machine slower still), so only a hung guest reaches it. Tests of the watchdog set their own.
    /// </summary>
    public static MicroVmOptions Quick { get; } = Default with { Timeout = TimeSpan.FromSeconds(10), MaxExits = 100_000 };

    public static CallResult Run(GuestImage image, MicroVmOptions? options = null)
    {
        using var vm = MicroVm.Create(image, options ?? Quick);
        return vm.Run();
    }

    /// <summary>Calls <paramref name="name"/>, asserts it returned, and gives its result.</summary>
    public static ulong Value(MicroVm vm, string name, params ReadOnlySpan<ulong> args)
    {
        ArgumentNullException.ThrowIfNull(vm);
        CallResult r = vm.Call(name, args);
        Assert.True(r.IsSuccess, r.ToString());
        return r.Value!.Value;
    }
}
