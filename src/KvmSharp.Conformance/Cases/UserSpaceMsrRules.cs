// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_CAP_X86_USER_SPACE_MSR and KVM_X86_SET_MSR_FILTER (Documentation/virt/kvm/api.rst 4.126, 7.21;
/// arch/x86/kvm/x86.c kvm_vm_ioctl_set_msr_filter, kvm_msr_allowed, kvm_emulate_msr_read / _write, kvm_msr_reason,
/// kvm_msr_user_space, complete_fast_rdmsr / complete_fast_msr_access): a guest RDMSR/WRMSR the filter denies, or KVM
/// does not know, or refuses, exits to userspace as KVM_EXIT_X86_RDMSR/WRMSR when that reason was enabled, and the
/// next KVM_RUN completes it — msr.error set: #GP(0) with RIP on the instruction; else RDMSR's msr.data in EDX:EAX and
/// RIP past it. Otherwise the access is a #GP(0) as without the capability.
/// </summary>
public static class UserSpaceMsrRules
{
    /// <summary>selftests userspace_msr_exit_test.c MSR_NON_EXISTENT: an index KVM does not know.</summary>
    private const uint NonExistent = 0x474f_4f00;

    /// <summary>x2APIC ID (APIC_BASE_MSR + APIC_ID &gt;&gt; 4): inside 0x800–0x8ff, which no filter applies to.</summary>
    private const uint X2apicId = 0x802;

    private const ulong Junk = 0xdead_beef_cafe_f00d;

    private static IdtVector[] Resuming => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v, ResumeSkip: 2))];

    [ConformanceCase("x86.c kvm_vm_ioctl_check_extension: KVM_CAP_X86_USER_SPACE_MSR and KVM_CAP_X86_MSR_FILTER -> 1")]
    public static void user_space_msr_capabilities_are_one(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_X86_USER_SPACE_MSR));
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_X86_MSR_FILTER));
        using var vm = kvm.CreateVm();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_X86_USER_SPACE_MSR));
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_X86_MSR_FILTER));
    }

    [ConformanceCase("x86.c kvm_vm_ioctl_enable_cap KVM_CAP_X86_USER_SPACE_MSR: flags or args[0] & ~KVM_MSR_EXIT_REASON_VALID_MASK -> EINVAL; any time")]
    public static void enable_user_space_msr_checks_the_reason_mask(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        long Enable(uint flags, ulong a0, ulong a1 = 0)
        {
            var args = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X86_USER_SPACE_MSR, flags = flags };
            args.args[0] = a0;
            args.args[1] = a1;
            return ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_ENABLE_CAP, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref args, 1)));
        }
        AssertErrno(Errno.EINVAL, Enable(1, 7), "flags 1");
        AssertErrno(Errno.EINVAL, Enable(0, 8), "bit 3");
        AssertErrno(Errno.EINVAL, Enable(0, 7 | (1UL << 63)), "bit 63");
        Assert.Equal(0, Enable(0, 7, a1: 0x55)); // args[1..3] are not looked at
        Assert.Equal(0, Enable(0, 0));
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0, Enable(0, KvmMsrFilter.KVM_MSR_EXIT_REASON_FILTER)); // no "before KVM_CREATE_VCPU" rule
        vm.EnableUserSpaceMsr(MsrExitReasons.Unknown | MsrExitReasons.Invalid);
        var e = Assert.Throws<KvmException>(() => vm.EnableUserSpaceMsr((MsrExitReasons)0x10));
        Assert.Equal(Errno.EINVAL, e.Errno);
    }

    [ConformanceCase("x86.c kvm_vm_ioctl_set_msr_filter / kvm_add_msr_filter: flags, empty deny, range flags, bitmap size (EINVAL) before the bitmap copy (EFAULT), in range order; nmsrs 0 ranges ignored; any time")]
    public static void set_msr_filter_checks(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var bitmap = new PinnedArray<ulong>(KvmMsrFilter.KVM_MSR_FILTER_MAX_BITMAP_SIZE / 8 + 1);
        long Set(uint flags, params (uint Flags, uint NMsrs, uint Base, bool Bitmap)[] ranges)
        {
            var f = new kvm_msr_filter { flags = flags };
            for (int i = 0; i < ranges.Length; i++)
                f.ranges[i] = new kvm_msr_filter_range { flags = ranges[i].Flags, nmsrs = ranges[i].NMsrs, @base = ranges[i].Base, bitmap = ranges[i].Bitmap ? bitmap.Address : 0 };
            long rc = ctx.Kernel.Ioctl(vm.Handle, KvmMsrFilter.KVM_X86_SET_MSR_FILTER, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref f, 1)));
            GC.KeepAlive(bitmap);
            return rc;
        }
        const uint R = KvmMsrFilter.KVM_MSR_FILTER_READ, W = KvmMsrFilter.KVM_MSR_FILTER_WRITE, Deny = KvmMsrFilter.KVM_MSR_FILTER_DEFAULT_DENY;
        Assert.Equal(0, Set(0)); // an empty default-allow filter
        AssertErrno(Errno.EINVAL, Set(2), "filter flags 2");
        AssertErrno(Errno.EINVAL, Set(0x8000_0000, (R, 1, 0, true)), "filter flags bit 31");
        AssertErrno(Errno.EINVAL, Set(Deny), "default deny without a range");
        AssertErrno(Errno.EINVAL, Set(Deny, (R, 0, 0x10, true)), "default deny with only an empty range");
        Assert.Equal(0, Set(Deny, (R, 1, 0x10, true)));
        AssertErrno(Errno.EINVAL, Set(0, (0, 1, 0x10, true)), "range flags 0");
        AssertErrno(Errno.EINVAL, Set(0, (4, 1, 0x10, true)), "range flags 4");
        AssertErrno(Errno.EINVAL, Set(0, (R | W | 8, 1, 0x10, true)), "range flags 0xb");
        Assert.Equal(0, Set(0, (0xff, 0, 0x10, false))); // nmsrs 0: not looked at, whatever the rest says
        // BITS_TO_LONGS(nmsrs) * sizeof(long) <= KVM_MSR_FILTER_MAX_BITMAP_SIZE (0x600 bytes: 0x3000 MSRs).
        Assert.Equal(0, Set(0, (R | W, 0x3000, 0, true)));
        Assert.Equal(0, Set(0, (R | W, 0x2fc1, 0, true)));
        AssertErrno(Errno.EINVAL, Set(0, (R | W, 0x3001, 0, true)), "nmsrs 0x3001");
        AssertErrno(Errno.EINVAL, Set(0, (R | W, uint.MaxValue, 0, true)), "nmsrs 0xffffffff");
        AssertErrno(Errno.EFAULT, Set(0, (R, 1, 0x10, false)), "NULL bitmap");
        // The ranges are taken in array order, each checked before its bitmap is copied.
        AssertErrno(Errno.EINVAL, Set(0, (0, 1, 0x10, false), (R, 1, 0x20, false)), "bad flags first");
        AssertErrno(Errno.EFAULT, Set(0, (R, 1, 0x10, false), (0, 1, 0x20, true)), "bad bitmap first");
        Assert.Equal(0, Set(0, (R, 1, 0x10, true), (0, 0, 0, false), (W, 1, 0x20, true)));
        // All 16 ranges, overlapping ones too; and after a vCPU exists.
        var all = Enumerable.Repeat((R | W, 64u, 0xc000_0080u, true), KvmMsrFilter.KVM_MSR_FILTER_MAX_RANGES).ToArray();
        Assert.Equal(0, Set(Deny, all));
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0, Set(Deny, (R, 1, 0x10, true)));
        Assert.Equal(0, Set(0));

        var e = Assert.Throws<KvmException>(() => vm.SetMsrFilter(MsrFilterDefault.Deny));
        Assert.Equal(Errno.EINVAL, e.Errno);
        e = Assert.Throws<KvmException>(() => vm.SetMsrFilter(MsrFilterDefault.Allow, MsrFilterRange.Deny(MsrFilterAccess.Read, 0, 0x3001)));
        Assert.Equal(Errno.EINVAL, e.Errno);
        vm.SetMsrFilter(MsrFilterDefault.Deny, MsrFilterRange.Allow(MsrFilterAccess.ReadWrite, 0, 0x3000));
        vm.ClearMsrFilter();
    }

    [ConformanceCase("x86.c __kvm_emulate_rdmsr + complete_fast_rdmsr: a filtered RDMSR exits (reason FILTER, data 0, error 0); msr.data lands in EDX:EAX, RIP past it; KVM_GET_MSRS is not filtered")]
    public static void filtered_rdmsr_exits_and_completes_with_data(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        int at = Offset(a => Preset(a, X86Msr.Star));
        using var g = IdtGuest.Create(kvm, a =>
        {
            Preset(a, X86Msr.Star);
            a.rdmsr();
            a.mov(r8, rax);
            a.mov(r9, rdx);
            MsrAsm.Wrmsr(a, X86Msr.Star, 0x0023_0010_0000_0000); // only reads are filtered
            a.hlt();
        }, Resuming);
        g.Guest.Vm.EnableUserSpaceMsr(MsrExitReasons.Filter);
        g.Guest.Vm.SetMsrFilter(MsrFilterDefault.Allow, MsrFilterRange.Deny(MsrFilterAccess.Read, X86Msr.Star));
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_RDMSR, exit.ToString());
        Assert.True(exit.IsMsrExit);
        Assert.False(exit.MsrIsWrite);
        Assert.Equal(MsrExitReasons.Filter, exit.MsrReason);
        Assert.Equal(X86Msr.Star, exit.MsrIndex);
        Assert.Equal(0UL, exit.MsrData);
        Assert.Equal(0, exit.MsrError);
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(LongModeGuest.CodeGpa + (ulong)at, regs.rip); // the access waits on the instruction
        Assert.Equal(Junk, regs.rax);
        Assert.Equal(0UL, g.Vcpu.GetMsr(X86Msr.Star)); // host-initiated: never filtered

        exit.MsrData = 0x1122_3344_5566_7788;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        regs = g.Vcpu.GetRegs();
        Assert.Equal(0x5566_7788UL, regs.r8); // zero-extended halves
        Assert.Equal(0x1122_3344UL, regs.r9);
        Assert.Empty(g.Deliveries);
        Assert.Equal(0x0023_0010_0000_0000UL, g.Vcpu.GetMsr(X86Msr.Star));
    }

    [ConformanceCase("x86.c __kvm_emulate_wrmsr + complete_fast_msr_access: a filtered WRMSR exits with the value; msr.error != 0 -> #GP(0) at the WRMSR, else RIP past it, the MSR untouched either way")]
    public static void filtered_wrmsr_exits_and_error_injects_gp(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Value = 0xffff_8000_1234_5678;
        int at = Offset(a => MsrAsm.Wrmsr(a, X86Msr.Lstar, Value)) - 2;
        using var g = IdtGuest.Create(kvm, a =>
        {
            MsrAsm.Wrmsr(a, X86Msr.Lstar, Value);
            MsrAsm.Wrmsr(a, X86Msr.Lstar, Value + 1);
            a.hlt();
        }, Resuming);
        g.Guest.Vm.EnableUserSpaceMsr(MsrExitReasons.Filter);
        g.Guest.Vm.SetMsrFilter(MsrFilterDefault.Allow, MsrFilterRange.Deny(MsrFilterAccess.Write, X86Msr.Lstar));
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_WRMSR, exit.ToString());
        Assert.True(exit.MsrIsWrite);
        Assert.Equal(MsrExitReasons.Filter, exit.MsrReason);
        Assert.Equal(X86Msr.Lstar, exit.MsrIndex);
        Assert.Equal(Value, exit.MsrData);
        Assert.Equal(LongModeGuest.CodeGpa + (ulong)at, g.Vcpu.GetRegs().rip);
        exit.MsrError = 0x80; // any non-zero byte fails the access

        exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_WRMSR, exit.ToString());
        Assert.Equal(Value + 1, exit.MsrData);
        Assert.Equal(0, exit.MsrError); // KVM clears it for every exit
        var gp = g.Single();
        Assert.Equal((13UL, (ulong?)0), (gp.Vector, gp.ErrorCode));
        Assert.Equal(LongModeGuest.CodeGpa + (ulong)at, gp.Rip);

        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Single(g.Deliveries);
        Assert.Equal(0UL, g.Vcpu.GetMsr(X86Msr.Lstar)); // userspace "handled" both writes
    }

    [ConformanceCase("x86.c complete_userspace_rdmsr: with msr.error set RDMSR leaves EDX:EAX as they were and #GP(0) is injected")]
    public static void failed_rdmsr_exit_leaves_edx_eax(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        int at = Offset(a => Preset(a, X86Msr.Star));
        using var g = IdtGuest.Create(kvm, a =>
        {
            Preset(a, X86Msr.Star);
            a.rdmsr();
            a.hlt();
        }, Resuming);
        g.Guest.Vm.EnableUserSpaceMsr(MsrExitReasons.Filter);
        g.Guest.Vm.SetMsrFilter(MsrFilterDefault.Allow, MsrFilterRange.Deny(MsrFilterAccess.ReadWrite, X86Msr.Star));
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_RDMSR, exit.ToString());
        exit.MsrData = 0x1234;
        exit.MsrError = 1;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var gp = g.Single();
        Assert.Equal((13UL, (ulong?)0, LongModeGuest.CodeGpa + (ulong)at), (gp.Vector, gp.ErrorCode, gp.Rip));
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(Junk, regs.rax);
        Assert.Equal(~Junk, regs.rdx);
    }

    [ConformanceCase("x86.c kvm_msr_user_space: a reason not in user_space_msr_mask is a #GP(0) (filtered with only UNKNOWN|INVAL, unknown with only FILTER, nothing enabled)")]
    public static void reasons_not_enabled_are_gp(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            Preset(a, X86Msr.Star);
            a.rdmsr(); // filtered
            Preset(a, NonExistent);
            a.rdmsr(); // unknown
            a.mov(r8, rax);
            MsrAsm.Wrmsr(a, X86Msr.Lstar, 0x8000_0000_0000_0000); // refused value
            a.hlt();
        }, Resuming);
        var vm = g.Guest.Vm;
        vm.SetMsrFilter(MsrFilterDefault.Allow, MsrFilterRange.Deny(MsrFilterAccess.Read, X86Msr.Star));
        vm.EnableUserSpaceMsr(MsrExitReasons.Unknown | MsrExitReasons.Invalid);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_RDMSR, exit.ToString());
        Assert.Equal((MsrExitReasons.Unknown, NonExistent), (exit.MsrReason, exit.MsrIndex));
        Assert.Single(g.Deliveries); // the filtered RDMSR before it
        vm.EnableUserSpaceMsr(MsrExitReasons.Filter); // the mask is read at each access
        exit.MsrData = 5;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Deliveries;
        Assert.Equal(2, d.Count); // the refused WRMSR
        Assert.All(d, x => Assert.Equal((13UL, (ulong?)0), (x.Vector, x.ErrorCode)));
        Assert.Equal(5UL, g.Vcpu.GetRegs().r8);
    }

    [ConformanceCase("x86.c kvm_msr_reason: an MSR KVM does not know exits with UNKNOWN (RDMSR data 0, WRMSR the value), a refused value with INVAL")]
    public static void unknown_and_invalid_accesses_exit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong NonCanonical = 0x8000_0000_0000_0000;
        using var g = IdtGuest.Create(kvm, a =>
        {
            Preset(a, NonExistent);
            a.rdmsr();
            a.mov(r8, rax);
            MsrAsm.Wrmsr(a, NonExistent, 0x0000_0001_0000_0002);
            MsrAsm.Wrmsr(a, X86Msr.Lstar, NonCanonical);
            Preset(a, X86Msr.TscAux); // no RDTSCP/RDPID in the (empty) guest CPUID: refused
            a.rdmsr();
            a.hlt();
        }, Resuming);
        g.Guest.Vm.EnableUserSpaceMsr(MsrExitReasons.Unknown | MsrExitReasons.Invalid | MsrExitReasons.Filter);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_RDMSR, exit.ToString());
        Assert.Equal((MsrExitReasons.Unknown, NonExistent, 0UL), (exit.MsrReason, exit.MsrIndex, exit.MsrData));
        exit.MsrData = 0xabcd;
        exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_WRMSR, exit.ToString());
        Assert.Equal((MsrExitReasons.Unknown, NonExistent, 0x0000_0001_0000_0002UL), (exit.MsrReason, exit.MsrIndex, exit.MsrData));
        exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_WRMSR, exit.ToString());
        Assert.Equal((MsrExitReasons.Invalid, X86Msr.Lstar, NonCanonical), (exit.MsrReason, exit.MsrIndex, exit.MsrData));
        exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_RDMSR, exit.ToString());
        Assert.Equal((MsrExitReasons.Invalid, X86Msr.TscAux), (exit.MsrReason, exit.MsrIndex));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Empty(g.Deliveries);
        Assert.Equal(0xabcdUL, g.Vcpu.GetRegs().r8);
        Assert.Equal(0UL, g.Vcpu.GetMsr(X86Msr.Lstar));
    }

    [ConformanceCase("x86.c kvm_msr_allowed: default deny; the first range holding the MSR for that access decides (READ-only range, overlapping ranges); x2APIC MSRs 0x800-0x8ff are never filtered")]
    public static void filter_ranges_decide_in_order(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            Preset(a, X86Msr.Star);
            a.rdmsr(); // range 0 allows reads
            MsrAsm.Wrmsr(a, X86Msr.Star, 0x10); // range 0 is READ only: the default denies
            Preset(a, X86Msr.SysenterCs);
            a.rdmsr(); // range 2 (read and write, allowed): range 1 is WRITE only
            MsrAsm.Wrmsr(a, X86Msr.SysenterCs, 0x20); // range 1 denies
            Preset(a, X86Msr.Lstar);
            a.rdmsr(); // no range: the default denies
            Preset(a, X2apicId);
            a.rdmsr(); // not filtered: no in-kernel APIC, so kvm_x2apic_msr_read refuses it
            a.hlt();
        }, Resuming);
        var vm = g.Guest.Vm;
        vm.EnableUserSpaceMsr(MsrExitReasons.Filter | MsrExitReasons.Invalid);
        vm.SetMsrFilter(MsrFilterDefault.Deny,
            MsrFilterRange.Allow(MsrFilterAccess.Read, X86Msr.Star),
            MsrFilterRange.Deny(MsrFilterAccess.Write, X86Msr.SysenterCs),
            MsrFilterRange.Allow(MsrFilterAccess.ReadWrite, X86Msr.SysenterCs),
            MsrFilterRange.Deny(MsrFilterAccess.ReadWrite, 0x800, 0x100));
        (KvmExitReason, MsrExitReasons, uint)[] expected =
        [
            (KvmExitReason.KVM_EXIT_X86_WRMSR, MsrExitReasons.Filter, X86Msr.Star),
            (KvmExitReason.KVM_EXIT_X86_WRMSR, MsrExitReasons.Filter, X86Msr.SysenterCs),
            (KvmExitReason.KVM_EXIT_X86_RDMSR, MsrExitReasons.Filter, X86Msr.Lstar),
            (KvmExitReason.KVM_EXIT_X86_RDMSR, MsrExitReasons.Invalid, X2apicId),
        ];
        foreach (var e in expected)
        {
            var exit = g.Vcpu.Run();
            Assert.True((exit.Reason, exit.MsrReason, exit.MsrIndex) == e, $"expected {e}, got {exit.ToString()}");
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Empty(g.Deliveries);
    }

    [ConformanceCase("x86.c kvm_vm_ioctl_set_msr_filter: the filter is replaced whole between runs; a failed call keeps the old one; an empty allow filter lifts it")]
    public static void filter_replaced_between_runs(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            for (int i = 0; i < 3; i++)
            {
                Preset(a, X86Msr.Star);
                a.rdmsr();
                a.hlt();
            }
        }, Resuming);
        var vm = g.Guest.Vm;
        vm.EnableUserSpaceMsr(MsrExitReasons.Filter);
        vm.SetMsrFilter(MsrFilterDefault.Allow, MsrFilterRange.Deny(MsrFilterAccess.Read, X86Msr.Star));
        Assert.True(g.Vcpu.Run().Reason == KvmExitReason.KVM_EXIT_X86_RDMSR);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Throws<KvmException>(() => vm.SetMsrFilter(MsrFilterDefault.Deny));
        Assert.True(g.Vcpu.Run().Reason == KvmExitReason.KVM_EXIT_X86_RDMSR);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        vm.ClearMsrFilter();
        g.Vcpu.SetMsr(X86Msr.Star, 0x77);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Equal(0x77UL, g.Vcpu.GetRegs().rax);
    }

    [ConformanceCase("x86.c kvm_arch_vcpu_ioctl_run: complete_userspace_io runs before immediate_exit is looked at (EINTR with the RDMSR finished)")]
    public static void msr_exit_completes_before_immediate_exit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        int at = Offset(a => Preset(a, NonExistent));
        using var g = IdtGuest.Create(kvm, a =>
        {
            Preset(a, NonExistent);
            a.rdmsr();
            a.hlt();
        }, Resuming);
        g.Guest.Vm.EnableUserSpaceMsr(MsrExitReasons.Unknown);
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_RDMSR, exit.ToString());
        exit.MsrData = 0x8765_4321_0000_0042;
        g.Vcpu.ImmediateExit = true;
        Assert.True(g.Vcpu.Run().Interrupted);
        g.Vcpu.ImmediateExit = false;
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(LongModeGuest.CodeGpa + (ulong)at + 2, regs.rip);
        Assert.Equal((0x42UL, 0x8765_4321UL), (regs.rax, regs.rdx));
        // Completed once: the next run goes on from the HLT.
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Equal(0x42UL, g.Vcpu.GetRegs().rax);
    }

    [ConformanceCase("x86.c kvm_msr_user_space / complete_userspace_rdmsr in real mode: the exit and its completion (RAX and RDX written whole, IP past RDMSR); msr.error -> #GP through IVT[13] with the RDMSR's IP, no error code")]
    public static void real_mode_rdmsr_exit(CaseContext ctx)
    {
        const ulong CodeGpa = 0x1000, StubGpa = 0x500;
        const ushort StartSp = 0x8000;
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var mem = vm.AllocateMemory(0x10000);
        vm.AddMemorySlot(0, 0, mem);
        mem.Write<uint>(13 * 4, (uint)StubGpa); // IVT[13] = 0000:0500
        mem.Write(StubGpa, [0xf4, 0xf4]); // hlt; hlt
        void Read(Assembler a)
        {
            a.mov(ecx, unchecked((int)X86Msr.Star));
            a.rdmsr();
        }
        mem.Write(CodeGpa, RealModeGuest.Assemble(a =>
        {
            Read(a);
            a.hlt();
            Read(a);
            a.hlt();
        }));
        int first = RealModeGuest.Assemble(a => a.mov(ecx, unchecked((int)X86Msr.Star))).Length;
        int second = first + 2 + 1 + first;
        using var vcpu = vm.CreateVcpu(0);
        var sregs = vcpu.GetSregs();
        (sregs.cs.@base, sregs.cs.selector) = (CodeGpa, (ushort)(CodeGpa >> 4));
        (sregs.ss.@base, sregs.ss.selector, sregs.idt.@base, sregs.idt.limit) = (0, 0, 0, 0x3ff);
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2, rsp = StartSp, rax = Junk, rdx = ~Junk });
        vm.EnableUserSpaceMsr(MsrExitReasons.Filter);
        vm.SetMsrFilter(MsrFilterDefault.Allow, MsrFilterRange.Deny(MsrFilterAccess.Read, X86Msr.Star));

        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_RDMSR, exit.ToString());
        Assert.Equal((MsrExitReasons.Filter, X86Msr.Star), (exit.MsrReason, exit.MsrIndex));
        Assert.Equal((ulong)first, vcpu.GetRegs().rip);
        exit.MsrData = 0xaabb_ccdd_1122_3344;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
        var regs = vcpu.GetRegs();
        Assert.Equal((ulong)first + 3, regs.rip);
        Assert.Equal((0x1122_3344UL, 0xaabb_ccddUL), (regs.rax, regs.rdx));

        exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_X86_RDMSR, exit.ToString());
        Assert.Equal((ulong)second, vcpu.GetRegs().rip);
        exit.MsrError = 1;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
        regs = vcpu.GetRegs();
        Assert.Equal((StubGpa + 1, StartSp - 6UL), (regs.rip, regs.rsp));
        Assert.Equal(0, vcpu.GetSregs().cs.selector);
        Assert.Equal((ushort)second, mem.Read<ushort>(StartSp - 6)); // the frame's IP: the RDMSR
        Assert.Equal((ushort)(CodeGpa >> 4), mem.Read<ushort>(StartSp - 4));
        Assert.Equal((0x1122_3344UL, 0xaabb_ccddUL), (regs.rax, regs.rdx));
    }

    /// <summary>ECX = <paramref name="msr"/>, RAX = <see cref="Junk"/>, RDX = ~Junk (to see what RDMSR leaves).</summary>
    private static void Preset(Assembler a, uint msr)
    {
        a.mov(rax, unchecked((long)Junk));
        a.mov(rdx, unchecked((long)~Junk));
        a.mov(ecx, unchecked((int)msr));
    }

    /// <summary>The length of <paramref name="code"/>: the offset from CodeGpa of what follows it.</summary>
    private static int Offset(Action<Assembler> code) => LongModeGuest.Assemble(code).Length;
}
