// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// CPUID faulting as arch/x86/kvm/x86.c emulates it on every vendor: MSR_PLATFORM_INFO (0xce) bit 31 says it is
/// supported, MSR_MISC_FEATURES_ENABLES (0x140) bit 0 turns it on (kvm_get/set_msr_common), and then CPUID outside
/// ring 0 is a #GP (kvm_emulate_cpuid: "if (cpuid_fault_enabled(vcpu) &amp;&amp; !kvm_require_cpl(vcpu, 0)) return 1").
/// Also KVM_CAP_MSR_PLATFORM_INFO (kvm->arch.guest_can_read_msr_platform_info) and do_set_msr's rule that an immutable
/// feature MSR — MSR_PLATFORM_INFO is one — cannot change once the vCPU has run. Probed on Linux 6.18 kvm_pvm in C
/// first (/tmp/cpuidfault/probe.c, a real-mode guest for the guest accesses); its MSR_MISC_FEATURES_ENABLES takes any
/// value (<see cref="HostDeviations.KvmPvmMiscFeaturesEnablesUnchecked"/>).
/// </summary>
public static class CpuidFaulting
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const uint PlatformInfo = 0xce, MiscFeatures = 0x140;
    private const ulong CpuidFault = 0x8000_0000;

    [ConformanceCase(X86 + " kvm_set_msr_common MSR_MISC_FEATURES_ENABLES: only bit 0 (CPUID_FAULT), and only while MSR_PLATFORM_INFO has CPUID_FAULT; MSR_PLATFORM_INFO: the host cannot clear CPUID_FAULT while faulting is on (KVM_SET_MSRS stops there); both listed by KVM_GET_MSR_INDEX_LIST, 0x140 reads 0 on a new vCPU")]
    public static void misc_features_enables_needs_platform_info_cpuid_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool pvm = HostDeviations.KvmPvmMiscFeaturesEnablesUnchecked(ctx.Target.IsReal);
        var list = kvm.GetMsrIndexList();
        int at = list.ToList().IndexOf(PlatformInfo);
        Assert.True(at >= 0 && at + 1 < list.Count && list[at + 1] == MiscFeatures, "0x140 follows 0xce in emulated_msrs_all");
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal((CpuidFault, 0UL), (vcpu.GetMsr(PlatformInfo), vcpu.GetMsr(MiscFeatures)));

        // Faulting on; the host may not take CPUID_FAULT away now, but may change the other bits.
        Assert.Equal(1, vcpu.SetMsrs([new MsrEntry(MiscFeatures, 1)]));
        Assert.Equal(1UL, vcpu.GetMsr(MiscFeatures));
        Assert.Equal(pvm ? 1 : 0, vcpu.SetMsrs([new MsrEntry(PlatformInfo, 0)]));
        Assert.Equal(pvm ? 0 : CpuidFault, vcpu.GetMsr(PlatformInfo));
        Assert.Equal(1, vcpu.SetMsrs([new MsrEntry(PlatformInfo, CpuidFault | 0xff00)]));
        Assert.Equal(CpuidFault | 0xff00, vcpu.GetMsr(PlatformInfo));
        vcpu.SetMsr(PlatformInfo, CpuidFault);

        // Reserved bits (RING3MWAIT's bit 1 among them: x86.c has no rule for it).
        foreach (ulong reserved in new[] { 2UL, 3UL, 4UL, 0x80UL, 1UL << 63 })
        {
            Assert.True(vcpu.SetMsrs([new MsrEntry(MiscFeatures, reserved)]) == (pvm ? 1 : 0), $"0x140 = 0x{reserved:X}");
            Assert.Equal(pvm ? reserved : 1UL, vcpu.GetMsr(MiscFeatures));
            vcpu.SetMsr(MiscFeatures, 1);
        }

        // Faulting off: CPUID_FAULT can go, and then faulting cannot be turned on.
        vcpu.SetMsr(MiscFeatures, 0);
        Assert.Equal(1, vcpu.SetMsrs([new MsrEntry(PlatformInfo, 0)]));
        Assert.Equal(pvm ? 1 : 0, vcpu.SetMsrs([new MsrEntry(MiscFeatures, 1)]));
        Assert.Equal(pvm ? 1UL : 0, vcpu.GetMsr(MiscFeatures));
    }

    [ConformanceCase(X86 + " do_set_msr: after KVM_RUN a host write that changes an immutable feature MSR (kvm_is_immutable_feature_msr: MSR_PLATFORM_INFO) is refused, the same value is taken; MSR_MISC_FEATURES_ENABLES is not one")]
    public static void platform_info_is_immutable_after_run(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(al, 0);
            a.@out(0x10, al);
            a.hlt();
        }, []);
        var vcpu = g.Vcpu;
        vcpu.SetMsr(PlatformInfo, CpuidFault | 0xff00);
        vcpu.SetMsr(PlatformInfo, CpuidFault);
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == 0x10, exit.ToString());
        foreach (ulong changed in new[] { 0UL, CpuidFault | 0xff00, 0xff00UL })
        {
            Assert.True(vcpu.SetMsrs([new MsrEntry(PlatformInfo, changed)]) == 0, $"0xce = 0x{changed:X} after KVM_RUN");
            Assert.Equal(CpuidFault, vcpu.GetMsr(PlatformInfo));
        }
        Assert.Equal(1, vcpu.SetMsrs([new MsrEntry(PlatformInfo, CpuidFault)]));
        // With faulting off, so that the clearing write above fails for the immutable rule, not cpuid_fault_enabled.
        Assert.Equal(0UL, vcpu.GetMsr(MiscFeatures));
        Assert.Equal(2, vcpu.SetMsrs([new MsrEntry(MiscFeatures, 1), new MsrEntry(MiscFeatures, 0)]));
    }

    [ConformanceCase(X86 + " KVM_CAP_MSR_PLATFORM_INFO: KVM_CHECK_EXTENSION 1 on /dev/kvm and a VM; KVM_ENABLE_CAP sets guest_can_read_msr_platform_info = args[0] (any non-zero value allows, 0 forbids: the guest's RDMSR 0xce is a #GP, KVM_GET_MSRS still reads it), also after KVM_CREATE_VCPU and KVM_RUN; flags → EINVAL")]
    public static void msr_platform_info_capability(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_MSR_PLATFORM_INFO));
        // RBX = 0x1234; RDMSR 0xce (a #GP skips it) into RBX; OUT 0x10; again.
        using var g = IdtGuest.Create(kvm, a =>
        {
            var top = a.CreateLabel();
            a.Label(ref top);
            a.mov(ebx, 0x1234);
            a.mov(ecx, PlatformInfo);
            a.xor(eax, eax);
            a.rdmsr();
            a.mov(ebx, eax);
            a.mov(al, 0);
            a.@out(0x10, al);
            a.jmp(top);
        }, [new IdtVector(13, ResumeSkip: 4)]);
        var vm = g.Guest.Vm;
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_MSR_PLATFORM_INFO));
        int faults = 0;
        foreach (ulong arg in new ulong[] { 0, 0x100, 1, 0 })
        {
            vm.EnableCapability(KvmCaps.KVM_CAP_MSR_PLATFORM_INFO, arg, 5);
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == 0x10, $"args[0] 0x{arg:X}: {exit.ToString()}");
            if (arg == 0) faults++;
            Assert.Equal(arg == 0 ? 0x1234UL : CpuidFault, g.Vcpu.GetRegs().rbx);
            Assert.Equal(faults, g.Deliveries.Count);
            Assert.Equal(CpuidFault, g.Vcpu.GetMsr(PlatformInfo));
        }
        Assert.All(g.Deliveries, d => Assert.Equal((13UL, (ulong?)0), (d.Vector, d.ErrorCode)));
        var flags = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_MSR_PLATFORM_INFO, flags = 1 };
        flags.args[0] = 1;
        var e = Assert.Throws<KvmException>(() => vm.EnableCapability(flags));
        Assert.Equal(Errno.EINVAL, e.Errno);
    }

    [ConformanceCase(X86 + " kvm_emulate_cpuid: with MSR_MISC_FEATURES_ENABLES.CPUID_FAULT set (by a guest WRMSR at CPL 0 or the host) CPUID at CPL 0 runs; a guest WRMSR of a reserved bit is a #GP")]
    public static void cpuid_runs_at_cpl_0_with_faulting_on(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool pvm = HostDeviations.KvmPvmMiscFeaturesEnablesUnchecked(ctx.Target.IsReal);
        using var g = IdtGuest.Create(kvm, a =>
        {
            // WRMSR 0x140 = 2 (reserved: #GP, the handler skips it), then = 1; RDMSR it into R8; CPUID leaf 0 → R9.
            a.mov(ecx, MiscFeatures);
            a.xor(edx, edx);
            a.mov(eax, 2);
            a.wrmsr();
            a.mov(eax, 1);
            a.wrmsr();
            a.xor(eax, eax);
            a.rdmsr();
            a.mov(r8, rax);
            a.xor(eax, eax);
            a.mov(ebx, 0x1234);
            a.cpuid();
            a.mov(r9, rbx);
            a.mov(al, 0);
            a.@out(0x10, al);
            a.hlt();
        }, [new IdtVector(13, ResumeSkip: 2)]);
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        uint vendorEbx = kvm.GetSupportedCpuid().First(e => e.Function == 0).Ebx;
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == 0x10, exit.ToString());
        var regs = g.Vcpu.GetRegs();
        Assert.Equal((1UL, (ulong)vendorEbx), (regs.r8, regs.r9));
        Assert.Equal(1UL, g.Vcpu.GetMsr(MiscFeatures));
        var d = g.Deliveries;
        Assert.True(d.Count == (pvm ? 0 : 1), $"deliveries: {string.Join("; ", d)}");
        if (!pvm) Assert.Equal((13UL, (ulong?)0, (ulong)LongModeGuest.CodeGpa + 12), (d[0].Vector, d[0].ErrorCode, d[0].Rip));
    }

    /// <summary>GDT entries 5 and 6: a 64-bit ring-3 code segment and a ring-3 data segment.</summary>
    private const ushort UserCode = 0x28 | 3, UserData = 0x30 | 3;

    /// <summary>A 2 MiB user page at GPA 0x200000, past the guest's memory: a store there is KVM_EXIT_MMIO.</summary>
    private const ulong MmioGpa = 0x20_0000;

    [ConformanceCase(X86 + " kvm_emulate_cpuid: \"if (cpuid_fault_enabled(vcpu) && !kvm_require_cpl(vcpu, 0)) return 1\" — at CPL 3 CPUID runs with MSR_MISC_FEATURES_ENABLES 0 and is #GP(0) with CPUID_FAULT set, the registers left as they were")]
    public static void cpuid_faults_at_cpl_3(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        uint vendorEbx = kvm.GetSupportedCpuid().First(e => e.Function == 0).Ebx;
        foreach (bool faulting in new[] { false, true })
        {
            string what = faulting ? "CPUID_FAULT set" : "MSR_MISC_FEATURES_ENABLES 0";
            // At CPL 3 from the start: CPUID leaf 0, EBX stored to the MMIO page. The #GP handler (ring 0) halts.
            using var g = IdtGuest.Create(kvm, a =>
            {
                a.xor(eax, eax);
                a.mov(ebx, 0x1234);
                a.cpuid();
                a.mov(rdi, MmioGpa);
                a.mov(__dword_ptr[rdi], ebx);
                var spin = a.CreateLabel();
                a.Label(ref spin);
                a.jmp(spin);
            }, [new IdtVector(13)]);
            g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
            EnterRing3(g);
            if (faulting) g.Vcpu.SetMsr(MiscFeatures, 1);
            var exit = g.Vcpu.Run();
            var regs = g.Vcpu.GetRegs();
            if (!faulting)
            {
                Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioIsWrite && exit.MmioAddress == MmioGpa,
                    $"{what}: {exit.ToString()} at RIP 0x{regs.rip:X}");
                Assert.Equal(vendorEbx, BitConverter.ToUInt32(exit.MmioData));
                Assert.Empty(g.Deliveries);
                continue;
            }
            // The #GP(0) on the ring-0 stack from TSS.RSP0 (error code + 5 qwords below 0x20000), the frame pointing at
            // the CPUID with the ring-3 CS and SS.
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: {exit.ToString()} at RIP 0x{regs.rip:X}");
            var d = g.Single();
            Assert.Equal((13UL, (ulong?)0, LongModeGuest.CodeGpa + 7, (ulong)UserCode, (ulong)UserData, Rsp0 - 6 * 8),
                (d.Vector, d.ErrorCode, d.Rip, d.Cs, d.Ss, d.HandlerRsp));
        }
    }

    /// <summary>TSS.RSP0: the ring-0 stack a fault at CPL 3 switches to.</summary>
    private const ulong Rsp0 = 0x2_0000;

    /// <summary>
    /// Puts an <see cref="IdtGuest"/> at CPL 3 at its entry point: GDT entries for <see cref="UserCode"/> and
    /// <see cref="UserData"/> (KVM_SET_SREGS loads CS and SS with DPL 3, so CPL is 3), TR and its TSS.RSP0 for the way
    /// into the ring-0 handlers, the U/S bit on the page-table path of the code page, and <see cref="MmioGpa"/> as a user page.
    /// </summary>
    private static void EnterRing3(IdtGuest g)
    {
        var (code, data) = g.PrepareRing3(UserCode, UserData, Rsp0);
        const ulong User = 1UL << 2;
        g.Guest.Memory.Write(Layout.Pd + 8, MmioGpa | PageTables.LargePage | User | PageTables.Writable | PageTables.Present);
        var sregs = g.Vcpu.GetSregs();
        (sregs.cs, sregs.ss, sregs.ds, sregs.es) = (code, data, data, data);
        g.Vcpu.SetSregs(sregs);
    }
}
