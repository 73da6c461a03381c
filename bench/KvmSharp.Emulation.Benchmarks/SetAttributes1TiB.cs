// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using KvmSharp.Abi;
using KvmSharp.Emulation;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// KVM_SET_MEMORY_ATTRIBUTES2 through <see cref="GuestMemfd.SetAttributes"/> on a 1 TiB guest_memfd of the emulated
/// in-place conversion kernel (<c>EmulatorConfig.X86_64(inPlaceConversion: true)</c>, a SW_PROTECTED VM,
/// MMAP|INIT_SHARED). Attributes are merged ranges on both sides of the call (the emulator's RangeMap and the SDK's
/// SharedPageMap), so a call costs O(ranges), not O(pages): 268,435,456 pages convert in microseconds. Every row
/// reports the mean time of ONE SetAttributes call (OperationsPerInvoke = calls per invocation).
/// </summary>
[Config(typeof(BenchConfig))]
public class SetAttributes1TiB
{
    private const ulong TiB = 1UL << 40;
    private const ulong Private = KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE;

    /// <summary>Fragments in the fragmented map: private 512 MiB ranges at every other 512 MiB step.</summary>
    private const int Fragments = 1000;
    private const ulong FragmentBytes = 512UL << 20;

    private EmulatedKernel? _kernel;
    private Kvm? _kvm;
    private Vm? _vm;
    private GuestMemfd? _whole;
    private GuestMemfd? _fragmented;
    private GuestMemfd? _rebuilt;
    private GuestMemfd? _raw;

    [GlobalSetup]
    public void Setup()
    {
        _kernel = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        _kvm = Kvm.Open(_kernel);
        _vm = _kvm.CreateVm(VmType.SwProtected);
        const GuestMemfdFlags flags = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;
        _whole = _vm.CreateGuestMemfd(TiB, flags);
        _fragmented = _vm.CreateGuestMemfd(TiB, flags);
        _rebuilt = _vm.CreateGuestMemfd(TiB, flags);
        Fragment(_fragmented);
        _raw = _vm.CreateGuestMemfd(TiB, flags);
        for (int i = 0; i < Fragments; i++)
            RawSet(2 * (ulong)i * FragmentBytes, FragmentBytes, Private);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _raw?.Dispose();
        _rebuilt?.Dispose();
        _fragmented?.Dispose();
        _whole?.Dispose();
        _vm?.Dispose();
        _kvm?.Dispose();
        _kernel?.Dispose();
    }

    /// <summary>1 TiB → private, then back to shared, on a file whose map is one range: 2 calls.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = 2)]
    public void Whole1TiB()
    {
        _whole!.SetAttributes(0, TiB, Private);
        _whole.SetAttributes(0, TiB, 0);
    }

    /// <summary>
    /// One 512 MiB gap in the middle of 1,000 private fragments → private (merging three ranges into one), then
    /// back (splitting them again): the cost of one call when the maps hold ~1,000 ranges. 2 calls.
    /// </summary>
    [Benchmark(OperationsPerInvoke = 2)]
    public void ToggleAmong1000Ranges()
    {
        const ulong gap = (2 * (Fragments / 2) + 1) * FragmentBytes;
        _fragmented!.SetAttributes(gap, FragmentBytes, Private);
        _fragmented.SetAttributes(gap, FragmentBytes, 0);
    }

    /// <summary>
    /// The same toggle as <see cref="ToggleAmong1000Ranges"/> as a raw KVM_SET_MEMORY_ATTRIBUTES2 ioctl on the
    /// emulated kernel (a fourth 1 TiB file, fragmented the same way through raw calls): the emulator's own cost,
    /// without the SDK's SharedPageMap bookkeeping. 2 calls.
    /// </summary>
    [Benchmark(OperationsPerInvoke = 2)]
    public void ToggleAmong1000Ranges_RawIoctl()
    {
        const ulong gap = (2 * (Fragments / 2) + 1) * FragmentBytes;
        RawSet(gap, FragmentBytes, Private);
        RawSet(gap, FragmentBytes, 0);
    }

    /// <summary>
    /// Build 1,000 alternating private ranges one call at a time (the maps grow to 1,000 ranges), then collapse
    /// them with one 1 TiB private call and one 1 TiB shared call: 1,002 calls, mean per call.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Fragments + 2)]
    public void Build1000RangesThenCollapse()
    {
        Fragment(_rebuilt!);
        _rebuilt!.SetAttributes(0, TiB, Private);
        _rebuilt.SetAttributes(0, TiB, 0);
    }

    private void RawSet(ulong offset, ulong size, ulong attributes)
    {
        var args = new kvm_memory_attributes2 { offset = offset, size = size, attributes = attributes };
        long rc = _kernel!.Ioctl(_raw!.Handle, _kvm!.Proposals.SetMemoryAttributes2Request, MemoryMarshal.AsBytes(new Span<kvm_memory_attributes2>(ref args)));
        if (rc != 0) throw new InvalidOperationException($"KVM_SET_MEMORY_ATTRIBUTES2: {rc}");
    }

    private static void Fragment(GuestMemfd memfd)
    {
        for (int i = 0; i < Fragments; i++)
            memfd.SetAttributes(2 * (ulong)i * FragmentBytes, FragmentBytes, Private);
    }
}
