// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// What an INIT changes and keeps: arch/x86/kvm/x86.c kvm_vcpu_reset(vcpu, init_event = true), svm.c svm_vcpu_reset
/// (init_vmcb; __svm_vcpu_reset only on RESET) and lapic.c kvm_lapic_reset(vcpu, true), reached through a latched INIT
/// (KVM_SET_VCPU_EVENTS VALID_SMM smi.latched_init) that KVM_GET_MP_STATE takes (kvm_apic_accept_events). Probed on
/// Linux 6.18 kvm_pvm in C first (/tmp/fuzzinit/init.c, /tmp/fuzzinit/fs.c). Not asserted: NMI masking, which upstream
/// SVM keeps across INIT without vNMI (svm->nmi_masked is cleared by __svm_vcpu_reset, RESET only) but clears with vNMI
/// (init_vmcb rewrites int_ctl, dropping V_NMI_BLOCKING) — this host (Genoa) reads it cleared.
/// </summary>
public static class InitReset
{
    private const string X86 = "arch/x86/kvm/x86.c kvm_vcpu_reset(init_event = true)";
    private const uint Efer = 0xC000_0080, FsBase = 0xC000_0100, GsBase = 0xC000_0101;
    private const ulong Cd = 1UL << 30, Nw = 1UL << 29, Ne = 1UL << 5, Et = 1UL << 4, Pe = 1;
    private const int Tdcr = 0x3e0;

    /// <summary>MSRs an INIT keeps (x86.c resets PAT, MISC_FEATURES_ENABLES, MISC_ENABLE, XCR0, XSS only "if (!init_event)"; init_vmcb leaves the VMCB's STAR/LSTAR/CSTAR/SFMASK/KERNEL_GS_BASE/SYSENTER alone).</summary>
    private static readonly (uint Index, ulong Value)[] s_kept =
    [
        (0xC000_0081, 0x0023_0010_0000_0000), (0xC000_0082, 0xFFFF_FFFF_8100_0000), (0xC000_0083, 0xFFFF_FFFF_8200_0000),
        (0xC000_0084, 0x4_7700), (0xC000_0102, 0x3000), (0x174, 0x10), (0x175, 0xFFFF_FFFF_8300_0000), (0x176, 0xFFFF_FFFF_8400_0000),
        (0x277, 0x0606_0606_0606_0606), (0xCE, 0x8000_FF00), (0x140, 1), (0xC001_0015, 1UL << 18), (0x2FF, 0xC06), (0x8B, 0x1234),
    ];

    [ConformanceCase(X86 + ": GPRs 0 but RDX = CPUID.1.EAX, RIP 0xfff0, RFLAGS 2, the real-mode segments and tables, CR0 = ET | the old CD/NW, CR2/CR3/CR4/EFER 0, DR0-3 0, DR6 0xffff0ff0, DR7 0x400, the interrupt shadow gone; kept: the APIC base, PAT, MSR_MISC_FEATURES_ENABLES, MSR_PLATFORM_INFO, STAR/LSTAR/CSTAR/SFMASK/KERNEL_GS_BASE, SYSENTER, HWCR, MTRRs, the microcode revision, XCR0 and the FPU/SSE/AVX state (kvm_xstate_reset zeroes only MPX/CET components); lapic.c kvm_lapic_reset(init_event): ID kept, TPR/LDR/TDCR 0, DFR all ones, SPIV 0xff, LVTs masked; an AP ends INIT_RECEIVED")]
    public static void init_resets_registers_and_keeps_msrs_xcr0_fpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool pvmFs = HostDeviations.KvmPvmInitKeepsSegmentBaseMsrs(ctx.Target.IsReal);
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var v0 = vm.CreateVcpu(0);
        using var v = vm.CreateVcpu(1);
        var cpuid = kvm.GetSupportedCpuid();
        v.SetCpuid(cpuid);
        uint leaf1Eax = cpuid.First(e => e.Function == 1).Eax;

        var s = v.GetSregs();
        s.cr0 = Cd | Nw | Et | Ne | Pe;
        (s.cr2, s.cr3, s.cr4, s.efer) = (0x1234, 0x5000, 0x4_0620, 1);
        (s.fs.@base, s.gs.@base) = (0x7000, 0x2000);
        (s.gdt.@base, s.gdt.limit, s.idt.@base, s.idt.limit) = (0x3000, 0x27, 0x4000, 0xff);
        v.SetSregs(s);
        var r = v.GetRegs();
        (r.rax, r.rbx, r.rdx, r.rsp, r.rip, r.rflags) = (1, 2, 3, 0x8000, 0x1234, 0x202);
        v.SetRegs(r);
        foreach (var (index, value) in s_kept) Assert.True(v.SetMsrs([new MsrEntry(index, value)]) == 1, $"MSR 0x{index:X}");
        var xcrs = new kvm_xcrs { nr_xcrs = 1 };
        xcrs.xcrs[0].value = 7;
        v.SetXcrs(xcrs);
        var fpu = v.GetFpu();
        fpu.fcw = 0x27f;
        fpu.xmm[0] = 0xab;
        v.SetFpu(fpu);
        var fpuBefore = v.GetFpu();
        var d = new kvm_debugregs { dr6 = 0xffff_4ff1, dr7 = 0x40f };
        (d.db[0], d.db[3]) = (0x1111, 0x3333);
        v.SetDebugRegs(d);
        var ev = v.GetEvents();
        (ev.interrupt_shadow, ev.flags) = (1, KvmVcpuEvents.KVM_VCPUEVENT_VALID_SHADOW);
        v.SetEvents(ev);
        var lapic = v.GetLapic();
        lapic.Tpr = 0x20;
        lapic[LapicState.LdrOffset] = 0x0200_0000;
        lapic[LapicState.DfrOffset] = 0x0fff_ffff;
        lapic.Svr = 0x1ff;
        lapic[LapicState.LvtLint0Offset] = 0x700;
        lapic[Tdcr] = 3;
        v.SetLapic(lapic);
        ulong apicBase = v.GetSregs().apic_base;

        // The latch with the events as they are: KVM_SET_VCPU_EVENTS always writes nmi.masked and the injected events.
        ev = v.GetEvents();
        (ev.flags, ev.smi_latched_init) = (KvmVcpuEvents.KVM_VCPUEVENT_VALID_SMM, 1);
        v.SetEvents(ev);
        Assert.Equal(KvmMpState.KVM_MP_STATE_INIT_RECEIVED, v.GetMpState());

        r = v.GetRegs();
        Assert.Equal((0UL, 0UL, (ulong)leaf1Eax, 0UL, 0xfff0UL, 2UL), (r.rax, r.rbx, r.rdx, r.rsp, r.rip, r.rflags));
        s = v.GetSregs();
        Assert.Equal(Cd | Nw | Et, s.cr0);
        Assert.Equal((0UL, 0UL, 0UL, 0UL, 0UL, apicBase), (s.cr2, s.cr3, s.cr4, s.cr8, s.efer, s.apic_base));
        Assert.Equal(((ushort)0xf000, 0xffff_0000UL, 0UL, 0UL), (s.cs.selector, s.cs.@base, s.fs.@base, s.gs.@base));
        Assert.Equal((0UL, (ushort)0xffff, 0UL, (ushort)0xffff), (s.gdt.@base, s.gdt.limit, s.idt.@base, s.idt.limit));
        foreach (var (index, value) in s_kept) Assert.True(v.GetMsr(index) == value, $"MSR 0x{index:X} = 0x{v.GetMsr(index):X}");
        Assert.Equal(0UL, v.GetMsr(Efer));
        // HostDeviations.KvmPvmInitKeepsSegmentBaseMsrs: the MSR view of FS/GS base is stale there.
        Assert.Equal(pvmFs ? (0x7000UL, 0x2000UL) : (0UL, 0UL), (v.GetMsr(FsBase), v.GetMsr(GsBase)));
        Assert.Equal(7UL, v.GetXcrs().xcrs[0].value);
        fpu = v.GetFpu();
        Assert.Equal(((ushort)0x27f, (byte)0xab), (fpu.fcw, fpu.xmm[0]));
        Assert.Equal((fpuBefore.fsw, fpuBefore.ftwx, fpuBefore.mxcsr), (fpu.fsw, fpu.ftwx, fpu.mxcsr));
        d = v.GetDebugRegs();
        Assert.Equal((0UL, 0UL, 0xffff_0ff0UL, 0x400UL), (d.db[0], d.db[3], d.dr6, d.dr7));
        ev = v.GetEvents();
        Assert.Equal((0, 0, 0), (ev.interrupt_shadow, ev.nmi_pending, ev.smi_latched_init));
        lapic = v.GetLapic();
        Assert.Equal((1, 0u, 0u, 0xffff_ffffu, 0xffu, 0x1_0000u, 0u),
            (lapic.Id, lapic.Tpr, lapic[LapicState.LdrOffset], lapic[LapicState.DfrOffset], lapic.Svr, lapic[LapicState.LvtLint0Offset], lapic[Tdcr]));
    }
}
