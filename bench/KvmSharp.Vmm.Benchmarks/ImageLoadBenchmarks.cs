// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using KvmSharp.Emulation;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// (h) Loading an image into a fresh guest_memfd, as <see cref="MicroVm.Create(GuestImage, MicroVmOptions?)"/> and a full
/// <see cref="MicroVm.Reset"/> do, on the emulated kernel with GUEST_MEMFD_FLAG_WRITE ("[PATCH v7 1/2] KVM: guest_memfd:
/// add generic population via write"; no host offers it): copied through the mapping (the baseline, what every kernel
/// without the flag gets) against pwrite(2) on the guest_memfd (<see cref="MicroVm.LastImageLoad"/> =
/// <see cref="ImageLoadMethod.GuestMemfdWrite"/>), side by side in one run. Each operation punches the 32 MiB file
/// (Discard, as Reset does) and loads a flat image of <see cref="MiB"/> MiB of random bytes; the "discard only" row is
/// the punch alone, to subtract. Ratio = row / mapping copy.
/// </summary>
[Config(typeof(BenchConfig))]
public class ImageLoadBenchmarks
{
    private EmulatedKernel _kernel = null!;
    private Kvm _kvm = null!;
    private Vm _vm = null!;
    private GuestMemory _memory = null!;
    private GuestImage _image = null!;

    /// <summary>The image's size in MiB.</summary>
    [Params(1, 16)]
    public int MiB { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost() with { GuestMemfdWrite = true });
        _kvm = Kvm.Open(_kernel, proposals: _kernel.Config.Proposals);
        _vm = _kvm.CreateVm();
        _memory = GuestMemory.Create(_vm, 32UL << 20, GuestMemoryBacking.GuestMemfd, DirectMapUse.Keep, guestMemfdChecked: false);
        if (!_memory.PopulatesByWrite) throw new InvalidOperationException("the emulated guest_memfd does not take write(2)");
        byte[] bytes = new byte[MiB << 20];
        new Random(1).NextBytes(bytes);
        _image = GuestImage.FromFlat(bytes);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _memory.Dispose();
        _vm.Dispose();
        _kvm.Dispose();
        _kernel.Dispose();
    }

    [Benchmark(Baseline = true, Description = "discard + copy through the mapping")]
    public ImageLoadMethod MappingCopy()
    {
        _memory.Discard();
        return _image.WriteToFresh(_memory, preferWrite: false);
    }

    [Benchmark(Description = "discard + pwrite on the guest_memfd")]
    public ImageLoadMethod GuestMemfdWrite()
    {
        _memory.Discard();
        return _image.WriteToFresh(_memory);
    }

    [Benchmark(Description = "discard only")]
    public void DiscardOnly() => _memory.Discard();
}
