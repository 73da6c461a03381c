// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// One image in two 4 MiB micro-VMs in host memory, side by side: on the real kernel and on the emulator built like
/// this host — the fixture of the guest string-instruction benchmarks (GuestMemset, GuestMemcpy).
/// </summary>
internal sealed class MicroVmPair : IDisposable
{
    private readonly Kvm _realKvm;
    private readonly EmulatedKernel _kernel;
    private readonly Kvm _emulatedKvm;

    public MicroVmPair(GuestImage image)
    {
        _realKvm = Kvm.Open();
        Real = MicroVm.Create(image, Options(_realKvm));
        _kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false));
        _emulatedKvm = Kvm.Open(_kernel);
        Emulated = MicroVm.Create(image, Options(_emulatedKvm));
    }

    public MicroVm Real { get; }

    public MicroVm Emulated { get; }

    private static MicroVmOptions Options(Kvm kvm) =>
        new() { Kvm = kvm, Timeout = TimeSpan.FromSeconds(60), Memory = GuestMemoryBacking.HostMemory, MemorySize = 4 << 20 };

    public void Dispose()
    {
        Real.Dispose();
        _realKvm.Dispose();
        Emulated.Dispose();
        _emulatedKvm.Dispose();
        _kernel.Dispose();
    }
}
