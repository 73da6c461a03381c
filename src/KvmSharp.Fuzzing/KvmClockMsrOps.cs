// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.KvmClockMsrs"/> draws: KVM_SET_MSRS / KVM_GET_MSRS of the kvmclock MSRs (uapi
/// asm/kvm_para.h MSR_KVM_WALL_CLOCK 0x11, MSR_KVM_SYSTEM_TIME 0x12, MSR_KVM_WALL_CLOCK_NEW 0x4b564d00,
/// MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01; x86.c kvm_set_msr_common / kvm_get_msr_common) in any order and number, with
/// values that are GPAs in and out of the session's slots (whose host memory is never mapped: kvm_write_wall_clock
/// and the pvclock cache fail quietly), the enable bit, page-crossing and non-canonical ones. The values read back are
/// what was stored, never a time: the wall clock is the VM's (kvm->arch.wall_clock, read on a second vCPU), the system
/// time the vCPU's (vcpu->arch.time).
/// </summary>
internal static class KvmClockMsrOps
{
    public const uint WallClock = 0x11, SystemTime = 0x12, WallClockNew = 0x4B56_4D00, SystemTimeNew = 0x4B56_4D01;

    private static readonly uint[] s_msrs = [WallClock, SystemTime, WallClockNew, SystemTimeNew];

    public static kvm_msr_entry[] Entries(ulong seed)
    {
        var rng = new Random(unchecked((int)seed ^ 0x6C0C));
        var entries = new kvm_msr_entry[rng.Next(1, 6)];
        for (int i = 0; i < entries.Length; i++)
        {
            uint index = s_msrs[rng.Next(s_msrs.Length)];
            entries[i] = new kvm_msr_entry { index = index, data = Value(rng) };
        }
        return entries;
    }

    private static ulong Value(Random rng) => rng.Next(10) switch
    {
        0 => 0,
        1 => 1,                                                          // enabled at GPA 0
        2 => 0x10_0000 + 0x1000 * (ulong)rng.Next(0, 32) + (ulong)rng.Next(2),   // in the session's slots
        3 => 0x10_0FF0 | 1,                                              // pvclock crossing a page
        4 => ulong.MaxValue,
        5 => 1UL << 63 | 1,
        6 => (ulong)rng.NextInt64() & ~1UL,
        _ => (ulong)rng.NextInt64(),
    };
}
