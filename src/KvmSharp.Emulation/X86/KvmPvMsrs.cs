// SPDX-License-Identifier: MIT

namespace KvmSharp.Emulation.X86;

/// <summary>
/// KVM's paravirtual MSRs other than kvmclock's (uapi asm/kvm_para.h) as arch/x86/kvm/x86.c kvm_get_msr_common /
/// kvm_set_msr_common take them, host- and guest-initiated alike: MSR_KVM_ASYNC_PF_EN (0x4b564d02), MSR_KVM_STEAL_TIME
/// (0x4b564d03), MSR_KVM_PV_EOI_EN (0x4b564d04), MSR_KVM_POLL_CONTROL (0x4b564d05), MSR_KVM_ASYNC_PF_INT (0x4b564d06)
/// and MSR_KVM_ASYNC_PF_ACK (0x4b564d07). Each is KVM_MSR_RET_UNSUPPORTED when KVM_CAP_ENFORCE_PV_FEATURE_CPUID is on
/// and the guest's KVM_CPUID_FEATURES lacks its feature ("if (!guest_pv_has(vcpu, KVM_FEATURE_…)) return
/// KVM_MSR_RET_UNSUPPORTED;"). What the kernel then writes into guest memory: X86/KvmStealTime.cs, X86/PvEoi.cs,
/// X86/KvmAsyncPf.cs.
/// </summary>
internal static class KvmPvMsrs
{
    public const uint AsyncPfEn = 0x4b56_4d02, StealTime = 0x4b56_4d03, PvEoiEn = 0x4b56_4d04, PollControl = 0x4b56_4d05,
        AsyncPfInt = 0x4b56_4d06, AsyncPfAck = 0x4b56_4d07;

    /// <summary>KVM_FEATURE_* bits of CPUID 0x40000001 EAX (uapi asm/kvm_para.h).</summary>
    public const int FeatureAsyncPf = 4, FeatureStealTime = 5, FeaturePvEoi = 6, FeaturePvTlbFlush = 9, FeatureAsyncPfVmexit = 10,
        FeaturePollControl = 12, FeatureAsyncPfInt = 14;

    /// <summary>KVM_MSR_ENABLED: bit 0 of the steal time and PV EOI MSRs.</summary>
    public const ulong MsrEnabled = 1;

    /// <summary>KVM_STEAL_RESERVED_MASK: bits 5:1 ("((1 &lt;&lt; KVM_STEAL_ALIGNMENT_BITS) - 1 ) &lt;&lt; 1").</summary>
    public const ulong StealReservedMask = 0x3e;

    /// <summary>
    /// sched_info_on() (CONFIG_SCHED_INFO): what MSR_KVM_STEAL_TIME needs. This host's kernel has it — its
    /// KVM_GET_SUPPORTED_CPUID offers KVM_FEATURE_STEAL_TIME, which __do_cpuid_func sets only "if (sched_info_on())".
    /// </summary>
    public const bool SchedInfoOn = true;

    public static bool Handles(uint index) => index is >= AsyncPfEn and <= AsyncPfAck;

    /// <summary>The feature whose bit guest_pv_has checks for the MSR (ACK shares ASYNC_PF_INT's).</summary>
    private static int Feature(uint index) => index switch
    {
        AsyncPfEn => FeatureAsyncPf,
        StealTime => FeatureStealTime,
        PvEoiEn => FeaturePvEoi,
        PollControl => FeaturePollControl,
        _ => FeatureAsyncPfInt,
    };

    /// <summary>kvm_get_msr_common: the stored value; MSR_KVM_ASYNC_PF_ACK reads 0.</summary>
    public static int Get(X86Cpu cpu, uint index, out ulong data)
    {
        data = 0;
        if (!cpu.Cpuid.PvHas(Feature(index))) return MsrFilter.RetUnsupported;
        var pv = cpu.Msrs.Pv;
        data = index switch
        {
            AsyncPfEn => pv.AsyncPfEn,
            AsyncPfInt => pv.AsyncPfInt,
            StealTime => pv.StealTime,
            PvEoiEn => pv.PvEoi,
            PollControl => pv.PollControl,
            _ => 0,
        };
        return 0;
    }

    /// <summary>kvm_set_msr_common for the six MSRs: 0 when taken, 1 when refused, or KVM_MSR_RET_UNSUPPORTED.</summary>
    public static int Set(X86Cpu cpu, uint index, ulong data, bool hostInitiated)
    {
        if (!cpu.Cpuid.PvHas(Feature(index))) return MsrFilter.RetUnsupported;
        var pv = cpu.Msrs.Pv;
        switch (index)
        {
            case AsyncPfEn:
                return KvmAsyncPf.Enable(cpu, data);
            case AsyncPfInt:
                return KvmAsyncPf.EnableInt(cpu, data);
            case AsyncPfAck:
                // "if (data & 0x1) { vcpu->arch.apf.pageready_pending = false; kvm_check_async_pf_completion(vcpu); }"
                // — any other bit is ignored, nothing refused.
                if ((data & 1) != 0) KvmAsyncPf.Ack(cpu);
                return 0;
            case StealTime:
                // "if (unlikely(!sched_info_on())) return 1; if (data & KVM_STEAL_RESERVED_MASK) return 1;" — bits 63:6
                // are the 64-byte aligned GPA, kept whatever memory is there; "vcpu->arch.st.msr_val = data; if (!(data &
                // KVM_MSR_ENABLED)) break; kvm_make_request(KVM_REQ_STEAL_UPDATE, vcpu);".
                if (!SchedInfoOn || (data & StealReservedMask) != 0) return 1;
                pv.StealTime = data;
                if ((data & MsrEnabled) != 0 && !hostInitiated) KvmStealTime.ServeGuestRequest(cpu);
                return 0;
            case PvEoiEn:
                return PvEoi.SetMsr(cpu, data);
            default: // PollControl
                // "/* only enable bit supported */ if (data & (-1ULL << 1)) return 1;".
                if ((data & ~1UL) != 0) return 1;
                pv.PollControl = data;
                return 0;
        }
    }
}
