// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using Xunit;
using static KvmSharp.Conformance.CaseContext;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// arm64 guests on the arm64 emulator profile: the arm64 flavour of test_guest_memfd_guest, MMIO exits with and
/// without a valid syndrome, PSCI SYSTEM_OFF, an undefined instruction, and the arm64 rule of seeds 003/004 (guest_memfd
/// mmap is always supported: arm64 selects KVM_GMEM_SUPPORTS_MMAP). This host is x86_64, so on the real kernel every
/// case is skipped.
/// </summary>
public static class Arm64Guests
{
    private const string Selftest = "tools/testing/selftests/kvm/guest_memfd_test.c";
    private const string ArmC = "arch/arm64/kvm/arm.c";
    private const string MmioC = "arch/arm64/kvm/mmio.c";

    internal static void RequireArm64(CaseContext ctx)
    {
        if (ctx.Target.IsReal) Skip("arm64 case: this host is x86_64, an arm64 VM cannot be created here");
    }

    /// <summary>
    /// test_guest_memfd_guest on arm64: a one-page MMAP|INIT_SHARED guest_memfd at GPA 4 GiB, bound with
    /// userspace_addr = NULL; the host fills it with 0xaa and unmaps; guest_code(mem, size) checks every byte and
    /// writes 0xff, then GUEST_DONE (ucall: an MMIO write); the host maps again and sees 0xff.
    /// </summary>
    [ConformanceCase(Selftest + " test_guest_memfd_guest (arm64)", Profile = EmulatedProfile.Arm64, Requires = KernelRequirement.GuestMemfd)]
    public static void test_guest_memfd_guest_arm64(CaseContext ctx)
    {
        RequireArm64(ctx);
        const ulong Gpa = 0x1_0000_0000;
        ulong size = (ulong)PageSize;
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            var check = a.CreateLabel();
            var fill = a.CreateLabel();
            var fail = a.CreateLabel();
            // x0 = mem, x1 = size (vcpu_args_set); x2 = i.
            a.Movz(X(2), 0);
            a.Bind(check);
            a.Add(X(4), X(0), X(2));
            a.Ldrb(W(3), X(4));
            a.CmpImm(W(3), 0xaa);
            a.B(A64Condition.NE, fail);
            a.AddImm(X(2), X(2), 1);
            a.Cmp(X(2), X(1));
            a.B(A64Condition.LO, check);
            a.Movz(X(2), 0);
            a.Movz(W(5), 0xff);
            a.Bind(fill);
            a.Add(X(4), X(0), X(2));
            a.Strb(W(5), X(4));
            a.AddImm(X(2), X(2), 1);
            a.Cmp(X(2), X(1));
            a.B(A64Condition.LO, fill);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            Arm64Guest.SystemOff(a);
            a.Bind(fail);
            Arm64Guest.Ucall(a, Arm64Guest.UcallFail);
            Arm64Guest.SystemOff(a);
        });
        var vm = guest.Vm;
        var flags = vm.SupportedGuestMemfdFlags;
        Assert.True(flags.HasFlag(GuestMemfdFlags.Mmap) && flags.HasFlag(GuestMemfdFlags.InitShared), $"supported flags = {flags.ToKernelString()}");
        using var gmem = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = vm.AddGuestMemfdSlot(1, Gpa, size, gmem, mapForUserspace: false);
        Assert.Null(slot.Mapping);
        using (var mem = gmem.Map()) mem.Fill(0, size, 0xaa);
        guest.Vcpu.SetX(0, Gpa);
        guest.Vcpu.SetX(1, size);

        AssertUcall(guest.Vcpu, Arm64Guest.UcallDone, () => $"guest saw 0x{guest.Vcpu.GetX(3):X2} at offset {guest.Vcpu.GetX(2)}");
        AssertSystemOff(guest.Vcpu);
        using var after = gmem.Map();
        int bad = after.GetSpan(0, (int)size).IndexOfAnyExcept((byte)0xff);
        Assert.True(bad < 0, $"host sees a byte other than 0xff at offset {bad}");
    }

    /// <summary>
    /// io_mem_abort with a valid syndrome: a store exits with its data, a load exits and takes userspace's data on
    /// the next KVM_RUN (kvm_handle_mmio_return: zero-extended for LDRB, 32-bit for a W register); PC stays at the
    /// instruction until that run.
    /// </summary>
    [ConformanceCase(MmioC + " io_mem_abort, kvm_handle_mmio_return", Profile = EmulatedProfile.Arm64)]
    public static void arm64_mmio_exit(CaseContext ctx)
    {
        RequireArm64(ctx);
        const ulong Mmio = 0x0900_0000;
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            a.MovImm(X(0), Mmio);
            a.MovImm(X(1), 0x1122_3344_5566_7788);
            a.Str(X(1), X(0));          // 8-byte write
            a.Ldr(X(2), X(0), 8);       // 8-byte read
            a.Ldrb(W(3), X(0), 16);     // 1-byte read, zero-extended
            a.Ldr(W(4), X(0), 20);      // 4-byte read into a W register
            a.Str(X(2), X(0), 24);      // echo the 8-byte read
            a.Strh(W(3), X(0), 32);     // 2-byte write of the byte read
            Arm64Guest.SystemOff(a);
        });
        var vcpu = guest.Vcpu;
        // MOVZ+MOVK for x0, MOVZ+3×MOVK for x1, then the STR.
        ulong strPc = Arm64Guest.CodeGpa + 6 * 4;

        var exit = vcpu.Run();
        AssertMmio(exit, Mmio, 8, write: true);
        Assert.Equal(0x1122_3344_5566_7788UL, BitConverter.ToUInt64(exit.MmioData));
        Assert.Equal(strPc, vcpu.GetPc());

        exit = vcpu.Run();
        AssertMmio(exit, Mmio + 8, 8, write: false);
        Assert.Equal(strPc + 4, vcpu.GetPc());
        BitConverter.TryWriteBytes(exit.MmioData, 0xfedc_ba98_7654_3210UL);

        exit = vcpu.Run();
        Assert.Equal(0xfedc_ba98_7654_3210UL, vcpu.GetX(2));
        AssertMmio(exit, Mmio + 16, 1, write: false);
        exit.MmioData[0] = 0xfe;

        exit = vcpu.Run();
        Assert.Equal(0xfeUL, vcpu.GetX(3));
        AssertMmio(exit, Mmio + 20, 4, write: false);
        vcpu.SetX(4, ulong.MaxValue);
        BitConverter.TryWriteBytes(exit.MmioData, 0x8000_0001u);

        exit = vcpu.Run();
        Assert.Equal(0x8000_0001UL, vcpu.GetX(4));
        AssertMmio(exit, Mmio + 24, 8, write: true);
        Assert.Equal(0xfedc_ba98_7654_3210UL, BitConverter.ToUInt64(exit.MmioData));

        exit = vcpu.Run();
        AssertMmio(exit, Mmio + 32, 2, write: true);
        Assert.Equal(0xfe, BitConverter.ToUInt16(exit.MmioData));
        AssertSystemOff(vcpu);
    }

    /// <summary>
    /// io_mem_abort: "No valid syndrome? … bail out": a post-indexed store (writeback, ESR_EL2.ISV = 0) to an
    /// address without a memslot makes KVM_RUN fail with ENOSYS, and the instruction is not executed.
    /// </summary>
    [ConformanceCase(MmioC + " io_mem_abort without ISV", Profile = EmulatedProfile.Arm64)]
    public static void arm64_mmio_without_syndrome(CaseContext ctx)
    {
        RequireArm64(ctx);
        const ulong Mmio = 0x0900_0000;
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            a.MovImm(X(0), Mmio);
            a.StrPost(X(1), X(0), 8);
            Arm64Guest.SystemOff(a);
        });
        ulong pc = Arm64Guest.CodeGpa + 2 * 4;
        AssertErrno(Errno.ENOSYS, () => guest.Vcpu.Run());
        Assert.Equal(pc, guest.Vcpu.GetPc());
        Assert.Equal(Mmio, guest.Vcpu.GetX(0));
    }

    /// <summary>
    /// Seeds 003/004: arm64 always selects KVM_GMEM_SUPPORTS_MMAP (kvm_arch_supports_gmem_mmap is true for every arm64
    /// VM), so KVM_CAP_GUEST_MEMFD_FLAGS offers MMAP and INIT_SHARED, and a host mapping of guest_memfd stays
    /// coherent with what the guest reads and writes through a gmem-only slot (gmem_abort), without remapping.
    /// </summary>
    [ConformanceCase("seed 003/004: arm64 selects KVM_GMEM_SUPPORTS_MMAP; arch/arm64/kvm/mmu.c gmem_abort", Profile = EmulatedProfile.Arm64, Requires = KernelRequirement.GuestMemfd)]
    public static void arm64_gmem_mmap_always_supported(CaseContext ctx)
    {
        RequireArm64(ctx);
        const ulong Gpa = 0x4000_0000;
        using var kvm = ctx.OpenKvm();
        Assert.Equal(
            (long)(KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED),
            kvm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS));
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            // Copy the host's word at +0 to +8, plus one; then report.
            a.MovImm(X(0), Gpa);
            a.Ldr(X(1), X(0));
            a.AddImm(X(1), X(1), 1);
            a.Str(X(1), X(0), 8);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
            Arm64Guest.SystemOff(a);
        });
        Assert.Equal(
            (long)(KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED),
            guest.Vm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS));
        ulong size = (ulong)PageSize;
        using var gmem = guest.Vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var host = gmem.Map();
        using var slot = guest.Vm.AddGuestMemfdSlot(1, Gpa, size, gmem, mapForUserspace: false);
        host.Write(0, 0x0123_4567_89ab_cdefUL);
        AssertUcall(guest.Vcpu, Arm64Guest.UcallDone, () => "no ucall");
        Assert.Equal(0x0123_4567_89ab_cdf0UL, host.Read<ulong>(8));
        AssertSystemOff(guest.Vcpu);
    }

    /// <summary>
    /// KVM_ARM_PREFERRED_TARGET, KVM_ARM_VCPU_INIT and KVM_GET/SET_ONE_REG rules: ENOEXEC before init, the target
    /// and feature checks (kvm_vcpu_set_target, kvm_vcpu_init_check_features, kvm_vcpu_init_changed), the reset
    /// state (kvm_reset_vcpu), and guest.c's id checks (ENOENT outside struct kvm_regs or for an unknown register,
    /// EINVAL for a wrong size or another architecture's id, EINVAL for an invalid PSTATE mode).
    /// </summary>
    [ConformanceCase(ArmC + " kvm_arch_vcpu_ioctl; arch/arm64/kvm/guest.c get_core_reg/set_core_reg", Profile = EmulatedProfile.Arm64)]
    public static void arm64_vcpu_init_and_one_reg(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var preferred = vm.PreferredTarget();
        Assert.Equal(KvmArm64Constants.KVM_ARM_TARGET_GENERIC_V8, preferred.target);
        using var vcpu = vm.CreateVcpu(0);
        AssertErrno(Errno.ENOEXEC, () => vcpu.Run());
        AssertErrno(Errno.ENOEXEC, () => vcpu.GetPc());
        AssertErrno(Errno.ENOEXEC, () => vcpu.SetPc(0));
        AssertErrno(Errno.EINVAL, () => vcpu.Init(0));
        AssertErrno(Errno.ENOENT, () => vcpu.Init(preferred.target, 1u << 9));
        var init = preferred;
        init.features[6] = 1;
        AssertErrno(Errno.ENOENT, () => vcpu.Init(init));
        // AArch32 EL1, SVE, pointer authentication, nested virtualization: not offered by this host.
        AssertErrno(Errno.EINVAL, () => vcpu.Init(preferred.target, 1u << KvmArm64Constants.KVM_ARM_VCPU_EL1_32BIT));
        AssertErrno(Errno.EINVAL, () => vcpu.Init(preferred.target, 1u << KvmArm64Constants.KVM_ARM_VCPU_HAS_EL2));
        vcpu.InitPreferred();
        Assert.Equal(0x3c5UL, vcpu.GetPstate());
        Assert.Equal(0UL, vcpu.GetPc());
        Assert.Equal(0x1de7ec7edbadc0deUL, vcpu.GetOneReg(KvmArm64Regs.ElrEl1));
        // A second init with other features (POWER_OFF is ephemeral and does not count) → EINVAL.
        AssertErrno(Errno.EINVAL, () => vcpu.Init(preferred.target, 0));
        vcpu.Init(preferred.target, (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | (1u << KvmArm64Constants.KVM_ARM_VCPU_POWER_OFF));
        using (var second = vm.CreateVcpu(1))
            AssertErrno(Errno.EINVAL, () => second.Init(preferred.target, 0));

        vcpu.SetX(30, 0x1234);
        Assert.Equal(0x1234UL, vcpu.GetX(30));
        ulong core = KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U64 | KvmArm64Regs.KVM_REG_ARM_CORE;
        AssertErrno(Errno.ENOENT, () => vcpu.GetOneReg(core | 216));
        AssertErrno(Errno.ENOENT, () => vcpu.GetOneReg(core | 214));
        AssertErrno(Errno.EINVAL, () => vcpu.GetOneReg(core | 1));
        AssertErrno(Errno.EINVAL, () => vcpu.GetOneReg(KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U32 | KvmArm64Regs.KVM_REG_ARM_CORE));
        // A 32-bit arm (KVM_REG_ARM) id: "nothing arch-specific in upper 32 bits" → EINVAL.
        AssertErrno(Errno.EINVAL, () => vcpu.GetOneReg(0x4030_0000_0010_0000));
        // ARM64_SYS_REG(0, 0, 0, 0, 0): no such system register (index_to_sys_reg_desc → NULL) → ENOENT.
        AssertErrno(Errno.ENOENT, () => vcpu.GetOneReg(0x6030_0000_0013_0000));
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KvmArm64Regs.Pstate, 0x9));
        AssertErrno(Errno.EINVAL, () => vcpu.SetOneReg(KvmArm64Regs.Pstate, 0x13));
        vcpu.SetOneReg(KvmArm64Regs.Pstate, KvmArm64Constants.PSR_MODE_EL1t);
        Assert.Equal(KvmArm64Constants.PSR_MODE_EL1t, vcpu.GetPstate());
        using var third = vm.CreateVcpu(2);
        AssertErrno(Errno.EINVAL, () => third.GetRegs());
    }

    /// <summary>
    /// KVM_GET_REG_LIST (arch/arm64/kvm/arm.c; guest.c kvm_arm_copy_reg_indices): ENOEXEC before KVM_ARM_VCPU_INIT; a
    /// short array gets E2BIG with the count written back; the list starts with copy_core_reg_indices' 75 core ids in
    /// struct kvm_regs order (41 × U64 from x0 to spsr[4], 32 × U128 vregs, FPSR and FPCR as U32), and every id it
    /// lists is readable with KVM_GET_ONE_REG. (The emulator lists only these; a real kernel adds firmware, timer and
    /// system registers after them.)
    /// </summary>
    [ConformanceCase(ArmC + " KVM_GET_REG_LIST; arch/arm64/kvm/guest.c copy_core_reg_indices", Profile = EmulatedProfile.Arm64)]
    public static void arm64_reg_list(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        AssertErrno(Errno.ENOEXEC, () => vcpu.GetRegisterList());
        vcpu.InitPreferred();
        byte[] shortList = new byte[3 * sizeof(ulong)];
        BitConverter.TryWriteBytes(shortList, 2UL);
        AssertErrno(Errno.E2BIG, ctx.Kernel.Ioctl(vcpu.Handle, KvmArm64Ioctls.KVM_GET_REG_LIST, shortList), "KVM_GET_REG_LIST with n = 2");
        ulong needed = BitConverter.ToUInt64(shortList);
        Assert.True(needed >= 75, $"count written back: {needed}");
        Assert.Equal(0UL, BitConverter.ToUInt64(shortList, 8));
        var ids = vcpu.GetRegisterList();
        Assert.Equal(needed, (ulong)ids.Length);
        ulong core = KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_ARM_CORE;
        var expected = Enumerable.Range(0, 41).Select(i => core | KvmArm64Regs.KVM_REG_SIZE_U64 | (uint)(2 * i))
            .Concat(Enumerable.Range(0, 32).Select(i => core | KvmArm64Regs.KVM_REG_SIZE_U128 | (uint)(KvmArm64Regs.OffsetVregs / 4 + 4 * i)))
            .Concat([core | KvmArm64Regs.KVM_REG_SIZE_U32 | (uint)(KvmArm64Regs.OffsetFpsr / 4), core | KvmArm64Regs.KVM_REG_SIZE_U32 | (uint)(KvmArm64Regs.OffsetFpcr / 4)]);
        Assert.Equal(expected, ids.Take(75));
        Assert.Contains(KvmArm64Regs.Pc, ids);
        foreach (ulong id in ids.Where(id => (id & KvmArm64Regs.KVM_REG_SIZE_MASK) == KvmArm64Regs.KVM_REG_SIZE_U64))
            _ = vcpu.GetOneReg(id);
    }

    /// <summary>
    /// PSCI SYSTEM_OFF (arch/arm64/kvm/psci.c kvm_psci_system_off → kvm_prepare_system_event): KVM_EXIT_SYSTEM_EVENT
    /// with type SHUTDOWN and ndata 1; every vCPU is then stopped, so a further KVM_RUN sleeps until a signal.
    /// </summary>
    [ConformanceCase("arch/arm64/kvm/psci.c kvm_psci_system_off", Profile = EmulatedProfile.Arm64)]
    public static void arm64_psci_system_off(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            // PSCI_VERSION first: x0 = 0x10001 (PSCI 1.1) afterwards, kept in x19.
            a.MovImm(X(0), 0x8400_0000);
            a.Hvc();
            a.Mov(X(19), X(0));
            Arm64Guest.SystemOff(a);
        });
        AssertSystemOff(guest.Vcpu);
        Assert.Equal(0x1_0001UL, guest.Vcpu.GetX(19));
        using var timer = new Timer(_ => guest.Vcpu.Kick(), null, 20, Timeout.Infinite);
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Interrupted, $"a stopped vCPU should sleep until kicked, got {exit.ToString()}");
    }

    /// <summary>
    /// An undefined instruction is not trapped by KVM: the guest takes it at VBAR_EL1 + 0x200 (EL1h, synchronous)
    /// with ELR_EL1 = the instruction, SPSR_EL1 = the old PSTATE and PSTATE = EL1h with DAIF masked.
    /// </summary>
    [ConformanceCase("Arm ARM AArch64.TakeException; arch/arm64/kvm/reset.c (VBAR_EL1 = 0)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_undefined_instruction(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm,
            a =>
            {
                a.Nop();
                a.Udf(0x1234);
            },
            syncVector: a =>
            {
                Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
                Arm64Guest.SystemOff(a);
            });
        guest.Vcpu.SetOneReg(KvmArm64Regs.Pstate, KvmArm64Constants.PSR_MODE_EL1h);
        AssertUcall(guest.Vcpu, Arm64Guest.UcallDone, () => "the vector was not reached");
        Assert.Equal(Arm64Guest.CodeGpa + 4, guest.Vcpu.GetOneReg(KvmArm64Regs.ElrEl1));
        Assert.Equal(KvmArm64Constants.PSR_MODE_EL1h, guest.Vcpu.GetOneReg(KvmArm64Regs.SpsrEl1));
        Assert.Equal(0x3c5UL, guest.Vcpu.GetPstate());
        AssertSystemOff(guest.Vcpu);
    }

    /// <summary>immediate_exit and a kick stop a looping arm64 guest like an x86 one (-EINTR; KVM_EXIT_INTR for a signal).</summary>
    [ConformanceCase(ArmC + " kvm_arch_vcpu_ioctl_run (wants_to_run, signal_pending)", Profile = EmulatedProfile.Arm64)]
    public static void arm64_immediate_exit_and_kick(CaseContext ctx)
    {
        RequireArm64(ctx);
        using var kvm = ctx.OpenKvm();
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            var loop = a.CreateLabel();
            a.Bind(loop);
            a.AddImm(X(0), X(0), 1);
            a.B(loop);
        });
        var vcpu = guest.Vcpu;
        vcpu.ImmediateExit = true;
        Assert.True(vcpu.Run().Interrupted);
        Assert.Equal(Arm64Guest.CodeGpa, vcpu.GetPc());
        vcpu.ImmediateExit = false;
        using (var timer = new Timer(_ => vcpu.Kick(), null, 20, Timeout.Infinite))
        {
            var exit = vcpu.Run();
            Assert.True(exit.Interrupted);
            // A kick that lands inside KVM_RUN is a signal (KVM_EXIT_INTR); one that lands before it only sets
            // immediate_exit, which leaves exit_reason untouched.
            if (exit.Reason == KvmExitReason.KVM_EXIT_INTR) Assert.True(vcpu.GetX(0) > 0, "the guest loop should have run");
        }
    }

    private static void AssertMmio(VcpuExit exit, ulong address, int length, bool write)
    {
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"expected KVM_EXIT_MMIO, got {exit.ToString()}");
        Assert.Equal(address, exit.MmioAddress);
        Assert.Equal(length, exit.MmioData.Length);
        Assert.Equal(write, exit.MmioIsWrite);
    }

    internal static void AssertUcall(Vcpu vcpu, ulong expected, Func<string> failure)
    {
        var exit = vcpu.Run();
        AssertMmio(exit, Arm64Guest.UcallMmioGpa, 8, write: true);
        ulong code = BitConverter.ToUInt64(exit.MmioData);
        if (code == Arm64Guest.UcallFail) Assert.Fail(failure());
        Assert.Equal(expected, code);
    }

    internal static void AssertSystemOff(Vcpu vcpu)
    {
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"expected KVM_EXIT_SYSTEM_EVENT, got {exit.ToString()}");
        var (type, ndata) = Arm64RunPage.SystemEvent(vcpu);
        Assert.Equal(KvmArm64Constants.KVM_SYSTEM_EVENT_SHUTDOWN, type);
        Assert.Equal(1u, ndata);
    }
}
