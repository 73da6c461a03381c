// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.X86;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The MSR families KVM keeps per vCPU without listing them in KVM_GET_MSR_INDEX_LIST: the machine-check banks with
/// KVM_X86_SETUP_MCE / KVM_X86_GET_MCE_CAP_SUPPORTED (arch/x86/kvm/x86.c kvm_vcpu_ioctl_x86_setup_mce, get_msr_mce,
/// set_msr_mce) and the MTRRs (arch/x86/kvm/mtrr.c kvm_mtrr_get_msr, kvm_mtrr_set_msr, kvm_mtrr_valid), from the host
/// (KVM_GET/SET_MSRS) and from a guest (RDMSR/WRMSR, #GP on a refusal). Probed on Linux 6.18 kvm_pvm first: every
/// rule here is upstream's.
/// </summary>
public static class MceAndMtrrRules
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const string Mtrr = "arch/x86/kvm/mtrr.c";
    private const ulong All = ulong.MaxValue;

    /// <summary>kvm_caps.supported_mce_cap on AMD (svm adds nothing to kvm_x86_vendor_init's MCG_CTL_P | MCG_SER_P).</summary>
    private const ulong AmdSupported = McgCap.CtlP | McgCap.SerP;

    private static uint McCtl(uint bank) => X86Msr.Mc0Ctl + 4 * bank;

    private static IdtVector[] Resuming => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v, ResumeSkip: 2))];

    [ConformanceCase(X86 + " KVM_CAP_MCE = KVM_MAX_MCE_BANKS (32) on /dev/kvm and a VM; kvm_arch_dev_ioctl KVM_X86_GET_MCE_CAP_SUPPORTED copies supported_mce_cap (MCG_CTL_P | MCG_SER_P on AMD), EFAULT for NULL; ENOTTY on a VM, EINVAL on a vCPU; KVM_X86_SETUP_MCE is ENOTTY on a VM, EINVAL on /dev/kvm")]
    public static void mce_capability_and_supported_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(32, kvm.MaxMceBanks);
        Assert.Equal(32L, vm.CheckExtension(KvmCaps.KVM_CAP_MCE));
        Assert.Equal(AmdSupported, kvm.GetSupportedMceCapabilities());
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED, 0UL), "GET_MCE_CAP_SUPPORTED NULL");
        var value = new byte[8];
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED, value), "GET_MCE_CAP_SUPPORTED on a VM");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED, value), "GET_MCE_CAP_SUPPORTED on a vCPU");
        value[0] = 1;
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_X86_SETUP_MCE, value), "SETUP_MCE on a VM");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_X86_SETUP_MCE, value), "SETUP_MCE on /dev/kvm");
    }

    [ConformanceCase(X86 + " kvm_arch_vcpu_create: mcg_cap = KVM_MAX_MCE_BANKS (0x20), banks and MCG_* zero; " + Mtrr + " MTRRcap 0x508 and zeroed MTRRs; KVM_GET_MSR_INDEX_LIST lists MCG_STATUS and MCG_CTL only (emulated_msrs_all), the feature list none of them; /dev/kvm KVM_GET_MSRS reads MCG_STATUS (advertised) but not MCG_CAP")]
    public static void new_vcpu_mce_and_mtrr_state(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0x20UL, vcpu.GetMsr(X86Msr.McgCap));
        foreach (uint msr in new[] { X86Msr.McgStatus, X86Msr.McgCtl, McCtl(0), McCtl(0) + 1, McCtl(31) + 3, X86Msr.Mc0Ctl2, X86Msr.Mc0Ctl2 + 31 })
            Assert.True(vcpu.GetMsr(msr) == 0, $"{X86Msr.NameOf(msr)} = 0x{vcpu.GetMsr(msr):X}");
        Assert.Equal(0x508UL, vcpu.GetMsr(X86Msr.MtrrCap));
        foreach (uint msr in MtrrMsrs())
            Assert.True(vcpu.GetMsr(msr) == 0, $"{X86Msr.NameOf(msr)} = 0x{vcpu.GetMsr(msr):X}");
        // Beyond the 32 banks, the 8 variable pairs and between the fixed ranges: no such MSR.
        foreach (uint msr in new uint[] { McCtl(32), X86Msr.Mc0Ctl2 + 32, 0x210, 0x251, 0x2fe })
            Assert.Throws<MsrAccessException>(() => vcpu.GetMsr(msr));

        var list = kvm.GetMsrIndexList();
        Assert.Contains(X86Msr.McgStatus, list);
        Assert.Contains(X86Msr.McgCtl, list);
        uint[] unlisted = [X86Msr.McgCap, X86Msr.MtrrCap, X86Msr.Mc0Ctl, X86Msr.Mc0Ctl2, .. MtrrMsrs()];
        foreach (uint msr in unlisted)
        {
            Assert.DoesNotContain(msr, list);
            Assert.DoesNotContain(msr, kvm.GetMsrFeatureIndexList());
        }
        Assert.Equal(1, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_MSRS, Msrs((X86Msr.McgStatus, 5))));
        Assert.Equal(0, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_MSRS, Msrs((X86Msr.McgCap, 5))));
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_setup_mce: bank count 0 or above KVM_MAX_MCE_BANKS, or a bit outside supported_mce_cap | 0xff | 0xff0000 (CMCI_P, EXT_P, TES_P, LMCE_P on AMD, bit 36), is EINVAL and changes nothing; 1..32 banks with CTL_P, SER_P and any MCG_EXT_CNT are taken; copy_from_user EFAULT")]
    public static void setup_mce_validation(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        ulong[] refused = [0, 33, 0xff, 0x100, McgCap.CmciP | 1, McgCap.ExtP | 1, (1UL << 11) | 1, McgCap.LmceP | 1, (1UL << 36) | 1, (1UL << 25) | 1];
        ulong[] taken = [1, 32, McgCap.CtlP | 1, McgCap.SerP | 1, AmdSupported | 2, McgCap.ExtCntMask | 1, 0x1_0001, AmdSupported | McgCap.ExtCntMask | 32];
        ulong current = vcpu.GetMsr(X86Msr.McgCap);
        foreach (ulong cap in refused)
        {
            var e = Assert.Throws<KvmException>(() => vcpu.SetupMce(cap));
            Assert.True(e.Errno == Errno.EINVAL, $"SETUP_MCE 0x{cap:X}: {e.Message}");
            Assert.Equal((cap, current), (cap, vcpu.GetMsr(X86Msr.McgCap)));
        }
        foreach (ulong cap in taken)
        {
            vcpu.SetupMce(cap);
            Assert.Equal((cap, cap), (cap, vcpu.GetMsr(X86Msr.McgCap)));
        }
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_X86_SETUP_MCE, 0UL), "SETUP_MCE NULL");
        Assert.Equal(taken[^1], vcpu.GetMsr(X86Msr.McgCap));
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_setup_mce: MCG_CTL all ones with MCG_CTL_P, MCi_CTL all ones for the new banks, MCi_STATUS/ADDR/MISC kept (also of banks hidden by a smaller count and shown again); MSRs of banks beyond the count are refused both ways")]
    public static void setup_mce_enables_banks_and_keeps_their_status(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetMsr(McCtl(0) + 1, 0x8000_0000_0000_0005);
        vcpu.SetMsr(McCtl(1) + 3, 9);
        vcpu.SetupMce(McgCap.CtlP | 2);
        Assert.Equal(McgCap.CtlP | 2, vcpu.GetMsr(X86Msr.McgCap));
        Assert.Equal(All, vcpu.GetMsr(X86Msr.McgCtl));
        Assert.Equal(All, vcpu.GetMsr(McCtl(0)));
        Assert.Equal(All, vcpu.GetMsr(McCtl(1)));
        Assert.Equal(0x8000_0000_0000_0005UL, vcpu.GetMsr(McCtl(0) + 1));
        Assert.Equal(9UL, vcpu.GetMsr(McCtl(1) + 3));
        Assert.Equal(0UL, vcpu.GetMsr(X86Msr.Mc0Ctl2 + 1));
        foreach (uint msr in new[] { McCtl(2), McCtl(2) + 1, McCtl(31) + 3, X86Msr.Mc0Ctl2 + 2 })
        {
            Assert.Throws<MsrAccessException>(() => vcpu.GetMsr(msr));
            Assert.Throws<MsrAccessException>(() => vcpu.SetMsr(msr, 0));
        }

        vcpu.SetMsr(McCtl(0), 0);
        vcpu.SetMsr(McCtl(0) + 1, 0x77);
        vcpu.SetupMce(1);
        // MCG_CTL keeps its value without MCG_CTL_P, but only 0 may be written now.
        Assert.Equal(All, vcpu.GetMsr(X86Msr.McgCtl));
        Assert.Throws<MsrAccessException>(() => vcpu.SetMsr(X86Msr.McgCtl, All));
        vcpu.SetMsr(X86Msr.McgCtl, 0);
        Assert.Equal(All, vcpu.GetMsr(McCtl(0)));
        Assert.Equal(0x77UL, vcpu.GetMsr(McCtl(0) + 1));
        Assert.Throws<MsrAccessException>(() => vcpu.GetMsr(McCtl(1) + 3));

        vcpu.SetupMce(McgCap.CtlP | 2);
        Assert.Equal(All, vcpu.GetMsr(X86Msr.McgCtl));
        Assert.Equal(9UL, vcpu.GetMsr(McCtl(1) + 3));
    }

    [ConformanceCase(X86 + " set_msr_mce / get_msr_mce, host-initiated: MCi_CTL only 0 or all ones (bits 10 and 0 may be clear); MCi_STATUS/ADDR/MISC and MCG_STATUS any value; MCG_CTL only 0 without MCG_CTL_P, 0 or all ones with it; MCi_CTL2 only 0 without MCG_CMCI_P; MCG_CAP and P5_MC_* not writable (not advertised)")]
    public static void host_bank_msr_values(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var (accepts, refuses) = Writers(vcpu);
        foreach (ulong v in new[] { 0UL, All, ~(1UL << 10), ~1UL, ~0x401UL })
            accepts(McCtl(5), v);
        foreach (ulong v in new[] { 5UL, ~2UL, 1UL << 63, ~(1UL << 11) })
            refuses(McCtl(5), v);
        foreach (uint msr in new[] { McCtl(5) + 1, McCtl(5) + 2, McCtl(31) + 3, X86Msr.McgStatus })
            foreach (ulong v in new[] { 0x8000_0000_0000_0005UL, All, 0x1234UL, 0UL })
                accepts(msr, v);
        accepts(X86Msr.McgCtl, 0);
        refuses(X86Msr.McgCtl, All);
        refuses(X86Msr.McgCtl, 1);
        accepts(X86Msr.Mc0Ctl2 + 7, 0);
        refuses(X86Msr.Mc0Ctl2 + 7, 1);
        refuses(X86Msr.Mc0Ctl2 + 7, 1UL << 30);
        foreach (ulong v in new[] { 0UL, 0x20UL, 1UL })
            refuses(X86Msr.McgCap, v);
        Assert.Equal(0UL, vcpu.GetMsr(MsrIndex.IA32_P5_MC_ADDR));
        refuses(MsrIndex.IA32_P5_MC_ADDR, 0);

        vcpu.SetupMce(McgCap.CtlP | 1);
        accepts(X86Msr.McgCtl, 0);
        accepts(X86Msr.McgCtl, All);
        refuses(X86Msr.McgCtl, 5);
    }

    [ConformanceCase(Mtrr + " kvm_mtrr_set_msr / kvm_mtrr_valid, host-initiated: memory types 0, 1, 4, 5, 6 only (each byte of a fixed range); MTRRdefType bits outside 0xcff reserved; variable base bits 8-11 and mask bits 0-10 reserved, and GPA bits from MAXPHYADDR (36 without CPUID) up; MTRRcap and MSRs find_mtrr does not hold are refused")]
    public static void host_mtrr_values(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var (accepts, refuses) = Writers(vcpu);
        foreach (ulong v in new ulong[] { 0xc06, 0x801, 0x404, 0, 0x6, 0xc00 })
            accepts(X86Msr.MtrrDefType, v);
        foreach (ulong v in new ulong[] { 0xcff, 0x100, 0x200, 0x1000, 2, 3, 7, 8, 0x1_0000_0006 })
            refuses(X86Msr.MtrrDefType, v);
        foreach (uint msr in new[] { MsrIndex.MTRRfix64K_00000, MsrIndex.MTRRfix16K_A0000, MsrIndex.MTRRfix4K_C0000, MsrIndex.MTRRfix4K_F8000 })
        {
            accepts(msr, 0x0606_0606_0606_0606);
            accepts(msr, 0x0001_0405_0600_0104);
            refuses(msr, 0x0606_0606_0606_0206);
            refuses(msr, 0x0706_0606_0606_0606);
            refuses(msr, 0x0806_0606_0606_0606);
        }
        uint base3 = X86Msr.MtrrPhysBase0 + 6, mask3 = base3 + 1;
        foreach (ulong v in new ulong[] { 0x1234_5006, 0x1234_5000, (1UL << 35) | 6, 0xf_ffff_f005 })
            accepts(base3, v);
        foreach (ulong v in new ulong[] { 0x1234_5002, 0x1234_5106, 0x1234_5806, 0x1234_5086, (1UL << 36) | 6, (1UL << 47) | 6, (1UL << 63) | 6 })
            refuses(base3, v);
        foreach (ulong v in new ulong[] { 0xffff_f800, 0xf_ffff_f000, (1UL << 35) | 0x800, 0 })
            accepts(mask3, v);
        foreach (ulong v in new ulong[] { 0xffff_f801, 0xffff_f400, (1UL << 36) | 0x800 })
            refuses(mask3, v);
        foreach (uint msr in new uint[] { X86Msr.MtrrCap, 0x210, 0x251, 0x2fe })
            refuses(msr, 0);
    }

    [ConformanceCase(Mtrr + " kvm_mtrr_valid: the variable MTRRs' reserved GPA bits follow the guest's MAXPHYADDR (" + X86 + " cpuid_query_maxphyaddr: CPUID.0x80000008 EAX[7:0] when leaf 0x80000000 reports it, else 36) as set by KVM_SET_CPUID2")]
    public static void mtrr_reserved_bits_follow_guest_maxphyaddr(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var (accepts, refuses) = Writers(vcpu);
        uint base0 = X86Msr.MtrrPhysBase0, mask0 = base0 + 1;
        vcpu.SetCpuid([CpuidEntry.Leaf(0x8000_0000, 0x8000_0008, 0, 0, 0), CpuidEntry.Leaf(0x8000_0008, 0x3028, 0, 0, 0)]);
        accepts(base0, (1UL << 39) | 6);
        accepts(mask0, (1UL << 39) | 0x800);
        refuses(base0, (1UL << 40) | 6);
        refuses(mask0, (1UL << 40) | 0x800);
        // Leaf 0x80000008 present but not reported by 0x80000000: the default 36.
        vcpu.SetCpuid([CpuidEntry.Leaf(0x8000_0000, 0x8000_0007, 0, 0, 0), CpuidEntry.Leaf(0x8000_0008, 0x3030, 0, 0, 0)]);
        refuses(base0, (1UL << 36) | 6);
        accepts(base0, (1UL << 35) | 6);
        // A value the old width accepted is kept when the width shrinks; the next write is checked against the new one.
        vcpu.SetCpuid([CpuidEntry.Leaf(0x8000_0000, 0x8000_0008, 0, 0, 0), CpuidEntry.Leaf(0x8000_0008, 0x3020, 0, 0, 0)]);
        Assert.Equal((1UL << 35) | 6, vcpu.GetMsr(base0));
        refuses(base0, (1UL << 32) | 6);
        accepts(base0, (1UL << 31) | 6);
    }

    [ConformanceCase(X86 + " kvm_emulate_rdmsr / kvm_emulate_wrmsr on MCE and MTRR MSRs (#GP on a refusal): a guest reads MCG_CAP and MTRRcap, may write MCi_CTL, ADDR, MISC, MCG_STATUS and valid MTRRs, but not a non-zero MCi_STATUS (no HWCR.McStatusWrEn), MCG_CTL without MCG_CTL_P (not even a read), MCi_CTL2 without MCG_CMCI_P, MCG_CAP, MTRRcap or an invalid MTRR; the host reads the guest's values")]
    public static void guest_mce_and_mtrr_access(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            void Wr(uint msr, ulong value) => MsrAsm.Wrmsr(a, msr, value);
            void Rd(uint msr, Iced.Intel.AssemblerRegister64 into)
            {
                a.mov(eax, 0x5a5a);
                a.mov(ecx, unchecked((int)msr));
                a.rdmsr();
                a.mov(into, rax);
            }
            Rd(X86Msr.McgCap, r8);
            Rd(X86Msr.MtrrCap, r9);
            Wr(McCtl(3), All);
            Wr(McCtl(3) + 1, 0);
            Wr(McCtl(3) + 2, 0x1234_5678_9abc);
            Wr(McCtl(3) + 3, 0x55);
            Wr(X86Msr.McgStatus, 5);
            Wr(X86Msr.MtrrDefType, 0xc06);
            Wr(X86Msr.MtrrPhysBase0, 0x1234_5006);
            Wr(X86Msr.MtrrPhysBase0 + 1, 0xffff_f800);
            Wr(MsrIndex.MTRRfix16K_80000, 0x0505_0505_0505_0505);
            Rd(X86Msr.MtrrDefType, r10);
            // Each of these is #GP(0) (the handler skips the 2-byte instruction); RAX keeps 0x5a5a on a refused read.
            Wr(McCtl(3) + 1, 5);
            Rd(X86Msr.McgCtl, r11);
            Wr(X86Msr.McgCtl, 0);
            Rd(X86Msr.Mc0Ctl2, r12);
            Wr(X86Msr.Mc0Ctl2, 0);
            Wr(X86Msr.McgCap, 0x20);
            Wr(X86Msr.MtrrCap, 0x508);
            Wr(X86Msr.MtrrDefType, 2);
            Wr(X86Msr.MtrrPhysBase0 + 1, 0xffff_f801);
            Wr(McCtl(3), 5);
            Rd(McCtl(32), r13);
            a.hlt();
        }, Resuming);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Deliveries;
        Assert.True(d.Count == 11, string.Join(",", d.Select(x => $"{x.Vector}@0x{x.Rip:X}")));
        Assert.All(d, x => Assert.Equal((13UL, (ulong?)0), (x.Vector, x.ErrorCode)));
        var r = g.Vcpu.GetRegs();
        Assert.Equal((0x20UL, 0x508UL, 0xc06UL), (r.r8, r.r9, r.r10));
        Assert.Equal((0x5a5aUL, 0x5a5aUL, 0x5a5aUL), (r.r11, r.r12, r.r13));
        var v = g.Vcpu;
        Assert.Equal(All, v.GetMsr(McCtl(3)));
        Assert.Equal(0UL, v.GetMsr(McCtl(3) + 1));
        Assert.Equal(0x1234_5678_9abcUL, v.GetMsr(McCtl(3) + 2));
        Assert.Equal(0x55UL, v.GetMsr(McCtl(3) + 3));
        Assert.Equal(5UL, v.GetMsr(X86Msr.McgStatus));
        Assert.Equal(0x1234_5006UL, v.GetMsr(X86Msr.MtrrPhysBase0));
        Assert.Equal(0xffff_f800UL, v.GetMsr(X86Msr.MtrrPhysBase0 + 1));
        Assert.Equal(0x0505_0505_0505_0505UL, v.GetMsr(MsrIndex.MTRRfix16K_80000));
        Assert.Equal(0x20UL, v.GetMsr(X86Msr.McgCap));
    }

    [ConformanceCase(X86 + " KVM_X86_SETUP_MCE before the first KVM_RUN is what the guest sees (MCG_CAP, MCG_CTL readable with MCG_CTL_P, one bank: MC1 #GP), and it is accepted again after KVM_RUN (no run-state check)")]
    public static void setup_mce_before_and_after_run(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(ecx, unchecked((int)X86Msr.McgCap));
            a.rdmsr();
            a.mov(r8, rax);
            a.mov(ecx, unchecked((int)X86Msr.McgCtl));
            a.rdmsr();
            a.mov(r9, rax);
            a.mov(ecx, unchecked((int)McCtl(0)));
            a.rdmsr();
            a.mov(r10, rax);
            a.mov(eax, 0x5a5a);
            a.mov(ecx, unchecked((int)McCtl(1)));
            a.rdmsr(); // #GP: one bank
            a.mov(r11, rax);
            a.hlt();
        }, Resuming);
        g.Vcpu.SetupMce(McgCap.CtlP | 1);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Single(g.Deliveries);
        var r = g.Vcpu.GetRegs();
        Assert.Equal((McgCap.CtlP | 1, 0xffff_ffffUL, 0xffff_ffffUL, 0x5a5aUL), (r.r8, r.r9, r.r10, r.r11));
        g.Vcpu.SetupMce(4);
        Assert.Equal(4UL, g.Vcpu.GetMsr(X86Msr.McgCap));
        Assert.Equal(All, g.Vcpu.GetMsr(McCtl(3)));
    }

    /// <summary>The MTRRs find_mtrr holds: 8 variable pairs, the 11 fixed ranges, MTRRdefType.</summary>
    private static IEnumerable<uint> MtrrMsrs()
    {
        for (uint i = 0; i < 16; i++) yield return X86Msr.MtrrPhysBase0 + i;
        yield return MsrIndex.MTRRfix64K_00000;
        yield return MsrIndex.MTRRfix16K_80000;
        yield return MsrIndex.MTRRfix16K_A0000;
        for (uint i = MsrIndex.MTRRfix4K_C0000; i <= MsrIndex.MTRRfix4K_F8000; i++) yield return i;
        yield return X86Msr.MtrrDefType;
    }

    /// <summary>Host writes that must be taken (and read back) or refused (and leave the old value).</summary>
    private static (Action<uint, ulong> Accepts, Action<uint, ulong> Refuses) Writers(Vcpu vcpu) => (
        (msr, value) =>
        {
            vcpu.SetMsr(msr, value);
            Assert.True(vcpu.GetMsr(msr) == value, $"{X86Msr.NameOf(msr)} written 0x{value:X} reads 0x{vcpu.GetMsr(msr):X}");
        },
        (msr, value) =>
        {
            ulong? before = TryGet(vcpu, msr);
            var e = Assert.Throws<MsrAccessException>(() => vcpu.SetMsr(msr, value));
            Assert.Equal((msr, value), (e.Index, e.Value));
            Assert.Equal(before, TryGet(vcpu, msr));
        });

    private static ulong? TryGet(Vcpu vcpu, uint msr)
    {
        Span<MsrEntry> e = [new(msr, 0)];
        return vcpu.GetMsrs(e) == 1 ? e[0].Value : null;
    }

    /// <summary>struct kvm_msrs (nmsrs, pad 0) followed by the entries, as raw bytes.</summary>
    private static byte[] Msrs(params (uint Index, ulong Data)[] entries)
    {
        var b = new byte[8 + 16 * entries.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)entries.Length);
        for (int i = 0; i < entries.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8 + 16 * i), entries[i].Index);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16 + 16 * i), entries[i].Data);
        }
        return b;
    }
}
