// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c record_steal_time: struct kvm_steal_time {u64 steal; u32 version; u32 flags; u8 preempted; u8
/// u8_pad[3]; u32 pad[11];} at MSR_KVM_STEAL_TIME's GPA, updated on KVM_REQ_STEAL_UPDATE — which kvm_arch_vcpu_load
/// makes for every vCPU ioctl (so once per KVM_RUN) and a WRMSR with KVM_MSR_ENABLED makes again.
/// <para>
/// steal is current-&gt;sched_info.run_delay (the time the vCPU thread waited on a run queue) minus last_steal: the
/// emulator runs the guest on the thread that called KVM_RUN, as the kernel does, so it reads the same counter from
/// /proc/thread-self/schedstat. KVM_VCPU_PREEMPTED is never written: kvm_steal_time_set_preempted runs from
/// kvm_arch_vcpu_put only when the scheduler preempted the vCPU task inside KVM_RUN (vcpu-&gt;preempted, kvm_sched_out),
/// which the emulator does not see; the byte is cleared at each record as the kernel does.
/// </para>
/// </summary>
internal static class KvmStealTime
{
    /// <summary>KVM_STEAL_VALID_BITS: the GPA, bits 63:6.</summary>
    private const ulong ValidBits = ~0x3fUL;

    /// <summary>sizeof(struct kvm_steal_time).</summary>
    private const int Size = 64;

    /// <summary>vcpu_enter_guest: "if (kvm_check_request(KVM_REQ_STEAL_UPDATE, vcpu)) record_steal_time(vcpu);".</summary>
    public static void OnEnterGuest(KvmVcpu vcpu) => Record(vcpu);

    /// <summary>A guest WRMSR's KVM_REQ_STEAL_UPDATE, served before its next instruction as the re-entry does.</summary>
    public static void ServeGuestRequest(X86Cpu cpu)
    {
        if (KvmGuestMemory.Owner(cpu) is { } vcpu) Record(vcpu);
    }

    /// <summary>
    /// record_steal_time: nothing unless KVM_MSR_ENABLED and the 64 bytes map to a writable memslot
    /// (kvm_gfn_to_hva_cache_init). Then preempted is cleared (an xchg under KVM_FEATURE_PV_TLB_FLUSH, whose
    /// KVM_VCPU_FLUSH_TLB asks for kvm_vcpu_flush_tlb_guest — the interpreter keeps no TLB across instructions),
    /// "if (version &amp; 1) version += 1; /* first time write, random junk */", version + 1 written (odd), steal +=
    /// run_delay - last_steal, version + 1 again (even); the page is marked dirty.
    /// </summary>
    private static void Record(KvmVcpu vcpu)
    {
        var pv = vcpu.Cpu.Msrs.Pv;
        if ((pv.StealTime & KvmPvMsrs.MsrEnabled) == 0) return;
        ulong gpa = pv.StealTime & ValidBits;
        if (!KvmGuestMemory.HvaCacheInit(vcpu.Kvm, gpa, Size)) return;
        // Both arms (the xchg and unsafe_put_user) leave preempted 0.
        Span<byte> b = [0];
        if (!KvmGuestMemory.Access(vcpu, gpa + 16, b, write: true)) return;
        Span<byte> v = stackalloc byte[4];
        if (!KvmGuestMemory.Access(vcpu, gpa + 8, v, write: false)) return;
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(v);
        if ((version & 1) != 0) version++;
        version++;
        BinaryPrimitives.WriteUInt32LittleEndian(v, version);
        if (!KvmGuestMemory.Access(vcpu, gpa + 8, v, write: true)) return;
        Span<byte> s = stackalloc byte[8];
        if (!KvmGuestMemory.Access(vcpu, gpa, s, write: false)) return;
        ulong runDelay = RunDelay();
        ulong steal = BinaryPrimitives.ReadUInt64LittleEndian(s) + (runDelay - pv.LastSteal);
        pv.LastSteal = runDelay;
        BinaryPrimitives.WriteUInt64LittleEndian(s, steal);
        if (!KvmGuestMemory.Access(vcpu, gpa, s, write: true)) return;
        BinaryPrimitives.WriteUInt32LittleEndian(v, version + 1);
        KvmGuestMemory.Access(vcpu, gpa + 8, v, write: true);
    }

    /// <summary>
    /// current-&gt;sched_info.run_delay in ns: the second field of /proc/thread-self/schedstat (sched_info's "run_delay",
    /// fs/proc/base.c proc_pid_schedstat); 0 when the file cannot be read.
    /// </summary>
    private static ulong RunDelay()
    {
        try
        {
            string[] fields = File.ReadAllText("/proc/thread-self/schedstat").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length > 1 && ulong.TryParse(fields[1], out ulong ns) ? ns : 0;
        }
        catch (IOException)
        {
            return 0;
        }
        catch (UnauthorizedAccessException)
        {
            return 0;
        }
    }
}
