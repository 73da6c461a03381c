// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The A64 groups compiled C needs (A64Interpreter.CompiledCode.cs; Arm ARM C4.1 and the C6.2 pseudocode of each
/// instruction): each case is GNU as output (aarch64-linux-gnu-as, encodings copied here, so no assembler is needed
/// at test time) run on the emulated arm64 kernel from the given registers, then one register is compared with the
/// value the Arm ARM pseudocode gives. The arm64 C guests of KvmSharp.Vmm.Tests (Arm64CGuestTests) run whole gcc
/// programs on top of these.
/// </summary>
public class Arm64CompiledCodeTests
{
    /// <summary>A case: the instruction words, initial (register, value) pairs, the register to read and its value.</summary>
    public sealed record Case(uint[] Words, ulong[] Init, int Register, ulong Expected);

    private static readonly Dictionary<string, Case> Cases = new(StringComparer.Ordinal)
    {
        ["orr_imm_alternating"] = new([0xB201F3E0], [], 0, 0xAAAAAAAAAAAAAAAAUL), // mov x0, #0xaaaaaaaaaaaaaaaa
        ["and_imm"] = new([0x92400420], [1, 0x17UL], 0, 0x3UL), // and x0, x1, #0x3
        ["orr_imm_w"] = new([0x32181C20], [1, 0x1234567800000001UL], 0, 0xFF01UL), // orr w0, w1, #0xff00
        ["eor_imm"] = new([0xD200F020], [1, 0xFFFFUL], 0, 0x555555555555AAAAUL), // eor x0, x1, #0x5555555555555555
        ["ands_imm_cset"] = new([0x72000020, 0x9A9F17E2], [1, 0x2UL], 2, 0x1UL), // ands w0, w1, #1; cset x2, eq
        ["lsr_imm"] = new([0xD342FC20], [1, 0x8000000000000013UL], 0, 0x2000000000000004UL), // lsr x0, x1, #2
        ["lsl_imm"] = new([0xD37DF020], [1, 0x1000000000000001UL], 0, 0x8000000000000008UL), // lsl x0, x1, #3
        ["asr_imm"] = new([0x9344FC20], [1, 0x8000000000000000UL], 0, 0xF800000000000000UL), // asr x0, x1, #4
        ["sxtw"] = new([0x93407C20], [1, 0x80000000UL], 0, 0xFFFFFFFF80000000UL), // sxtw x0, w1
        ["uxtb"] = new([0x53001C20], [1, 0x1234UL], 0, 0x34UL), // uxtb w0, w1
        ["sxth"] = new([0x93403C20], [1, 0x8001UL], 0, 0xFFFFFFFFFFFF8001UL), // sxth x0, w1
        ["bfi"] = new([0xB3780C20], [0, 0xFFFFUL, 1, 0x5UL], 0, 0xF5FFUL), // bfi x0, x1, #8, #4
        ["ubfx"] = new([0xD3442C20], [1, 0xABCDUL], 0, 0xBCUL), // ubfx x0, x1, #4, #8
        ["sbfx_w"] = new([0x13041C20], [1, 0x80UL], 0, 0xFFFFFFF8UL), // sbfx w0, w1, #4, #4
        ["extr"] = new([0x93C22020], [1, 0x11UL, 2, 0x2233UL], 0, 0x1100000000000022UL), // extr x0, x1, x2, #8
        ["ror_imm_w"] = new([0x13811020], [1, 0x12345678UL], 0, 0x81234567UL), // ror w0, w1, #4
        ["add_ext_sxtw"] = new([0x8B22C820], [1, 0x100UL, 2, 0xFFFFFFFFUL], 0, 0xFCUL), // add x0, x1, w2, sxtw #2
        ["add_ext_uxtb_w"] = new([0x0B220020], [1, 0x1UL, 2, 0x1FFUL], 0, 0x100UL), // add w0, w1, w2, uxtb
        ["add_ext_sp"] = new([0x910003E3, 0x8B2167E0, 0xCB030000], [1, 0x8UL], 0, 0x10UL), // mov x3, sp; add x0, sp, x1, lsl #1; sub x0, x0, x3
        ["adc"] = new([0xAB020020, 0x9A050083], [1, 0xFFFFFFFFFFFFFFFFUL, 2, 0x1UL, 4, 0xAUL, 5, 0x14UL], 3, 0x1FUL), // adds x0, x1, x2; adc x3, x4, x5
        ["sbc"] = new([0xEB020020, 0xDA050083], [1, 0x1UL, 2, 0x2UL, 4, 0xAUL, 5, 0x3UL], 3, 0x6UL), // subs x0, x1, x2; sbc x3, x4, x5
        ["csel"] = new([0xEB02003F, 0x9A84B060], [1, 0x1UL, 2, 0x2UL, 3, 0x7UL, 4, 0x8UL], 0, 0x7UL), // cmp x1, x2; csel x0, x3, x4, lt
        ["csinc"] = new([0xEB02003F, 0x9A840460], [1, 0x1UL, 2, 0x2UL, 3, 0x7UL, 4, 0x8UL], 0, 0x9UL), // cmp x1, x2; csinc x0, x3, x4, eq
        ["csinv_w"] = new([0xEB02003F, 0x5A840060], [1, 0x1UL, 2, 0x2UL, 3, 0x7UL, 4, 0x8UL], 0, 0xFFFFFFF7UL), // cmp x1, x2; csinv w0, w3, w4, eq
        ["csneg"] = new([0xEB02003F, 0xDA840460], [1, 0x1UL, 2, 0x2UL, 3, 0x7UL, 4, 0x8UL], 0, 0xFFFFFFFFFFFFFFF8UL), // cmp x1, x2; csneg x0, x3, x4, eq
        ["ccmp_imm_holds"] = new([0xF100043F, 0xFA420840, 0x9A9F17E0], [1, 0x1UL, 2, 0x2UL], 0, 0x1UL), // cmp x1, #1; ccmp x2, #2, #0, eq; cset x0, eq
        ["ccmp_reg_fails_takes_nzcv"] = new([0xF100003F, 0xFA430044, 0x9A9F17E0], [1, 0x1UL, 2, 0x5UL, 3, 0x6UL], 0, 0x1UL), // cmp x1, #0; ccmp x2, x3, #4, eq; cset x0, eq
        ["ccmn"] = new([0xF100043F, 0xBA430840, 0x9A9F17E0], [1, 0x1UL, 2, 0xFFFFFFFFFFFFFFFDUL], 0, 0x1UL), // cmp x1, #1; ccmn x2, #3, #0, eq; cset x0, eq
        ["udiv"] = new([0x9AC20820], [1, 0x64UL, 2, 0x7UL], 0, 0xEUL), // udiv x0, x1, x2
        ["udiv_by_zero"] = new([0x9AC20820], [0, 0x5UL, 1, 0x64UL, 2, 0x0UL], 0, 0x0UL), // udiv x0, x1, x2
        ["sdiv"] = new([0x9AC20C20], [1, 0xFFFFFFFFFFFFFF9CUL, 2, 0x7UL], 0, 0xFFFFFFFFFFFFFFF2UL), // sdiv x0, x1, x2
        ["sdiv_w_overflow"] = new([0x1AC20C20], [1, 0x80000000UL, 2, 0xFFFFFFFFUL], 0, 0x80000000UL), // sdiv w0, w1, w2
        ["lslv"] = new([0x9AC22020], [1, 0x1UL, 2, 0x41UL], 0, 0x2UL), // lsl x0, x1, x2
        ["asrv_w"] = new([0x1AC22820], [1, 0x80000000UL, 2, 0x21UL], 0, 0xC0000000UL), // asr w0, w1, w2
        ["rorv"] = new([0x9AC22C20], [1, 0x1UL, 2, 0x1UL], 0, 0x8000000000000000UL), // ror x0, x1, x2
        ["lsrv_w"] = new([0x1AC22420], [1, 0xFFFFFFFF00000010UL, 2, 0x4UL], 0, 0x1UL), // lsr w0, w1, w2
        ["rbit_w"] = new([0x5AC00020], [1, 0x1UL], 0, 0x80000000UL), // rbit w0, w1
        ["rev"] = new([0xDAC00C20], [1, 0x102030405060708UL], 0, 0x807060504030201UL), // rev x0, x1
        ["rev16_w"] = new([0x5AC00420], [1, 0x11223344UL], 0, 0x22114433UL), // rev16 w0, w1
        ["rev32"] = new([0xDAC00820], [1, 0x102030405060708UL], 0, 0x403020108070605UL), // rev32 x0, x1
        ["rev_w"] = new([0x5AC00820], [1, 0x11223344UL], 0, 0x44332211UL), // rev w0, w1
        ["clz"] = new([0xDAC01020], [1, 0xF0UL], 0, 0x38UL), // clz x0, x1
        ["clz_w_zero"] = new([0x5AC01020], [1, 0x0UL], 0, 0x20UL), // clz w0, w1
        ["cls"] = new([0xDAC01420], [1, 0xFFFF000000000000UL], 0, 0xFUL), // cls x0, x1
        ["cls_w_zero"] = new([0x5AC01420], [1, 0x0UL], 0, 0x1FUL), // cls w0, w1
        ["madd"] = new([0x9B020C20], [1, 0x3UL, 2, 0x4UL, 3, 0x5UL], 0, 0x11UL), // madd x0, x1, x2, x3
        ["msub"] = new([0x9B028C20], [1, 0x3UL, 2, 0x4UL, 3, 0x5UL], 0, 0xFFFFFFFFFFFFFFF9UL), // msub x0, x1, x2, x3
        ["mul_w"] = new([0x1B027C20], [1, 0x10000UL, 2, 0x10001UL], 0, 0x10000UL), // mul w0, w1, w2
        ["smaddl"] = new([0x9B220C20], [1, 0xFFFFFFFEUL, 2, 0x3UL, 3, 0xAUL], 0, 0x4UL), // smaddl x0, w1, w2, x3
        ["umaddl"] = new([0x9BA20C20], [1, 0xFFFFFFFEUL, 2, 0x3UL, 3, 0xAUL], 0, 0x300000004UL), // umaddl x0, w1, w2, x3
        ["smull"] = new([0x9B227C20], [1, 0xFFFFFFFEUL, 2, 0x3UL], 0, 0xFFFFFFFFFFFFFFFAUL), // smull x0, w1, w2
        ["umsubl"] = new([0x9BA28C20], [1, 0x2UL, 2, 0x3UL, 3, 0xAUL], 0, 0x4UL), // umsubl x0, w1, w2, x3
        ["umulh"] = new([0x9BC27C20], [1, 0xFFFFFFFFFFFFFFFFUL, 2, 0xFFFFFFFFFFFFFFFFUL], 0, 0xFFFFFFFFFFFFFFFEUL), // umulh x0, x1, x2
        ["smulh"] = new([0x9B427C20], [1, 0x8000000000000000UL, 2, 0x2UL], 0, 0xFFFFFFFFFFFFFFFFUL), // smulh x0, x1, x2
        ["adr"] = new([0x10000000, 0x10000041, 0xCB000022], [], 2, 0xCUL), // adr x0, .; adr x1, .+8; sub x2, x1, x0
        ["adrp"] = new([0xF0000000], [], 0, 0x3000UL), // adrp x0, .+0x3000 (encoded by hand: immlo 3, immhi 0)
        ["adrp_back"] = new([0xF0FFFFE0], [], 0, 0xFFFFFFFFFFFFF000UL), // adrp x0, .-0x1000 (immhi:immlo = -1)
        ["tbz_not_taken"] = new([0xD2800000, 0xB6400041, 0xD2800020], [1, 0x10000000000UL], 0, 0x1UL), // mov x0, #0; tbz x1, #40, 1f; mov x0, #1; 1:
        ["tbnz_taken"] = new([0xD2800000, 0xB7400041, 0xD2800020], [1, 0x10000000000UL], 0, 0x0UL), // mov x0, #0; tbnz x1, #40, 1f; mov x0, #1; 1:
        ["tbz_w_taken"] = new([0xD2800000, 0x36180041, 0xD2800020], [1, 0xF7UL], 0, 0x0UL), // mov x0, #0; tbz w1, #3, 1f; mov x0, #1; 1:
        ["stp_ldp_offset"] = new([0xD2900005, 0xA90108A1, 0xA94110A3, 0xCB030080], [1, 0x5UL, 2, 0xCUL], 0, 0x7UL), // mov x5, #0x8000; stp x1, x2, [x5, #16]; ldp x3, x4, [x5, #16]; sub x0, x4, x3
        ["stp_pre_ldpsw"] = new([0xD2900005, 0x29BF08A1, 0x694010A3, 0x8B050060], [1, 0xFFFFFFFFUL, 2, 0x5UL], 0, 0x7FF7UL), // mov x5, #0x8000; stp w1, w2, [x5, #-8]!; ldpsw x3, x4, [x5]; add x0, x3, x5
        ["stp_post_sp"] = new([0x910003E5, 0xA9BE0BE1, 0xA8C213E3, 0x910003E6, 0xCB0500C6, 0x8B040060, 0x8B060000], [1, 0x3UL, 2, 0x4UL], 0, 0x7UL), // mov x5, sp; stp x1, x2, [sp, #-32]!; ldp x3, x4, [sp], #32; mov x6, sp; sub x6, x6, x5; add x0, x3, x4; add x0, x0, x6
        ["ldp_w"] = new([0xD2900005, 0xA90008A1, 0x294010A3, 0x8B040060], [1, 0x100000002UL, 2, 0x9UL], 0, 0x3UL), // mov x5, #0x8000; stp x1, x2, [x5]; ldp w3, w4, [x5]; add x0, x3, x4
        ["str_ldr_reg_uxtw"] = new([0xD2900005, 0xF82658A1, 0xF86678A0], [1, 0xDEADBEEF12345678UL, 6, 0x3UL], 0, 0xDEADBEEF12345678UL), // mov x5, #0x8000; str x1, [x5, w6, uxtw #3]; ldr x0, [x5, x6, lsl #3]
        ["strb_ldrsb_reg"] = new([0xD2900005, 0x382668A1, 0x38A668A0], [1, 0x80UL, 6, 0x5UL], 0, 0xFFFFFFFFFFFFFF80UL), // mov x5, #0x8000; strb w1, [x5, x6]; ldrsb x0, [x5, x6]
        ["strh_ldrh_sxtw"] = new([0xD2900205, 0x7826D8A1, 0x7866D8A0], [1, 0x12345UL, 6, 0xFFFFFFFFUL], 0, 0x2345UL), // mov x5, #0x8010; strh w1, [x5, w6, sxtw #1]; ldrh w0, [x5, w6, sxtw #1]
        ["stur_ldur"] = new([0xD2900005, 0xF81F80A1, 0xF85F80A0], [1, 0x1122334455667788UL], 0, 0x1122334455667788UL), // mov x5, #0x8000; stur x1, [x5, #-8]; ldur x0, [x5, #-8] (8-aligned: the MMU is off, so memory is Device)
        ["ldursw"] = new([0xD2900005, 0xB81FC0A1, 0xB89FC0A0], [1, 0x80000000UL], 0, 0xFFFFFFFF80000000UL), // mov x5, #0x8000; stur w1, [x5, #-4]; ldursw x0, [x5, #-4]
        ["ldr_literal"] = new([0x58000040, 0x14000003, 0x55667788, 0x11223344], [], 0, 0x1122334455667788UL), // ldr x0, 1f; b 2f; .balign 8; 1: .quad 0x1122334455667788; 2:
        ["ldrsw_literal"] = new([0x98000040, 0x14000002, 0x80000000], [], 0, 0xFFFFFFFF80000000UL), // ldrsw x0, 1f; b 2f; 1: .word 0x80000000; 2:
    };

    public static TheoryData<string> Names => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public void Instruction_computes_what_the_arm_arm_pseudocode_gives(string name)
    {
        var c = Cases[name];
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using var kvm = Kvm.Open(kernel);
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            foreach (uint w in c.Words) a.Emit(w);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        for (int i = 0; i < c.Init.Length; i += 2) guest.Vcpu.SetOneReg(KvmArm64Regs.X((int)c.Init[i]), c.Init[i + 1]);
        var exit = guest.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(c.Expected, guest.Vcpu.GetOneReg(KvmArm64Regs.X(c.Register)));
    }

    [Fact]
    public void Brk_is_a_breakpoint_exception_at_el1_with_its_immediate_in_the_syndrome()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using var kvm = Kvm.Open(kernel);
        using var guest = Arm64Guest.Create(kvm,
            a => a.Emit(0xD4207D00), // brk #0x3e8 (what __builtin_trap() compiles to)
            vector =>
            {
                vector.Mrs(X(0), KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0)); // ESR_EL1
                vector.Mrs(X(1), KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1)); // ELR_EL1
                Arm64Guest.Ucall(vector, Arm64Guest.UcallDone);
            });
        var exit = guest.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        ulong esr = guest.Vcpu.GetOneReg(KvmArm64Regs.X(0));
        Assert.Equal(0x3CUL, esr >> 26);              // EC BRK64
        Assert.Equal(0x3E8UL, esr & 0xFFFF);          // ISS = imm16
        Assert.Equal(Arm64Guest.CodeGpa, guest.Vcpu.GetOneReg(KvmArm64Regs.X(1)));
    }

    [Fact]
    public void A_load_pair_into_one_register_is_undefined()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using var kvm = Kvm.Open(kernel);
        using var guest = Arm64Guest.Create(kvm,
            a => a.Emit(0xA9400BE2), // ldp x2, x2, [sp] (CONSTRAINED UNPREDICTABLE: here UNDEFINED)
            vector =>
            {
                vector.Mrs(X(0), KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0));
                Arm64Guest.Ucall(vector, Arm64Guest.UcallDone);
            });
        var exit = guest.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(0UL, guest.Vcpu.GetOneReg(KvmArm64Regs.X(0)) >> 26); // EC 0: unknown reason
    }
}
