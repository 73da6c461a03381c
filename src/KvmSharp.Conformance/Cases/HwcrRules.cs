// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// MSR_K7_HWCR (0xC0010015) as arch/x86/kvm/x86.c keeps it per vCPU (vcpu->arch.msr_hwcr): kvm_set_msr_common ignores
/// the flush-filter, IGNNE and TLB-cache-disable bits, takes McStatusWrEn (bit 18) and TscFreqSel (bit 24) and refuses
/// every other bit, from the host and the guest alike; kvm_get_msr_common reads it back; set_msr_mce's
/// can_set_mci_status lets a guest write a non-zero MCi_STATUS only with McStatusWrEn set and an AMD-compatible guest
/// CPUID vendor. KVM lists it in KVM_GET_MSR_INDEX_LIST (emulated_msrs_all). Probed on Linux 6.18 kvm_pvm (AMD) in C
/// first: every rule here is upstream's.
/// </summary>
public static class HwcrRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const uint Hwcr = 0xC001_0015;
    private const ulong McStatusWrEn = 1UL << 18, TscFreqSel = 1UL << 24;
    private const uint Mc0Status = 0x401;

    [ConformanceCase(X86 + " kvm_set_msr_common / kvm_get_msr_common MSR_K7_HWCR: a new vCPU reads 0; bits 3, 6 and 8 are dropped, 18 and 24 kept, any other bit refused (KVM_SET_MSRS stops there); listed by KVM_GET_MSR_INDEX_LIST")]
    public static void hwcr_keeps_mcstatuswren_and_tscfreqsel(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Contains(Hwcr, kvm.GetMsrIndexList());
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0UL, vcpu.GetMsr(Hwcr));
        foreach (var (value, reads) in new[]
        {
            (McStatusWrEn, McStatusWrEn), (TscFreqSel, TscFreqSel), (0x148UL, 0UL),
            (McStatusWrEn | TscFreqSel | 0x148, McStatusWrEn | TscFreqSel), (0UL, 0UL),
        })
        {
            Assert.Equal(1, vcpu.SetMsrs([new MsrEntry(Hwcr, value)]));
            Assert.Equal(reads, vcpu.GetMsr(Hwcr));
        }
        vcpu.SetMsr(Hwcr, McStatusWrEn);
        foreach (ulong refused in new[] { 1UL, 2UL, 1UL << 17, 1UL << 30, 1UL << 63, McStatusWrEn | 1 })
        {
            Assert.Equal(0, vcpu.SetMsrs([new MsrEntry(Hwcr, refused)]));
            Assert.Equal(McStatusWrEn, vcpu.GetMsr(Hwcr));
        }
    }

    /// <summary>An AMD CPUID.0 (AuthenticAMD): what guest_cpuid_is_amd_compatible looks at.</summary>
    private static readonly CpuidEntry[] s_amd = [new CpuidEntry(0, 0, 0, 0xD, 0x6874_7541, 0x444D_4163, 0x6974_6E65)];

    /// <summary>wrmsr of <paramref name="msr"/> = <paramref name="value"/>, rdmsr, hlt; a #GP goes to vector 13's handler.</summary>
    private static IdtGuest WrmsrGuest(Kvm kvm, uint msr, ulong value) =>
        IdtGuest.Create(kvm, a =>
        {
            a.mov(ecx, msr);
            a.mov(eax, (uint)value);
            a.mov(edx, (uint)(value >> 32));
            a.wrmsr();
            a.rdmsr();
            a.hlt();
            a.hlt();
        }, Enumerable.Range(0, 32).Select(v => new IdtVector(v)));

    [ConformanceCase(X86 + " MSR_K7_HWCR from the guest: WRMSR of bit 18 or 24 (ignored bits dropped) is taken and RDMSR reads it; a reserved bit is a #GP")]
    public static void guest_writes_hwcr_as_the_host_does(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var g = WrmsrGuest(kvm, Hwcr, McStatusWrEn | TscFreqSel | 0x148))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
            Assert.Equal(McStatusWrEn | TscFreqSel, g.Vcpu.GetRegs().rax | (g.Vcpu.GetRegs().rdx << 32));
            Assert.Equal(McStatusWrEn | TscFreqSel, g.Vcpu.GetMsr(Hwcr));
        }
        using (var g = WrmsrGuest(kvm, Hwcr, 1))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Equal(13UL, g.Single().Vector);
            Assert.Equal(0UL, g.Vcpu.GetMsr(Hwcr));
        }
    }

    [ConformanceCase(X86 + " set_msr_mce / can_set_mci_status: a guest's non-zero MCi_STATUS write is taken only with HWCR.McStatusWrEn set on a vCPU whose CPUID vendor is AMD-compatible; otherwise a #GP (0 is always taken)")]
    public static void hwcr_bit_18_lets_an_amd_guest_write_mci_status(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (amd, wrEn, taken) in new[] { (false, false, false), (false, true, false), (true, false, false), (true, true, true) })
        {
            using var g = WrmsrGuest(kvm, Mc0Status, 0x8000_0000_0000_0001);
            if (amd) g.Vcpu.SetCpuid(s_amd);
            if (wrEn) g.Vcpu.SetMsr(Hwcr, McStatusWrEn);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            string what = $"AMD vendor {amd}, McStatusWrEn {wrEn}";
            if (taken)
            {
                Assert.True(g.Deliveries.Count == 0, what + ": no #GP");
                Assert.Equal(0x8000_0000_0000_0001UL, g.Vcpu.GetMsr(Mc0Status));
            }
            else
            {
                Assert.True(g.Deliveries.Count == 1 && g.Deliveries[0].Vector == 13, what + ": #GP");
                Assert.Equal(0UL, g.Vcpu.GetMsr(Mc0Status));
            }
        }
        using (var g = WrmsrGuest(kvm, Mc0Status, 0))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
        }
    }
}
