// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.X86;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_X86_SET_MCE: a VMM reporting a machine-check error to the guest (arch/x86/kvm/x86.c
/// kvm_vcpu_ioctl_x86_set_mce, is_ucna, kvm_vcpu_x86_set_ucna, kvm_queue_exception(MC_VECTOR); KVM_REQ_TRIPLE_FAULT
/// in vcpu_enter_guest). The banks are read back with KVM_GET_MSRS; an #MC is recorded by <see cref="IdtGuest"/>'s
/// handler for vector 18. Probed on Linux 6.18 kvm_pvm first (C probes, real-mode guest): every rule here is upstream's.
/// </summary>
public static class MachineCheckInjection
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const ulong Start = LongModeGuest.CodeGpa;
    private const ulong Val = 1UL << 63, Over = 1UL << 62, Uc = 1UL << 61, En = 1UL << 60, Pcc = 1UL << 57, S = 1UL << 56, Ar = 1UL << 55;
    private const ulong Srar = Val | Uc | En | S | Ar;
    private const ulong RipvMcip = 0x5; // MCG_STATUS.RIPV | MCIP
    private const ulong Cr4Mce = 1UL << 6;

    private static uint Status(uint bank) => X86Msr.Mc0Ctl + 4 * bank + 1;

    private static (ulong Status, ulong Addr, ulong Misc) Bank(Vcpu vcpu, uint bank) =>
        (vcpu.GetMsr(Status(bank)), vcpu.GetMsr(Status(bank) + 1), vcpu.GetMsr(Status(bank) + 2));

    private static void Halt(Assembler a)
    {
        a.hlt();
        a.hlt();
    }

    private static IdtGuest Guest(Kvm kvm, bool cr4Mce, ulong mcgCap = McgCap.CtlP | 2)
    {
        var g = IdtGuest.Create(kvm, Halt, Enumerable.Range(0, 32).Select(v => new IdtVector(v)));
        if (mcgCap != 0) g.Vcpu.SetupMce(mcgCap);
        var s = g.Vcpu.GetSregs();
        s.cr4 = cr4Mce ? s.cr4 | Cr4Mce : s.cr4 & ~Cr4Mce;
        g.Vcpu.SetSregs(s);
        return g;
    }

    private static long SetMce(CaseContext ctx, Vcpu vcpu, byte bank, ulong status, ulong addr = 0, ulong misc = 0, ulong mcgStatus = 0)
    {
        var mce = new kvm_x86_mce { bank = bank, status = status, addr = addr, misc = misc, mcg_status = mcgStatus };
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<kvm_x86_mce>(ref mce)).ToArray();
        return ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_X86_SET_MCE, bytes);
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_set_mce: a bank at or beyond MCG_CAP's count, or a status without VAL, is EINVAL and changes nothing; copy_from_user EFAULT; ENOTTY on a VM fd")]
    public static void set_mce_checks_bank_and_valid_bit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        // A new vCPU has 32 banks.
        CaseContext.AssertErrno(Errno.EINVAL, SetMce(ctx, vcpu, 32, Val), "bank 32 of 32");
        CaseContext.AssertErrno(Errno.EINVAL, SetMce(ctx, vcpu, 255, Val), "bank 255");
        CaseContext.AssertErrno(Errno.EINVAL, SetMce(ctx, vcpu, 0, Uc | En, 1, 2, RipvMcip), "no VAL");
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_X86_SET_MCE, 0UL), "NULL");
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_X86_SET_MCE, new byte[64]), "on a VM");
        Assert.Equal((0UL, 0UL, 0UL), Bank(vcpu, 0));
        Assert.Equal(0UL, vcpu.GetMsr(X86Msr.McgStatus));
        Assert.Equal(0, vcpu.GetEvents().exception_injected);

        Assert.Equal(0, SetMce(ctx, vcpu, 31, Val | En, 1, 2));
        Assert.Equal((Val | En, 1UL, 2UL), Bank(vcpu, 31));
        vcpu.SetupMce(2);
        CaseContext.AssertErrno(Errno.EINVAL, SetMce(ctx, vcpu, 2, Val), "bank 2 of 2");
    }

    [ConformanceCase(X86+ " kvm_vcpu_ioctl_x86_set_mce: an uncorrected error is dropped (0, nothing changed) while MCG_CTL (with MCG_CTL_P) or the bank's MCi_CTL is not all ones — a new vCPU's MCi_CTL is 0")]
    public static void uncorrected_error_is_dropped_by_mcg_ctl_and_mci_ctl(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var g = Guest(kvm, cr4Mce: true, mcgCap: 0))
        {
            Assert.Equal(0, SetMce(ctx, g.Vcpu, 0, Srar, 0x1000, 0x86, RipvMcip));
            Assert.Equal((0UL, 0UL, 0UL), Bank(g.Vcpu, 0));
            Assert.Equal(0UL, g.Vcpu.GetMsr(X86Msr.McgStatus));
            Assert.Equal(0, g.Vcpu.GetEvents().exception_injected);
        }
        using (var g = Guest(kvm, cr4Mce: true))
        {
            g.Vcpu.SetMsr(X86Msr.McgCtl, 0);
            Assert.Equal(0, SetMce(ctx, g.Vcpu, 0, Srar, 0x1000, 0x86, RipvMcip));
            Assert.Equal((0UL, 0UL, 0UL), Bank(g.Vcpu, 0));
            g.Vcpu.SetMsr(X86Msr.McgCtl, ulong.MaxValue);
            g.Vcpu.SetMsr(X86Msr.Mc0Ctl + 4, 0);
            Assert.Equal(0, SetMce(ctx, g.Vcpu, 1, Srar, 0x1000, 0x86, RipvMcip));
            Assert.Equal((0UL, 0UL, 0UL), Bank(g.Vcpu, 1));
            Assert.Equal(0UL, g.Vcpu.GetMsr(X86Msr.McgStatus));
            Assert.Equal(0, g.Vcpu.GetEvents().exception_injected);
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
            Assert.Empty(g.Deliveries);
        }
    }

    [ConformanceCase(X86+ " kvm_vcpu_ioctl_x86_set_mce: an uncorrected error with CR4.MCE set fills the bank and MCG_STATUS and queues #MC (delivered without error code at the next KVM_RUN); a second one while MCG_STATUS.MCIP is set is a triple fault (KVM_EXIT_SHUTDOWN), banks unchanged")]
    public static void uncorrected_error_queues_a_machine_check(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, cr4Mce: true);
        g.Vcpu.InjectMachineCheck(0, Srar | Pcc, 0x1000, 0x86, RipvMcip);
        Assert.Equal((Srar | Pcc, 0x1000UL, 0x86UL), Bank(g.Vcpu, 0));
        Assert.Equal(RipvMcip, g.Vcpu.GetMsr(X86Msr.McgStatus));
        var e = g.Vcpu.GetEvents();
        Assert.Equal((1, 18, 0), (e.exception_injected, e.exception_nr, e.exception_has_error_code));

        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Single();
        Assert.Equal((18UL, (ulong?)null, Start, 0x2UL), (d.Vector, d.ErrorCode, d.Rip, d.Rflags));

        // MCIP is still set (the guest did not clear it): the next uncorrected error is a triple fault.
        g.Vcpu.InjectMachineCheck(1, Srar, 0x3000, 0x86, RipvMcip);
        Assert.Equal((0UL, 0UL, 0UL), Bank(g.Vcpu, 1));
        ulong rip = g.Vcpu.GetRegs().rip;
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, g.Vcpu.Run().Reason);
        Assert.Equal(rip, g.Vcpu.GetRegs().rip);
        Assert.Single(g.Deliveries);
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_set_mce: an uncorrected error with CR4.MCE clear makes KVM_REQ_TRIPLE_FAULT (ready_for_interrupt_injection 0 meanwhile: kvm_is_exception_pending); the next KVM_RUN ends in KVM_EXIT_SHUTDOWN without running, the one after runs on")]
    public static void uncorrected_error_without_cr4_mce_is_a_triple_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, cr4Mce: false);
        var r = g.Vcpu.GetRegs();
        r.rflags = 0x202;
        g.Vcpu.SetRegs(r);
        g.Vcpu.InjectMachineCheck(0, Srar, 0x1000, 0x86, RipvMcip);
        Assert.Equal((0UL, 0UL, 0UL), Bank(g.Vcpu, 0));
        Assert.Equal(0UL, g.Vcpu.GetMsr(X86Msr.McgStatus));
        g.Vcpu.ImmediateExit = true;
        Assert.True(g.Vcpu.Run().Interrupted);
        Assert.False(g.Vcpu.ReadyForInterruptInjection);
        g.Vcpu.ImmediateExit = false;
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, g.Vcpu.Run().Reason);
        Assert.Equal(Start, g.Vcpu.GetRegs().rip);
        Assert.True(g.Vcpu.ReadyForInterruptInjection);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Equal(Start + 1, g.Vcpu.GetRegs().rip);
        Assert.Empty(g.Deliveries);
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_set_mce / kvm_vcpu_x86_set_ucna: a UCNA error (UC without S/AR/PCC, no MCG_STATUS) replaces the bank without OVER or #MC; a corrected error fills an empty bank, sets OVER over a corrected one and only adds OVER over an uncorrected one; an uncorrected error over a valid one sets OVER")]
    public static void corrected_and_ucna_errors_fill_the_bank(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, cr4Mce: true);
        var v = g.Vcpu;
        v.InjectMachineCheck(1, Val | Uc | En | 5, 0x4000, 0x9);
        v.InjectMachineCheck(1, Val | Uc | En | 6, 0x4001, 0xa);
        Assert.Equal((Val | Uc | En | 6, 0x4001UL, 0xaUL), Bank(v, 1));
        v.InjectMachineCheck(1, Val | En | 7, 0x4002, 0xb, RipvMcip);
        Assert.Equal((Over | Val | Uc | En | 6, 0x4001UL, 0xaUL), Bank(v, 1));
        Assert.Equal(0UL, v.GetMsr(X86Msr.McgStatus)); // neither UCNA nor a corrected error touches MCG_STATUS
        Assert.Equal(0, v.GetEvents().exception_injected);

        v.InjectMachineCheck(0, Val | En | 1, 0x10, 0x20);
        Assert.Equal((Val | En | 1, 0x10UL, 0x20UL), Bank(v, 0));
        v.InjectMachineCheck(0, Val | En | 2, 0x11, 0x21);
        Assert.Equal((Over | Val | En | 2, 0x11UL, 0x21UL), Bank(v, 0));

        v.InjectMachineCheck(1, Srar, 0x5000, 0xc, RipvMcip);
        Assert.Equal((Over | Srar, 0x5000UL, 0xcUL), Bank(v, 1));
        Assert.Equal(RipvMcip, v.GetMsr(X86Msr.McgStatus));
        Assert.Equal(18, v.GetEvents().exception_nr);
    }
}
