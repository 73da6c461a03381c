// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using KvmSharp.Emulation;
using KvmSharp.Memory;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// First touch of a 1 GiB guest_memfd mapping, the same SDK code on both kernels: create the file
/// (MMAP|INIT_SHARED), map it, write one byte per 4 KiB page through <see cref="GuestMapping.Write{T}"/>, dispose
/// the mapping and the file. A fresh file per operation, so every page is faulted in for the first time: on the
/// real kernel by the guest_memfd fault handler, on the emulator by the host's fault on the backing file.
/// OperationsPerInvoke = pages, so Mean is the cost PER PAGE; Ratio = emulated / real.
/// </summary>
[Config(typeof(BenchConfig))]
public class FirstTouch1GiB
{
    private const ulong Bytes = 1UL << 30;
    private const ulong Page = 4096;
    private const int Pages = (int)(Bytes / Page);

    private Kvm? _realKvm;
    private Vm? _realVm;
    private EmulatedKernel? _kernel;
    private Kvm? _emuKvm;
    private Vm? _emuVm;

    [GlobalSetup]
    public void Setup()
    {
        _realKvm = Kvm.Open();
        _realVm = _realKvm.CreateVm();
        _kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        _emuKvm = Kvm.Open(_kernel);
        _emuVm = _emuKvm.CreateVm();
        Console.WriteLine($"// private huge-page tmpfs for emulated guest memory: {(HostMemory.HugeTmpfsAvailable ? "available" : "unavailable (memfd)")}; " +
            $"shmem_enabled: {ReadSys("/sys/kernel/mm/transparent_hugepage/shmem_enabled")}");
    }

    private static string ReadSys(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "?";
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _emuVm?.Dispose();
        _emuKvm?.Dispose();
        _kernel?.Dispose();
        _realVm?.Dispose();
        _realKvm?.Dispose();
    }

    /// <summary>The real kernel (/dev/kvm): kvm_gmem_fault_user_mapping allocates and zeroes each 4 KiB folio.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pages)]
    public long RealKernel() => Touch(_realVm!);

    /// <summary>The emulated kernel, preset LikeThisHost: backing file on the private huge-page tmpfs (when mountable).</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public long Emulated() => Touch(_emuVm!);

    /// <summary>
    /// The same emulator with the previous backing forced (<see cref="HostMemory.PreferHugeTmpfs"/> = false): a
    /// memfd, whose shmem faults in one 4 KiB page at a time on this host (shmem_enabled = never).
    /// </summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public long EmulatedMemfd()
    {
        HostMemory.PreferHugeTmpfs = false;
        try
        {
            return Touch(_emuVm!);
        }
        finally
        {
            HostMemory.PreferHugeTmpfs = true;
        }
    }

    internal static long Touch(Vm vm)
    {
        using GuestMemfd memfd = vm.CreateGuestMemfd(Bytes, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using GuestMapping map = memfd.Map();
        long sum = 0;
        for (ulong off = 0; off < Bytes; off += Page)
        {
            byte v = (byte)((off >> 12) | 1);
            map.Write(off, v);
            sum += v;
        }
        return sum;
    }
}
