// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// One image in two micro-VMs side by side, on the real kernel and on the emulator built like this host — the fixture
/// of the guest-code benchmarks (GuestMemset and GuestMemcpy: 4 MiB of host memory on both; GuestSum: the real kernel's
/// best memory and the emulator's guest_memfd).
/// </summary>
internal sealed class MicroVmPair : IDisposable
{
    private readonly Kvm _realKvm;
    private readonly EmulatedKernel _kernel;
    private readonly Kvm _emulatedKvm;

    /// <summary>
    /// <paramref name="realMemory"/> null: the best the real kernel offers. The emulator has guest_memfd only when
    /// <paramref name="emulatedMemory"/> asks for it.
    /// </summary>
    public MicroVmPair(GuestImage image, GuestMemoryBacking? realMemory = GuestMemoryBacking.HostMemory,
        GuestMemoryBacking emulatedMemory = GuestMemoryBacking.HostMemory, ulong memorySize = 4 << 20)
    {
        _realKvm = Kvm.Open();
        Real = MicroVm.Create(image, Options(_realKvm, realMemory, memorySize));
        _kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: emulatedMemory == GuestMemoryBacking.GuestMemfd));
        _emulatedKvm = Kvm.Open(_kernel);
        Emulated = MicroVm.Create(image, Options(_emulatedKvm, emulatedMemory, memorySize));
    }

    public MicroVm Real { get; }

    public MicroVm Emulated { get; }

    private static MicroVmOptions Options(Kvm kvm, GuestMemoryBacking? memory, ulong memorySize) =>
        new() { Kvm = kvm, Timeout = TimeSpan.FromSeconds(60), Memory = memory, MemorySize = memorySize };

    public void Dispose()
    {
        Real.Dispose();
        _realKvm.Dispose();
        Emulated.Dispose();
        _emulatedKvm.Dispose();
        _kernel.Dispose();
    }
}
