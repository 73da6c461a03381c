// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_CAP_ARM_NISV_TO_USER on the emulated arm64 VM (6.18 arch/arm64/kvm/mmio.c io_mem_abort, arm.c
/// kvm_vm_ioctl_enable_cap / kvm_vm_ioctl_check_extension, Documentation/virt/kvm/api.rst): a data abort on MMIO
/// without a valid syndrome (a writeback load/store) fails KVM_RUN with ENOSYS, or with the cap exits with
/// KVM_EXIT_ARM_NISV and the PC left at the instruction. Emulator-only: this host is x86.
/// </summary>
public class Arm64NisvTests
{
    // An IPA outside the one memory slot (Arm64Guest.Size = 64 KiB), with a page offset.
    private const ulong MmioGpa = 0x0200_0010;

    // ESR_ELx_WNR (bit 6) and the emulator's stage-2 FSC: translation fault, level 3 (ESR_ELx_FSC_FAULT | 3).
    private const ulong Wnr = 1UL << 6;
    private const ulong FscTranslationL3 = 0x07;

    private static void PostIndexStore(A64Assembler a)
    {
        a.MovImm(X(1), MmioGpa);
        a.MovImm(X(2), 0xAB);
        a.StrPost(X(2), X(1), 8);
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
    }

    private static void PostIndexLoad(A64Assembler a)
    {
        a.MovImm(X(1), MmioGpa);
        a.LdrPost(X(2), X(1), 8);
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
    }

    // The guest address of the program's writeback load/store (after the MovImm sequences).
    private static ulong InstructionPc(Action<A64Assembler> program)
    {
        var a = new A64Assembler();
        program(a);
        byte[] code = a.Assemble();
        // The first load/store with writeback (size 111 0 00 opc 0 imm9 x1 Rn Rt) in the program.
        for (int i = 0; i < code.Length; i += 4)
        {
            uint insn = BitConverter.ToUInt32(code, i);
            if ((insn & 0x3F20_0400) == 0x3800_0400) return Arm64Guest.CodeGpa + (ulong)i;
        }
        throw new InvalidOperationException("no writeback load/store in the program");
    }

    private static void EnableNisv(Vm vm) => vm.EnableCapability(KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER);

    [Fact]
    public void Check_extension_reports_the_cap_on_the_vm_and_on_dev_kvm()
    {
        // arm.c kvm_vm_ioctl_check_extension: "case KVM_CAP_ARM_NISV_TO_USER: r = 1" (kvm may be NULL).
        using var s = new Arm64TestVm(PostIndexStore);
        Assert.Equal(1, s.Vm.CheckExtension(KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER));
        Assert.Equal(1, s.Kvm.CheckExtension(KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER));
    }

    [Fact]
    public void Without_the_cap_a_writeback_store_to_mmio_fails_kvm_run_with_enosys_and_changes_nothing()
    {
        // mmio.c io_mem_abort: "No valid syndrome? … bail out otherwise" → -ENOSYS.
        using var s = new Arm64TestVm(PostIndexStore);
        var v = s.AddVcpu();
        Assert.Equal(Errno.ENOSYS, Assert.Throws<KvmException>(() => v.RunBounded()).Errno);
        Assert.Equal(InstructionPc(PostIndexStore), v.GetPc());
        Assert.Equal(MmioGpa, v.GetX(1));
    }

    [Fact]
    public void With_the_cap_a_post_index_store_exits_with_arm_nisv_and_resumes_at_the_instruction()
    {
        using var s = new Arm64TestVm(PostIndexStore);
        EnableNisv(s.Vm);
        var v = s.AddVcpu();
        ulong pc = InstructionPc(PostIndexStore);

        // io_mem_abort: exit_reason KVM_EXIT_ARM_NISV, esr_iss = ESR & (CM | WnR | FSC), fault_ipa with the page offset.
        var exit = v.RunBounded();
        Assert.True(exit.IsArmNisv, exit.ToString());
        Assert.Equal(KvmArm64Constants.KVM_EXIT_ARM_NISV, (uint)exit.Reason);
        Assert.Equal(Wnr | FscTranslationL3, exit.ArmNisvEsrIss);
        Assert.Equal(MmioGpa, exit.ArmNisvFaultIpa);
        // The instruction did not execute: no writeback, PC at the instruction.
        Assert.Equal(pc, v.GetPc());
        Assert.Equal(MmioGpa, v.GetX(1));

        // Nothing done by userspace: the next KVM_RUN re-executes the instruction and exits the same way.
        exit = v.RunBounded();
        Assert.True(exit.IsArmNisv, exit.ToString());
        Assert.Equal(MmioGpa, exit.ArmNisvFaultIpa);
        Assert.Equal(pc, v.GetPc());

        // Userspace emulates it (api.rst: "userspace … can … emulate the access"): writeback and step over.
        v.SetX(1, MmioGpa + 8);
        v.SetPc(pc + 4);
        exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(exit.MmioData));
    }

    [Fact]
    public void With_the_cap_a_post_index_load_reports_no_wnr()
    {
        using var s = new Arm64TestVm(PostIndexLoad);
        EnableNisv(s.Vm);
        var v = s.AddVcpu();
        v.SetX(2, 0x1234);
        var exit = v.RunBounded();
        Assert.True(exit.IsArmNisv, exit.ToString());
        Assert.Equal(FscTranslationL3, exit.ArmNisvEsrIss);
        Assert.Equal(MmioGpa, exit.ArmNisvFaultIpa);
        // Rt is not loaded, Rn not written back.
        Assert.Equal(0x1234UL, v.GetX(2));
        Assert.Equal(MmioGpa, v.GetX(1));
        Assert.Equal(InstructionPc(PostIndexLoad), v.GetPc());
    }

    [Fact]
    public void With_the_cap_a_pre_index_store_reports_the_written_back_address()
    {
        // STR X2, [X1, #8]!: the access (and the fault) is at X1 + 8.
        static void PreIndexStore(A64Assembler a)
        {
            a.MovImm(X(1), MmioGpa);
            a.MovImm(X(2), 0xCD);
            a.Emit(0xF800_8C22);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }

        using var s = new Arm64TestVm(PreIndexStore);
        EnableNisv(s.Vm);
        var v = s.AddVcpu();
        var exit = v.RunBounded();
        Assert.True(exit.IsArmNisv, exit.ToString());
        Assert.Equal(Wnr | FscTranslationL3, exit.ArmNisvEsrIss);
        Assert.Equal(MmioGpa + 8, exit.ArmNisvFaultIpa);
        Assert.Equal(MmioGpa, v.GetX(1));
        Assert.Equal(InstructionPc(PreIndexStore), v.GetPc());
    }

    [Fact]
    public void A_valid_syndrome_access_still_exits_with_kvm_exit_mmio_when_the_cap_is_on()
    {
        // io_mem_abort: only "!kvm_vcpu_dabt_isvalid(vcpu)" takes the NISV path.
        using var s = new Arm64TestVm(a => Arm64Guest.Ucall(a, Arm64Guest.UcallDone));
        EnableNisv(s.Vm);
        var v = s.AddVcpu();
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
    }

    [Fact]
    public void Enable_cap_rejects_flags_but_not_arguments_and_works_after_vcpus_exist()
    {
        using var s = new Arm64TestVm(PostIndexStore);
        var v = s.AddVcpu();
        // arm.c kvm_vm_ioctl_enable_cap: "if (cap->flags) return -EINVAL;" — nothing enabled.
        var bad = new kvm_enable_cap { cap = (uint)KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER, flags = 1 };
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => s.Vm.EnableCapability(bad)).Errno);
        Assert.Equal(Errno.ENOSYS, Assert.Throws<KvmException>(() => v.RunBounded()).Errno);

        // "case KVM_CAP_ARM_NISV_TO_USER: r = 0; set_bit(…)": args are ignored, no vCPU-count check, idempotent.
        s.Vm.EnableCapability(KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER, 0xdead, 1, 2, 3);
        EnableNisv(s.Vm);
        var exit = v.RunBounded();
        Assert.True(exit.IsArmNisv, exit.ToString());
        Assert.Equal(MmioGpa, exit.ArmNisvFaultIpa);
    }
}
