// SPDX-License-Identifier: MIT
using BenchmarkDotNet.Attributes;
using KvmSharp.Emulation;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.EmulationBenchmarks;

/// <summary>
/// Restore + first call of a micro-VM whose snapshot holds much memory of which the call touches little: the counter
/// guest after init, plus <see cref="DataMiB"/> MiB of non-zero data the host wrote into its upper memory before the
/// snapshot (a loaded data set), in 256 MiB of guest_memfd. Eager (baseline: punch, then write(2) of every snapshot page)
/// against lazy (punch, mark the snapshot pages in the KVM userfault bitmap, write(2) a page on its first userfault exit
/// or host access: Firecracker's gmem restore), both on the emulated kernel with "[PATCH v7 1/2]" (guest_memfd write)
/// and "[PATCH v3 00/15] KVM: Introduce KVM Userfault" applied, in the same run. Ratio = lazy / eager.
/// </summary>
[Config(typeof(BenchConfig))]
public class LazyRestore
{
    private const ulong MemorySize = 256UL << 20;
    private EmulatedKernel? _kernel;
    private Kvm? _kvm;
    private MicroVm? _eager;
    private MicroVm? _lazy;
    private MicroVmSnapshot? _snapshot;

    /// <summary>Non-zero data in the snapshot besides the guest's own pages, in MiB.</summary>
    [Params(16, 128)]
    public int DataMiB { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var config = EmulatorConfig.X86_64() with { GuestMemfdWrite = true, KvmUserfault = true };
        _kernel = new EmulatedKernel(config);
        _kvm = Kvm.Open(_kernel, proposals: config.Proposals);
        var options = new MicroVmOptions
        {
            Kvm = _kvm, MemorySize = MemorySize, Memory = GuestMemoryBacking.GuestMemfd, Timeout = TimeSpan.FromSeconds(30),
        };
        using (var source = MicroVm.Create(Counter.Image(), options))
        {
            Check(source.Call("init", 0UL).Value == Counter.TableEntries, "init");
            ulong bytes = (ulong)DataMiB << 20;
            source.Memory.Fill(MemorySize - bytes, bytes, 0x5A);
            _snapshot = source.Snapshot();
        }
        _eager = MicroVm.Create(_snapshot, options with { SnapshotRestore = SnapshotRestoreMode.Eager });
        _lazy = MicroVm.Create(_snapshot, options with { SnapshotRestore = SnapshotRestoreMode.Lazy });
        Check(_lazy.LastRestoreWasLazy && !_eager.LastRestoreWasLazy, "restore modes");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _lazy?.Dispose();
        _eager?.Dispose();
        _kvm?.Dispose();
        _kernel?.Dispose();
    }

    [Benchmark(Baseline = true, Description = "eager restore + increment")]
    public ulong Eager() => RestoreAndCall(_eager!);

    [Benchmark(Description = "lazy restore + increment")]
    public ulong Lazy() => RestoreAndCall(_lazy!);

    private ulong RestoreAndCall(MicroVm vm)
    {
        vm.Restore(_snapshot!);
        ulong value = vm.Call("increment").Value ?? 0;
        Check(value == 1, "increment after restore");
        return value;
    }

    private static void Check(bool ok, string what)
    {
        if (!ok) throw new InvalidOperationException($"LazyRestore benchmark: {what} went wrong");
    }
}
