// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// IRET and IRETD in real mode (arch/x86/kvm/emulate.c emulate_iret_real; Intel SDM Vol. 2A IRET "REAL-ADDRESS-MODE"):
/// the FLAGS image is loaded with the reserved bits 3, 5 and 15 cleared and bit 1 set; IRETD also loads AC and ID and
/// keeps VM, VIF and VIP; and PUSHD of a segment register, which frames the IRETD here. Found by the differential fuzzer's real-mode IVT programs (TinyGuestProgram.RealMode.cs): the
/// emulator kept bits 3, 5 and 15, failed IRETD and wrote 32 bits for PUSHD CS. Probed on this host (Linux 6.18 kvm_pvm) with a C program first.
/// </summary>
public static class RealModeIretFlags
{
    [ConformanceCase("emulate.c emulate_iret_real: real-mode IRET clears the reserved FLAGS bits 3, 5 and 15 (image 0xFEFF → 0x7ED7); IRETD loads AC and ID, keeps VM/VIF/VIP and clears RF (0x3F0ED7 → 0x240ED7)")]
    public static void real_mode_iret_loads_flags_without_reserved_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (bool wide in new[] { false, true })
        {
            var vm = kvm.CreateVm();
            var mem = vm.AllocateMemory(0x20000);
            try
            {
                Check(vm, mem, wide);
            }
            finally
            {
                vm.Dispose();
                mem.Dispose();
            }
        }
    }

    [ConformanceCase("emulate.c em_push_sreg: PUSH of a segment register with a 32-bit operand size (66 0E) subtracts 4 from SP and writes only the selector's 16 bits; the upper word keeps what was there")]
    public static void pushd_of_a_segment_register_writes_16_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var vm = kvm.CreateVm();
        var mem = vm.AllocateMemory(0x20000);
        try
        {
            var a = new Assembler(16);
            a.mov(__dword_ptr[0x7FFC], unchecked((int)0xAAAA_AAAA));
            a.AddInstruction(Instruction.Create(Code.Pushd_CS, Register.CS));
            a.hlt();
            using var vcpu = StartAtCs1000(vm, mem, a, out _);
            var exit = vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
            Assert.Equal(0x7FFCUL, vcpu.GetRegs().rsp);
            Assert.Equal(0xAAAA_1000u, mem.Read<uint>(0x7FFC));
        }
        finally
        {
            vm.Dispose();
            mem.Dispose();
        }
    }

    private static void Check(Vm vm, AnonymousMemory mem, bool wide)
    {
        {
            // The frame: FLAGS image, CS, and the IP of the HLT after the CALL (CALL pushes it; the IRET is its target).
            var a = new Assembler(16);
            var iret = a.CreateLabel();
            if (wide)
            {
                a.AddInstruction(Instruction.Create(Code.Pushd_imm32, 0x3F_0ED7));
                a.AddInstruction(Instruction.Create(Code.Pushd_CS, Register.CS));
                a.AddInstruction(Instruction.CreateBranch(Code.Call_rel32_32, iret.Id));
            }
            else
            {
                a.push(unchecked((short)0xFEFF));
                a.push(cs);
                a.call(iret);
            }
            a.hlt();
            a.Label(ref iret);
            if (wide) a.iretd(); else a.iret();
            a.hlt();
            using var vcpu = StartAtCs1000(vm, mem, a, out byte[] code);
            var exit = vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"wide {wide}: {exit.ToString()}");
            var r = vcpu.GetRegs();
            Assert.Equal((wide ? 0x240ED7UL : 0x7ED7UL, 0x8000UL), (r.rflags, r.rsp));
            Assert.Equal((ulong)code.Length - (wide ? 3UL : 2UL), r.rip); // after the HLT the CALL returns to (before the IRET)
        }
    }

    /// <summary>
    /// Slot 0 over <paramref name="mem"/>, <paramref name="a"/>'s code (its bytes: <paramref name="code"/>) at GPA
    /// 0x10000, and vCPU 0 set to run it in real mode from CS 0x1000:0 with DS = SS = 0, SP 0x8000 and FLAGS 2.
    /// </summary>
    private static Vcpu StartAtCs1000(Vm vm, AnonymousMemory mem, Assembler a, out byte[] code)
    {
        vm.AddMemorySlot(0, 0, mem);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), 0);
        code = stream.ToArray();
        mem.Write(0x10000, code);
        var vcpu = vm.CreateVcpu(0);
        try
        {
            var s = vcpu.GetSregs();
            (s.cs.@base, s.cs.selector) = (0x10000, 0x1000);
            (s.ds.@base, s.ds.selector, s.ss.@base, s.ss.selector) = (0, 0, 0, 0);
            vcpu.SetSregs(s);
            vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2, rsp = 0x8000 });
            return vcpu;
        }
        catch
        {
            vcpu.Dispose();
            throw;
        }
    }
}
