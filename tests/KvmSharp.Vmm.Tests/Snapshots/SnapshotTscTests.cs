// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>
/// Snapshot format version 5 carries the guest's TSC: a micro-VM created from or restored to a snapshot reads no less
/// (upstream KVM starts each new VM's TSC at 0, so without it a time a guest stored before the snapshot would lie in
/// its future), while Reset still puts the creation offset back. Version 4 files are still read, with no floor.
/// </summary>
public sealed class SnapshotTscTests
{
    /// <summary>About 6.9e15 cycles: days of TSC at any rate, far above what a VM created a moment ago reads.</summary>
    private const ulong Far = 0x5EC2_E700UL << 32;

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_micro_vm_from_a_snapshot_reads_no_less_tsc_than_the_snapshot_held(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        MicroVmOptions options = k.Options(null);
        using var source = MicroVm.Create(ExtendedStateGuest.Image(), options);
        // Stands for a guest that ran for days before its snapshot.
        Assert.Equal(0UL, GuestRun.Value(source, "wrmsr", X86Msr.Tsc, Far));
        ulong before = GuestRun.Value(source, "rdmsr", X86Msr.Tsc);
        Skip.If(before < Far, $"{k}: this kernel ignores a guest's write of IA32_TSC (it reads 0x{before:X}; kvm_pvm does), so no guest TSC here runs ahead of a new VM's");
        MicroVmSnapshot snapshot = SnapshotSamples.Read(SnapshotSamples.Bytes(source.Snapshot()));
        Assert.True(snapshot.Vcpu.Tsc >= before, $"the snapshot holds TSC 0x{snapshot.Vcpu.Tsc:X}, the guest read 0x{before:X}");

        using var copy = MicroVm.Create(snapshot, options);
        ulong copied = GuestRun.Value(copy, "rdmsr", X86Msr.Tsc);
        Assert.True(copied >= snapshot.Vcpu.Tsc, $"a micro-VM from the snapshot reads TSC 0x{copied:X} < 0x{snapshot.Vcpu.Tsc:X}");

        using var other = MicroVm.Create(ExtendedStateGuest.Image(), options);
        Assert.True(GuestRun.Value(other, "rdmsr", X86Msr.Tsc) < Far);
        other.Restore(snapshot);
        Assert.True(GuestRun.Value(other, "rdmsr", X86Msr.Tsc) >= snapshot.Vcpu.Tsc);
        other.Restore(snapshot); // again at the same offset: still no less, and no guest write to undo
        Assert.True(GuestRun.Value(other, "rdmsr", X86Msr.Tsc) >= snapshot.Vcpu.Tsc);
        // A Reset is the image's fresh state, not the snapshot's: the offset the micro-VM was created with.
        other.Reset();
        Assert.True(GuestRun.Value(other, "rdmsr", X86Msr.Tsc) < Far);
    }

    [Fact]
    public void A_version_4_file_is_still_read_with_no_tsc_floor()
    {
        byte[] v6 = SnapshotSamples.Counter;
        MicroVmSnapshot current = SnapshotSamples.Read(v6);
        Assert.NotEqual(0UL, current.Vcpu.Tsc);
        // Version 4: the same bytes without TSC_AUX, the TSC and its rate (SnapshotSamples.Downgrade).
        byte[] v4 = SnapshotSamples.Downgrade(v6, 4);
        MicroVmSnapshot old = SnapshotSamples.Read(v4);
        Assert.Equal(0UL, old.Vcpu.Tsc);
        Assert.Equal(current.PageCount, old.PageCount);
        Assert.Equal(current.Msrs.Where(m => m.Index != X86Msr.TscAux), old.Msrs);
        // Written again it is a current (version 7) file whose TSC and rate are 0: what it restored before, it restores now.
        byte[] rewritten = SnapshotSamples.Bytes(old);
        Assert.Equal(SnapshotFormat.Version, BinaryPrimitives.ReadUInt32LittleEndian(rewritten.AsSpan(8)));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(rewritten.AsSpan(rewritten.Length - 32 - 4 - 8)));
    }
}
