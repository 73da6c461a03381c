// SPDX-License-Identifier: MIT
namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// <see cref="DirtyLogVm"/>'s VM with a dirty ring instead of a bitmap (set up through the SDK here, with raw ioctls in
/// dirtylog_ref.c's dl_ref_open_ring): KVM_CAP_DIRTY_LOG_RING_ACQ_REL of <see cref="RingBytes"/> before the vCPU,
/// the same 1 GiB logging slot and real-mode guest. The SDK side harvests into one reusable array
/// (<see cref="Entries"/>), as the C side into its static one.
/// </summary>
internal sealed class DirtyRingVm : IDisposable
{
    /// <summary>64 KiB: 4 096 entries, soft limit 4 032 — a round of up to 224 pages never reaches it.</summary>
    public const int RingBytes = 1 << 16;

    private DirtyRingVm(Kvm kvm, Vm vm, AnonymousMemory memory, MemorySlot slot, Vcpu vcpu)
    {
        Kvm = kvm;
        Vm = vm;
        Memory = memory;
        Slot = slot;
        Vcpu = vcpu;
        Entries = new DirtyRingEntry[vcpu.DirtyRing.EntryCount];
    }

    public Kvm Kvm { get; }
    public Vm Vm { get; }
    public AnonymousMemory Memory { get; }
    public MemorySlot Slot { get; }
    public Vcpu Vcpu { get; }

    /// <summary>Where <see cref="Poll"/> harvests to (one array, reused).</summary>
    public DirtyRingEntry[] Entries { get; }

    public static DirtyRingVm Create(int pages)
    {
        byte[] code = DirtyLogVm.Code(pages);
        var kvm = Kvm.Open();
        var vm = kvm.CreateVm();
        AnonymousMemory? memory = null;
        MemorySlot? slot = null;
        try
        {
            vm.EnableDirtyRing(RingBytes, DirtyRingOrdering.AcquireRelease);
            memory = vm.AllocateMemory(DirtyLogVm.MemorySize);
            memory.Write(DirtyLogVm.CodeGpa, code);
            slot = vm.AddMemorySlot(0, 0, memory, MemorySlotFlags.LogDirtyPages);
            return new DirtyRingVm(kvm, vm, memory, slot, DirtyLogVm.CreateRealModeVcpu(vm));
        }
        catch
        {
            slot?.Dispose();
            memory?.Dispose();
            vm.Dispose();
            kvm.Dispose();
            throw;
        }
    }

    /// <summary>One KVM_RUN to the guest's next HLT.</summary>
    public void Run() => DirtyLogVm.RunToHalt(Vcpu);

    /// <summary>Harvest into <see cref="Entries"/>, then Vm.ResetDirtyRings; the harvested count.</summary>
    public int Poll()
    {
        int n = Vcpu.DirtyRing.Harvest(Entries);
        int reset = Vm.ResetDirtyRings();
        return reset == n ? n : throw new InvalidOperationException($"harvested {n}, the reset freed {reset}");
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        Slot.Dispose();
        Memory.Dispose();
        Vm.Dispose();
        Kvm.Dispose();
    }
}
