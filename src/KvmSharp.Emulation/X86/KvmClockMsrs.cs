// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The kvmclock MSRs (uapi asm/kvm_para.h) as arch/x86/kvm/x86.c kvm_get_msr_common / kvm_set_msr_common take them:
/// MSR_KVM_WALL_CLOCK (0x11) and MSR_KVM_SYSTEM_TIME (0x12) under KVM_FEATURE_CLOCKSOURCE, MSR_KVM_WALL_CLOCK_NEW
/// (0x4b564d00) and MSR_KVM_SYSTEM_TIME_NEW (0x4b564d01) under KVM_FEATURE_CLOCKSOURCE2 ("if (!guest_pv_has(vcpu,
/// KVM_FEATURE_…)) return KVM_MSR_RET_UNSUPPORTED;": only with KVM_CAP_ENFORCE_PV_FEATURE_CPUID). A wall clock write
/// fills struct pvclock_wall_clock at once (kvm_write_wall_clock); a system time write asks for KVM_REQ_CLOCK_UPDATE,
/// which vcpu_enter_guest turns into struct pvclock_vcpu_time_info at the GPA (kvm_guest_time_update,
/// kvm_setup_guest_pvclock). The per-VM and per-vCPU state is <see cref="KvmClock"/>'s (KvmClock.Pvclock.cs).
/// </summary>
internal static class KvmClockMsrs
{
    public const uint WallClock = 0x11, SystemTime = 0x12, WallClockNew = 0x4b56_4d00, SystemTimeNew = 0x4b56_4d01;

    /// <summary>KVM_FEATURE_CLOCKSOURCE and KVM_FEATURE_CLOCKSOURCE2 (bits of CPUID 0x40000001 EAX).</summary>
    private const int FeatureClocksource = 0, FeatureClocksource2 = 3;

    /// <summary>PVCLOCK_GUEST_STOPPED: kept from the guest's copy (kvm_setup_guest_pvclock).</summary>
    private const byte PvclockGuestStopped = 1 << 1;

    public static bool IsKvmClockMsr(uint index) => index is WallClock or SystemTime or WallClockNew or SystemTimeNew;

    /// <summary>KVM_MSR_RET_UNSUPPORTED unless the guest's CPUID (under enforcement) offers the MSR's feature.</summary>
    private static bool PvHas(X86Cpu cpu, uint index) =>
        cpu.Cpuid.PvHas(index is WallClock or SystemTime ? FeatureClocksource : FeatureClocksource2);

    /// <summary>kvm_get_msr_common: "msr_info->data = vcpu->kvm->arch.wall_clock" / "vcpu->arch.time".</summary>
    public static int Get(X86Cpu cpu, uint index, out ulong data)
    {
        data = 0;
        if (!PvHas(cpu, index) || KvmGuestMemory.Owner(cpu) is not { } vcpu) return MsrFilter.RetUnsupported;
        data = index is WallClock or WallClockNew ? vcpu.Kvm.Clock.WallClock : vcpu.Kvm.Clock.SystemTime(vcpu.Id);
        return 0;
    }

    /// <summary>
    /// kvm_set_msr_common: the wall clock MSRs store kvm->arch.wall_clock and call kvm_write_wall_clock(kvm, data, 0);
    /// the system time MSRs call kvm_write_system_time(vcpu, data, old_msr, host_initiated). Never refused. A guest
    /// WRMSR's request is served before its next instruction, as vcpu_enter_guest does before re-entering the guest.
    /// </summary>
    public static int Set(X86Cpu cpu, uint index, ulong data, bool hostInitiated)
    {
        if (!PvHas(cpu, index) || KvmGuestMemory.Owner(cpu) is not { } vcpu) return MsrFilter.RetUnsupported;
        if (index is WallClock or WallClockNew)
        {
            vcpu.Kvm.Clock.WallClock = data;
            WriteWallClock(vcpu, data);
            return 0;
        }
        vcpu.Kvm.Clock.WriteSystemTime(vcpu.Id, data, oldMsr: index == SystemTime, hostInitiated);
        if (!hostInitiated) OnEnterGuest(vcpu);
        return 0;
    }

    /// <summary>
    /// vcpu_enter_guest's clock requests in their order: KVM_REQ_MASTERCLOCK_UPDATE (kvm_update_masterclock, TscSync.cs),
    /// then KVM_REQ_CLOCK_UPDATE (kvm_guest_time_update → kvm_setup_guest_pvclock). Requests made while the emulator
    /// runs the guest (KVM_SET_CLOCK from another thread) wait for the next KVM_RUN: there is no kick into a running guest.
    /// </summary>
    public static void OnEnterGuest(KvmVcpu vcpu)
    {
        vcpu.Kvm.Clock.OnEnterGuest(vcpu.Id);
        if (vcpu.Kvm.Clock.TakeClockUpdate(vcpu.Id, vcpu.Cpu.Msrs.TscOffset) is { } info) SetupGuestPvclock(vcpu, info);
    }

    /// <summary>
    /// kvm_setup_guest_pvclock: nothing unless the cache maps (kvm_gpc_refresh fails without a writable memslot);
    /// "guest_hv_clock-&gt;version = hv_clock.version = (guest_hv_clock-&gt;version + 1) | 1" (odd while it changes),
    /// PVCLOCK_GUEST_STOPPED kept from the guest's flags, the 32 bytes copied (pads 0), then "guest_hv_clock-&gt;version =
    /// ++hv_clock.version" (even); the page is marked dirty (kvm_gpc_mark_dirty_in_slot).
    /// </summary>
    private static void SetupGuestPvclock(KvmVcpu vcpu, KvmClock.PvclockTimeInfo info)
    {
        Span<byte> guest = stackalloc byte[KvmClock.PvclockSize];
        if (!KvmGuestMemory.Access(vcpu, info.Gpa, guest, write: false) || !KvmGuestMemory.Writable(vcpu, info.Gpa)) return;
        uint version = (BinaryPrimitives.ReadUInt32LittleEndian(guest) + 1) | 1;
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, version);
        KvmGuestMemory.Access(vcpu, info.Gpa, v, write: true);
        Span<byte> hv = stackalloc byte[KvmClock.PvclockSize];
        hv.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(hv, version);
        BinaryPrimitives.WriteUInt64LittleEndian(hv[8..], info.TscTimestamp);
        BinaryPrimitives.WriteUInt64LittleEndian(hv[16..], info.SystemTime);
        BinaryPrimitives.WriteUInt32LittleEndian(hv[24..], info.Mul);
        hv[28] = (byte)info.Shift;
        hv[29] = (byte)(info.Flags | (guest[29] & PvclockGuestStopped));
        KvmGuestMemory.Access(vcpu, info.Gpa, hv, write: true);
        BinaryPrimitives.WriteUInt32LittleEndian(v, version + 1);
        KvmGuestMemory.Access(vcpu, info.Gpa, v, write: true);
    }

    /// <summary>
    /// kvm_write_wall_clock(kvm, wall_clock, 0): nothing for GPA 0 or when the version cannot be read or written
    /// (kvm_read_guest / kvm_write_guest); an odd version is stepped to even first ("first time write, random junk"),
    /// then version+1 is written, struct pvclock_wall_clock {version, sec = (u32)(epoch / NSEC_PER_SEC), nsec} with it,
    /// then version+2. The epoch is kvm_get_wall_clock_epoch: realtime minus the kvmclock.
    /// </summary>
    private static void WriteWallClock(KvmVcpu vcpu, ulong gpa)
    {
        if (gpa == 0) return;
        Span<byte> v = stackalloc byte[4];
        if (!KvmGuestMemory.Access(vcpu, gpa, v, write: false)) return;
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(v);
        if ((version & 1) != 0) version++;
        version++;
        BinaryPrimitives.WriteUInt32LittleEndian(v, version);
        if (!KvmGuestMemory.Access(vcpu, gpa, v, write: true)) return;
        ulong wallNsec = vcpu.Kvm.Clock.WallClockEpochNs();
        Span<byte> wc = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(wc, version);
        BinaryPrimitives.WriteUInt32LittleEndian(wc[4..], (uint)(wallNsec / 1_000_000_000)); // "overflow in 2106 guest time"
        BinaryPrimitives.WriteUInt32LittleEndian(wc[8..], (uint)(wallNsec % 1_000_000_000));
        KvmGuestMemory.Access(vcpu, gpa, wc, write: true);
        BinaryPrimitives.WriteUInt32LittleEndian(v, version + 1);
        KvmGuestMemory.Access(vcpu, gpa, v, write: true);
    }
}
