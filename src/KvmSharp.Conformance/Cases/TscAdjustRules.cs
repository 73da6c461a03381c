// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.X86;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// MSR_IA32_TSC_ADJUST as arch/x86/kvm/x86.c keeps it (vcpu->arch.ia32_tsc_adjust_msr): kvm_get_msr_common reads it
/// back to host and guest alike; kvm_set_msr_common stores a write only when the guest's CPUID has TSC_ADJUST
/// (CPUID.(7,0).EBX[1]) and drops it silently otherwise; a guest write moves the TSC by the difference
/// (adjust_tsc_offset_guest), a host write does not; a guest write of IA32_TSC adds what it moved the TSC by. Listed
/// in KVM_GET_MSR_INDEX_LIST (emulated_msrs_all). Probed on Linux 6.18 kvm_pvm in C first; the TSC itself does not
/// move there (HostDeviations.KvmPvmTscOffsetFixed), so that part is checked on the emulator only.
/// </summary>
public static class TscAdjustRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const uint TscAdjust = MsrIndex.IA32_TSC_ADJUST;

    /// <summary>CPUID.0 (max leaf 7) and CPUID.(7,0) with only EBX[1] TSC_ADJUST.</summary>
    private static readonly CpuidEntry[] s_tscAdjust =
    [
        CpuidEntry.Leaf(0, 7, 0, 0, 0),
        new CpuidEntry(7, 0, KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 0, 1u << 1, 0, 0),
    ];

    /// <summary>wrmsr of <paramref name="msr"/> = <paramref name="value"/>, rdmsr of TSC_ADJUST, hlt.</summary>
    private static IdtGuest WrmsrGuest(Kvm kvm, uint msr, ulong value) =>
        IdtGuest.Create(kvm, a =>
        {
            a.mov(ecx, msr);
            a.mov(eax, (uint)value);
            a.mov(edx, (uint)(value >> 32));
            a.wrmsr();
            a.mov(ecx, TscAdjust);
            a.rdmsr();
            a.hlt();
            a.hlt();
        }, Enumerable.Range(0, 32).Select(v => new IdtVector(v)));

    private static ulong EdxEax(Vcpu vcpu)
    {
        var r = vcpu.GetRegs();
        return (r.rdx << 32) | (uint)r.rax;
    }

    [ConformanceCase(X86 + " kvm_set_msr_common / kvm_get_msr_common MSR_IA32_TSC_ADJUST from the host: listed; a new vCPU reads 0; without CPUID TSC_ADJUST a write is taken (1 processed) and dropped; with it the value is stored as an s64")]
    public static void host_writes_tsc_adjust_only_with_the_cpuid_bit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Contains(TscAdjust, kvm.GetMsrIndexList());
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.GetMsr(TscAdjust));
        Assert.Equal(1, vcpu.SetMsrs([new MsrEntry(TscAdjust, 1000)]));
        Assert.Equal(0UL, vcpu.GetMsr(TscAdjust));
        vcpu.SetCpuid(s_tscAdjust);
        foreach (ulong value in new[] { 1000UL, unchecked((ulong)-5L), 1UL << 63, 0UL })
        {
            Assert.Equal(1, vcpu.SetMsrs([new MsrEntry(TscAdjust, value)]));
            Assert.Equal(value, vcpu.GetMsr(TscAdjust));
        }
    }

    [ConformanceCase(X86 + " MSR_IA32_TSC_ADJUST from the guest: WRMSR is never a #GP; without CPUID TSC_ADJUST it is dropped (RDMSR 0), with it RDMSR and the host read the value, and adjust_tsc_offset_guest moves the TSC by the difference")]
    public static void guest_writes_tsc_adjust_only_with_the_cpuid_bit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Value = 1UL << 40;
        using (var g = WrmsrGuest(kvm, TscAdjust, Value))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
            Assert.Equal(0UL, EdxEax(g.Vcpu));
            Assert.Equal(0UL, g.Vcpu.GetMsr(TscAdjust));
        }
        using (var g = WrmsrGuest(kvm, TscAdjust, Value))
        {
            g.Vcpu.SetCpuid(s_tscAdjust);
            ulong before = g.Vcpu.GetMsr(MsrIndex.IA32_TSC);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            ulong after = g.Vcpu.GetMsr(MsrIndex.IA32_TSC);
            Assert.Empty(g.Deliveries);
            Assert.Equal(Value, EdxEax(g.Vcpu));
            Assert.Equal(Value, g.Vcpu.GetMsr(TscAdjust));
            if (!HostDeviations.KvmPvmTscOffsetFixed(ctx.Target.IsReal))
                Assert.True(after - before >= Value && after - before < Value + (1UL << 36), $"TSC 0x{before:X} → 0x{after:X}");
        }
    }

    [ConformanceCase(X86 + " kvm_set_msr_common MSR_IA32_TSC from the guest: adj = kvm_compute_l1_tsc_offset(data) - l1_tsc_offset; ia32_tsc_adjust_msr += adj — TSC_ADJUST reads the value written minus the TSC at the write, with or without CPUID TSC_ADJUST")]
    public static void guest_tsc_write_adds_to_tsc_adjust(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Written = 1UL << 50;
        foreach (bool cpuid in new[] { false, true })
        {
            using var g = WrmsrGuest(kvm, MsrIndex.IA32_TSC, Written);
            if (cpuid) g.Vcpu.SetCpuid(s_tscAdjust);
            long t0 = (long)g.Vcpu.GetMsr(MsrIndex.IA32_TSC);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
            long adjust = (long)g.Vcpu.GetMsr(TscAdjust);
            // The guest's TSC at the WRMSR is at least the host's read before the run (a host read is the guest's TSC)
            // and less than 2^36 ticks later.
            long high = (long)Written - t0, low = high - (1L << 36);
            Assert.True(adjust <= high && adjust > low, $"CPUID {cpuid}: TSC_ADJUST {adjust} outside ({low}, {high}]");
            Assert.Equal(unchecked((ulong)adjust), EdxEax(g.Vcpu));
        }
    }
}
