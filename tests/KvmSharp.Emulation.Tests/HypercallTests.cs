// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_CAP_EXIT_HYPERCALL / KVM_ENABLE_CAP (arch/x86/kvm/x86.c kvm_vm_ioctl_enable_cap) and VMCALL
/// (____kvm_emulate_hypercall, complete_hypercall_exit) on the emulated kernel, for the rules the conformance suite
/// cannot reach on this host: CPL, 32-bit protected mode, the other KVM_HC_* numbers, completion details.
/// </summary>
public sealed class HypercallTests
{
    private const ulong Valid = KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK;
    private const ulong Gpa = 0x40_0000;

    private static long EnableCap(IKernel k, KernelFd vm, uint cap, uint flags, ulong a0)
    {
        var c = new kvm_enable_cap { cap = cap, flags = flags };
        c.args[0] = a0;
        return k.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Raw.Bytes(ref c));
    }

    private static long EnableExits(RawGuest g, ulong mask) => EnableCap(g.Kernel, g.Vm, KvmCaps.KVM_CAP_EXIT_HYPERCALL, 0, mask);

    private static void SetHypercallRegs(RawGuest g, ulong nr, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0)
    {
        var r = g.Regs;
        (r.rax, r.rbx, r.rcx, r.rdx, r.rsi) = (nr, a0, a1, a2, a3);
        g.Regs = r;
    }

    private static void VmcallHlt(Assembler a)
    {
        a.vmcall();
        a.hlt();
    }

    /// <summary>32-bit protected mode without paging, every segment flat with DPL <paramref name="cpl"/>.</summary>
    private static void ProtectedMode32(RawGuest g, int cpl)
    {
        g.Write(RawGuest.CodeGpa, RawGuest.Assemble(32, RawGuest.CodeGpa, VmcallHlt));
        var s = g.Sregs;
        s.cr0 = 0x11; // PE ET
        s.cs = new kvm_segment { limit = 0xffff_ffff, selector = (ushort)(8 | cpl), type = 11, present = 1, s = 1, db = 1, g = 1, dpl = (byte)cpl };
        var data = new kvm_segment { limit = 0xffff_ffff, selector = (ushort)(16 | cpl), type = 3, present = 1, s = 1, db = 1, g = 1, dpl = (byte)cpl };
        s.ds = s.es = s.fs = s.gs = s.ss = data;
        g.Sregs = s;
        g.Regs = new kvm_regs { rip = RawGuest.CodeGpa, rflags = 2, rsp = 0x30_0000 };
    }

    [Fact]
    public void Capability_is_the_map_gpa_range_bit_on_x86_and_0_on_arm64()
    {
        using (var k = new EmulatedKernel(EmulatorConfig.X86_64()))
        {
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            Assert.Equal(0x1000L, Raw.Cap(k, sys, KvmCaps.KVM_CAP_EXIT_HYPERCALL));
            Assert.Equal(0x1000L, Raw.Cap(k, vm, KvmCaps.KVM_CAP_EXIT_HYPERCALL));
        }
        using (var k = new EmulatedKernel(EmulatorConfig.Arm64()))
        {
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            Assert.Equal(0L, Raw.Cap(k, sys, KvmCaps.KVM_CAP_EXIT_HYPERCALL));
            Assert.Equal(0L, Raw.Cap(k, vm, KvmCaps.KVM_CAP_EXIT_HYPERCALL));
            // arm64 kvm_vm_ioctl_enable_cap knows no such cap.
            Assert.Equal(-(long)Errno.EINVAL, EnableCap(k, vm, KvmCaps.KVM_CAP_EXIT_HYPERCALL, 0, 0));
        }
    }

    [Fact]
    public void Enable_cap_copies_the_whole_struct_or_faults()
    {
        using var k = new EmulatedKernel();
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        var c = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_EXIT_HYPERCALL };
        c.args[0] = Valid;
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Raw.Bytes(ref c)[..103]));
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, 0UL));
        Assert.Equal(0, k.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Raw.Bytes(ref c)));
    }

    [Fact]
    public void A_failed_enable_cap_keeps_the_previous_mask_and_a_later_one_replaces_it()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(VmcallHlt);
        Assert.Equal(0, EnableExits(g, Valid));
        Assert.Equal(-(long)Errno.EINVAL, EnableCap(k, g.Vm, KvmCaps.KVM_CAP_EXIT_HYPERCALL, 1, 0));
        Assert.Equal(-(long)Errno.EINVAL, EnableExits(g, Valid << 1));
        SetHypercallRegs(g, KvmPara.KVM_HC_MAP_GPA_RANGE, Gpa, 1);
        g.RunExpect(KvmExitReason.KVM_EXIT_HYPERCALL); // still enabled

        using var g2 = new RawGuest(k);
        g2.LongMode(VmcallHlt);
        Assert.Equal(0, EnableExits(g2, Valid));
        Assert.Equal(0, EnableExits(g2, 0));
        SetHypercallRegs(g2, KvmPara.KVM_HC_MAP_GPA_RANGE, Gpa, 1);
        g2.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_ENOSYS), g2.Regs.rax);
    }

    [Fact]
    public void Cpl_3_gets_eperm_before_the_number_is_looked_at()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        ProtectedMode32(g, cpl: 3);
        Assert.Equal(0, EnableExits(g, Valid));
        SetHypercallRegs(g, KvmPara.KVM_HC_MAP_GPA_RANGE, Gpa, 1);
        // The HLT after the VMCALL is a #GP at CPL 3 (SDM HLT), a triple fault without an IDT: the run ends there.
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
        // -KVM_EPERM, truncated to 32 bits (not 64-bit mode), RIP past the VMCALL (on the HLT).
        Assert.Equal(0xffff_ffffUL, g.Regs.rax);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_EPERM), g.U64(KvmRunLayout.hypercall_ret));
        Assert.Equal(RawGuest.CodeGpa + 3, g.Regs.rip);
    }

    [Fact]
    public void Protected_mode_truncates_nr_args_and_ret_to_32_bits()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        ProtectedMode32(g, cpl: 0);
        Assert.Equal(0, EnableExits(g, Valid));
        SetHypercallRegs(g, 0x1_0000_0000 | KvmPara.KVM_HC_MAP_GPA_RANGE, 0x5_0000_0000 | Gpa, 0x9_0000_0002, 0xf_0000_0000);
        g.RunExpect(KvmExitReason.KVM_EXIT_HYPERCALL);
        Assert.Equal(KvmPara.KVM_HC_MAP_GPA_RANGE, g.U64(KvmRunLayout.hypercall_nr));
        Assert.Equal(Gpa, g.U64(KvmRunLayout.hypercall_args));
        Assert.Equal(2UL, g.U64(KvmRunLayout.hypercall_args + 8));
        Assert.Equal(0UL, g.U64(KvmRunLayout.hypercall_args + 16));
        Assert.Equal(0UL, g.U64(KvmRunLayout.hypercall_flags));
        Assert.Equal(0x1_0000_000CUL, g.Regs.rax); // untouched until completion
        BinaryPrimitives.WriteInt64LittleEndian(g.Run[KvmRunLayout.hypercall_ret..], -KvmPara.KVM_EINVAL);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(0xffff_ffeaUL, g.Regs.rax);
    }

    [Fact]
    public void Other_kvm_hypercalls_are_answered_in_the_kernel()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            a.mov(rax, KvmPara.KVM_HC_VAPIC_POLL_IRQ);
            a.vmcall();
            a.mov(r8, rax);
            a.mov(rax, KvmPara.KVM_HC_KICK_CPU);
            a.vmcall();
            a.mov(r9, rax);
            a.mov(rax, KvmPara.KVM_HC_SCHED_YIELD);
            a.vmcall();
            a.mov(r10, rax);
            a.mov(rax, KvmPara.KVM_HC_CLOCK_PAIRING);
            a.vmcall();
            a.mov(r11, rax);
            a.mov(rax, KvmPara.KVM_HC_SEND_IPI);
            a.mov(rsi, 0x800);
            a.vmcall();
            a.mov(r12, rax);
            a.mov(rax, KvmPara.KVM_HC_SEND_IPI);
            a.xor(esi, esi);
            a.vmcall();
            a.mov(r13, rax);
            a.mov(rax, KvmPara.KVM_HC_FEATURES); // not implemented on x86
            a.vmcall();
            a.hlt();
        });
        Assert.Equal(0, EnableExits(g, Valid));
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        var r = g.Regs;
        Assert.Equal(0UL, r.r8);
        Assert.Equal(0UL, r.r9);
        Assert.Equal(0UL, r.r10);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_EOPNOTSUPP), r.r11);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_EINVAL), r.r12);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_EOPNOTSUPP), r.r13);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_ENOSYS), r.rax);
    }

    [Fact]
    public void The_exit_leaves_args_3_to_5_alone_and_a_high_gpa_that_does_not_wrap_exits()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(VmcallHlt);
        Assert.Equal(0, EnableExits(g, Valid));
        BinaryPrimitives.WriteUInt64LittleEndian(g.Run[(KvmRunLayout.hypercall_args + 24)..], 0x5a5a);
        BinaryPrimitives.WriteUInt64LittleEndian(g.Run[KvmRunLayout.hypercall_ret..], 0x77);
        // gfn 2^52 - 1 plus one page is 2^52: no 64-bit wrap, so KVM forwards it.
        SetHypercallRegs(g, KvmPara.KVM_HC_MAP_GPA_RANGE, 0xffff_ffff_ffff_f000, 1, 0, 0x99);
        g.RunExpect(KvmExitReason.KVM_EXIT_HYPERCALL);
        Assert.Equal(0x5a5aUL, g.U64(KvmRunLayout.hypercall_args + 24));
        Assert.Equal(0UL, g.U64(KvmRunLayout.hypercall_ret));
        Assert.Equal(KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE, g.U64(KvmRunLayout.hypercall_flags));
    }

    [Fact]
    public void Completion_runs_before_immediate_exit_and_overrides_userspace_rax()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(VmcallHlt);
        Assert.Equal(0, EnableExits(g, Valid));
        SetHypercallRegs(g, KvmPara.KVM_HC_MAP_GPA_RANGE, Gpa, 1);
        g.RunExpect(KvmExitReason.KVM_EXIT_HYPERCALL);
        var r = g.Regs;
        r.rax = 0xdead;
        g.Regs = r;
        BinaryPrimitives.WriteUInt64LittleEndian(g.Run[KvmRunLayout.hypercall_ret..], 0x1234_5678_9abc_def0);
        g.ImmediateExit = true;
        Assert.Equal(-(long)Errno.EINTR, g.RunOnce());
        Assert.Equal(0x1234_5678_9abc_def0UL, g.Regs.rax);
        Assert.Equal(RawGuest.CodeGpa + 3, g.Regs.rip);
        g.ImmediateExit = false;
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(0x1234_5678_9abc_def0UL, g.Regs.rax); // completed once only
    }

    [Fact]
    public void Vmmcall_is_the_same_hypercall()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            a.vmmcall();
            a.hlt();
        });
        SetHypercallRegs(g, 0x4242);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_ENOSYS), g.Regs.rax);
    }
}
