// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_CAP_EXIT_HYPERCALL and KVM_HC_MAP_GPA_RANGE (Documentation/virt/kvm/api.rst KVM_EXIT_HYPERCALL,
/// Documentation/virt/kvm/x86/hypercalls.rst): the capability, KVM_ENABLE_CAP's checks, and what a VMCALL does
/// (arch/x86/kvm/x86.c ____kvm_emulate_hypercall, complete_hypercall_exit). On this host a VMCALL never completes
/// (<see cref="HostDeviations.KvmPvmHypercallLoops"/>): the real kernel is held to that, the emulator to upstream.
/// </summary>
public static class HypercallExitRules
{
    private const ulong MapGpaRange = KvmPara.KVM_HC_MAP_GPA_RANGE;
    private const ulong SomeGpa = 0x20_0000;

    [ConformanceCase("arch/x86/kvm/x86.c kvm_vm_ioctl_check_extension: KVM_CAP_EXIT_HYPERCALL -> KVM_EXIT_HYPERCALL_VALID_MASK")]
    public static void exit_hypercall_capability_is_the_map_gpa_range_bit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Equal((long)KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK, kvm.CheckExtension(KvmCaps.KVM_CAP_EXIT_HYPERCALL));
        using var vm = kvm.CreateVm();
        Assert.Equal((long)KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK, vm.CheckExtension(KvmCaps.KVM_CAP_EXIT_HYPERCALL));
        Assert.Equal(HypercallExits.MapGpaRange, vm.SupportedHypercallExits);
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_vm_ioctl_enable_cap: flags, then args[0] & ~KVM_EXIT_HYPERCALL_VALID_MASK; default -EINVAL")]
    public static void enable_cap_checks_flags_mask_and_cap(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        long Enable(uint cap, uint flags, ulong a0, ulong a1 = 0, byte pad = 0)
        {
            var args = new kvm_enable_cap { cap = cap, flags = flags };
            args.args[0] = a0;
            args.args[1] = a1;
            args.pad[63] = pad;
            return ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_ENABLE_CAP, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref args, 1)));
        }
        const uint Cap = KvmCaps.KVM_CAP_EXIT_HYPERCALL;
        const ulong Valid = KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK;
        AssertErrno(Errno.EINVAL, Enable(Cap, 1, Valid), "flags 1");
        AssertErrno(Errno.EINVAL, Enable(Cap, 0, Valid << 1), "a hypercall KVM cannot forward (bit 13)");
        AssertErrno(Errno.EINVAL, Enable(Cap, 0, Valid | 1), "a valid bit plus bit 0");
        AssertErrno(Errno.EINVAL, Enable(Cap, 0, 1UL << 63), "bit 63");
        AssertErrno(Errno.EINVAL, Enable(int.MaxValue, 0, 0), "unknown cap");
        AssertErrno(Errno.EINVAL, Enable(int.MaxValue, 1, 0), "unknown cap with flags");
        Assert.Equal(0, Enable(Cap, 0, Valid, a1: 5, pad: 0xff)); // args[1..3] and pad are not looked at
        Assert.Equal(0, Enable(Cap, 0, 0));
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0, Enable(Cap, 0, Valid)); // no "before KVM_CREATE_VCPU" rule for this cap

        vm.EnableHypercallExits(HypercallExits.None);
        vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        vm.EnableCapability(KvmCaps.KVM_CAP_EXIT_HYPERCALL, Valid);
        var ex = Assert.Throws<KvmCapabilityException>(() => vm.EnableHypercallExits((HypercallExits)(Valid << 1)));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal((long)Valid, ex.Reported);
        AssertErrno(Errno.EINVAL, () => vm.EnableCapability(int.MaxValue));
    }

    [ConformanceCase("arch/x86/kvm/x86.c ____kvm_emulate_hypercall: unknown nr -> ret = -KVM_ENOSYS, no exit, RIP past VMCALL")]
    public static void unknown_hypercall_returns_enosys_in_rax(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = HypercallGuest.LongMode(kvm, 0x1234_5678);
        // Even with exits enabled: only KVM_HC_MAP_GPA_RANGE can exit.
        guest.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        if (HostDeviations.KvmPvmHypercallLoops(ctx.Target.IsReal))
        {
            AssertLoopsInLongMode(guest);
            return;
        }
        AssertAnsweredInKernel(guest, -KvmPara.KVM_ENOSYS);
    }

    [ConformanceCase("arch/x86/kvm/x86.c ____kvm_emulate_hypercall: KVM_HC_MAP_GPA_RANGE without user_exit_on_hypercall -> -KVM_ENOSYS")]
    public static void map_gpa_range_without_exit_enabled_returns_enosys(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = HypercallGuest.LongMode(kvm, MapGpaRange, SomeGpa, 1, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED);
        if (HostDeviations.KvmPvmHypercallLoops(ctx.Target.IsReal))
        {
            AssertLoopsInLongMode(guest);
            return;
        }
        AssertAnsweredInKernel(guest, -KvmPara.KVM_ENOSYS);
    }

    [ConformanceCase("arch/x86/kvm/x86.c ____kvm_emulate_hypercall + complete_hypercall_exit: KVM_EXIT_HYPERCALL, ret -> RAX, RIP past VMCALL")]
    public static void map_gpa_range_exits_and_ret_lands_in_rax(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Attributes = KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED | KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_2M;
        using var guest = HypercallGuest.LongMode(kvm, MapGpaRange, SomeGpa, 512, Attributes, a3: 0x77);
        guest.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        if (HostDeviations.KvmPvmHypercallLoops(ctx.Target.IsReal))
        {
            AssertLoopsInLongMode(guest);
            return;
        }
        var exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HYPERCALL, exit.Reason);
        Assert.Equal(MapGpaRange, exit.HypercallNr);
        Assert.Equal([SomeGpa, 512UL, Attributes], exit.HypercallArgs[..3].ToArray());
        Assert.Equal(KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE, exit.HypercallFlags);
        Assert.True(exit.HypercallLongMode);
        Assert.Equal(0, exit.HypercallReturn);
        var request = exit.MapGpaRange;
        Assert.True(request.ToPrivate);
        Assert.Equal(MapGpaRangePageSize.Size2M, request.PreferredPageSize);
        Assert.Equal(512UL * 4096, request.Size);
        // Until the next KVM_RUN the guest sits on the VMCALL with RAX = nr (the skip is in complete_hypercall_exit).
        var regs = guest.Vcpu.GetRegs();
        Assert.Equal(LongModeGuest.CodeGpa, regs.rip);
        Assert.Equal(MapGpaRange, regs.rax);

        exit.HypercallReturn = 0x1234_5678_9abc;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        regs = guest.Vcpu.GetRegs();
        Assert.Equal(0x1234_5678_9abcUL, regs.rax);
        Assert.Equal(LongModeGuest.CodeGpa + HypercallGuest.InstructionLength() + 1, regs.rip); // past VMCALL and HLT
    }

    [ConformanceCase("arch/x86/kvm/x86.c ____kvm_emulate_hypercall: MAP_GPA_RANGE attributes are not checked by KVM")]
    public static void map_gpa_range_passes_reserved_attributes_to_userspace(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Attributes = 0xffff_ffff_ffff_ffe0 | KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_1G;
        using var guest = HypercallGuest.LongMode(kvm, MapGpaRange, SomeGpa, 1, Attributes);
        guest.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        if (HostDeviations.KvmPvmHypercallLoops(ctx.Target.IsReal))
        {
            AssertLoopsInLongMode(guest);
            return;
        }
        var exit = guest.Vcpu.Run();
        Assert.True(exit.TryGetMapGpaRange(out var request), exit.ToString());
        Assert.Equal(Attributes, request.Attributes);
        Assert.True(request.ToShared);
        Assert.NotEqual(0UL, request.ReservedAttributes);
        // The VMM refuses it: the guest sees -KVM_EINVAL in RAX.
        guest.Vcpu.HypercallReturn = -KvmPara.KVM_EINVAL;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_EINVAL), guest.Vcpu.GetRegs().rax);
    }

    [ConformanceCase("arch/x86/kvm/x86.c ____kvm_emulate_hypercall: !PAGE_ALIGNED(gpa) || !npages || gfn + npages wraps -> -KVM_EINVAL, no exit")]
    public static void map_gpa_range_invalid_arguments_return_einval_without_exit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (ulong Gpa, ulong Pages, string What)[] bad =
        [
            (SomeGpa + 1, 1, "unaligned gpa"),
            (SomeGpa, 0, "zero pages"),
            // gpa_to_gfn(gpa) + npages is computed in 64 bits: only a page count of 2^64 - gfn or more wraps.
            (SomeGpa, unchecked(0UL - SomeGpa / 4096), "gfn + npages wraps to exactly 0"),
            (SomeGpa, ulong.MaxValue, "npages = 2^64 - 1"),
        ];
        foreach (var (gpa, pages, what) in bad)
        {
            using var guest = HypercallGuest.LongMode(kvm, MapGpaRange, gpa, pages, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED);
            guest.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
            if (HostDeviations.KvmPvmHypercallLoops(ctx.Target.IsReal))
            {
                AssertLoopsInLongMode(guest);
                return;
            }
            Assert.True(guest.Vcpu.Run().Reason == KvmExitReason.KVM_EXIT_HLT, what);
            Assert.True(guest.Vcpu.GetRegs().rax == unchecked((ulong)-KvmPara.KVM_EINVAL), $"{what}: RAX 0x{guest.Vcpu.GetRegs().rax:X}");
        }
    }

    [ConformanceCase("arch/x86/kvm/x86.c ____kvm_emulate_hypercall / complete_hypercall_exit: outside 64-bit mode nr, args and ret are 32-bit")]
    public static void map_gpa_range_from_real_mode_is_truncated_to_32_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = HypercallGuest.RealMode(kvm, 0xffff_ffff_0000_0000 | MapGpaRange, 0xffff_ffff_0000_2000, 0x1_0000_0003,
            0xaaaa_aaaa_0000_0010);
        guest.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        var exit = guest.Vcpu.Run();
        if (HostDeviations.KvmPvmHypercallLoops(ctx.Target.IsReal))
        {
            // The rewrite of the instruction goes to linear address IP = 0, GPA 0, outside every memslot.
            Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
            Assert.True(exit.MmioIsWrite);
            Assert.Equal(0UL, exit.MmioAddress);
            Assert.Equal(RealModeGuest.Assemble(a => a.vmcall()), exit.MmioData.ToArray());
            Assert.Equal(0UL, guest.Vcpu.GetRegs().rip);
            return;
        }
        Assert.Equal(KvmExitReason.KVM_EXIT_HYPERCALL, exit.Reason);
        Assert.Equal(MapGpaRange, exit.HypercallNr);
        Assert.Equal([0x2000UL, 3UL, 0x10UL], exit.HypercallArgs[..3].ToArray());
        Assert.Equal(0UL, exit.HypercallFlags);
        Assert.True(exit.MapGpaRange.ToPrivate); // 0x10 after truncation: KVM_MAP_GPA_RANGE_ENCRYPTED
        exit.HypercallReturn = 0x1_2345_6789;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        var regs = guest.Vcpu.GetRegs();
        Assert.Equal(0x2345_6789UL, regs.rax);
        Assert.Equal(HypercallGuest.InstructionLength() + 1, regs.rip);
    }

    [ConformanceCase("arch/x86/kvm/emulate.c em_hypercall: VMMCALL is a KVM hypercall too (the emulator patches it to the native one)")]
    public static void vmmcall_is_a_hypercall_too(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = HypercallGuest.LongMode(kvm, MapGpaRange, SomeGpa, 1, 0, vmmcall: true);
        guest.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);
        if (HostDeviations.KvmPvmHypercallLoops(ctx.Target.IsReal))
        {
            AssertLoopsInLongMode(guest);
            // emulator_fix_hypercall rewrote the VMMCALL to this host's hypercall instruction, VMCALL.
            byte[] vmcall = LongModeGuest.Assemble(a => a.vmcall());
            for (int i = 0; i < vmcall.Length; i++) Assert.Equal(vmcall[i], guest.Memory.Read<byte>(LongModeGuest.CodeGpa + (ulong)i));
            return;
        }
        var exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HYPERCALL, exit.Reason);
        Assert.Equal(MapGpaRange, exit.HypercallNr);
        Assert.True(exit.MapGpaRange.ToShared);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
        Assert.Equal(0UL, guest.Vcpu.GetRegs().rax);
    }

    /// <summary>Upstream without an exit: HLT next, RAX = <paramref name="ret"/>, kvm_run.hypercall.ret = ret as well.</summary>
    private static void AssertAnsweredInKernel(LongModeGuest guest, long ret)
    {
        var exit = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        // "out: vcpu->run->hypercall.ret = ret;" — written although the exit is not a hypercall exit.
        Assert.Equal(ret, exit.HypercallReturn);
        var regs = guest.Vcpu.GetRegs();
        Assert.Equal(unchecked((ulong)ret), regs.rax);
        Assert.Equal(LongModeGuest.CodeGpa + HypercallGuest.InstructionLength() + 1, regs.rip);
    }

    /// <summary>
    /// <see cref="HostDeviations.KvmPvmHypercallLoops"/>: KVM_RUN returns only when kicked, RIP on the hypercall
    /// instruction, RAX as it was.
    /// </summary>
    private static void AssertLoopsInLongMode(LongModeGuest guest)
    {
        var before = guest.Vcpu.GetRegs();
        using (var kick = new Timer(_ => guest.Vcpu.Kick(), null, 200, Timeout.Infinite))
        {
            var exit = guest.Vcpu.Run();
            Assert.True(exit.Interrupted, $"expected the VMCALL to spin until kicked, got {exit.ToString()}");
        }
        guest.Vcpu.ImmediateExit = false;
        var after = guest.Vcpu.GetRegs();
        Assert.Equal(before.rip, after.rip);
        Assert.Equal(before.rax, after.rax);
    }
}
