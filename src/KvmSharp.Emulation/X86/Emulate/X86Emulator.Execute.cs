// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The instruction subset (arch/x86/kvm/emulate.c opcode_table covers far more; this is what tiny guests use).
/// Anything else ends KVM_RUN with KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION, as KVM does when its
/// emulator fails.
/// </summary>
internal sealed partial class X86Emulator
{
    private void ExecuteOne()
    {
        if (HostCodeBreakpoint()) return; // KVM_SET_GUEST_DEBUG's breakpoints first (X86Emulator.GuestDebug.cs)
        // The guest's execute breakpoints (X86Emulator.DebugRegisters.cs), which need an enabled one in DR7.
        if ((Vec.Dr7 & Dr7BpEnable) != 0) CheckCodeBreakpoint();
        var i = Fetch();
        if (!_fetchedWritesOnlyGprs) SaveSregs(); // the rest of the undo log (X86Emulator.Rollback.cs WritesOnlyGprs(i))
        // SEV-ES/SNP: #VC for RDPMC, INVD, WBINVD, MONITOR, MWAIT, RDTSCP, MOV DR7 (X86Emulator.GhcbEvents.cs); every
        // case of it does nothing unless the vCPU's state is protected.
        if (SevEsStateProtected) SevEsInterceptedInstruction(i);
        ulong next = i.NextIP;
        // RF is cleared once an instruction completes (SDM Vol. 3A 18.3.1.1); IRET may set it again.
        ulong f = _cpu.Rflags & ~RFLAGS_RF;
        switch (i.Mnemonic)
        {
            case Mnemonic.Nop:
            case Mnemonic.Pause:
            case Mnemonic.Endbr64:
            case Mnemonic.Lfence:
            case Mnemonic.Mfence:
            case Mnemonic.Sfence:
                break;
            case Mnemonic.Invlpg: // No TLB: every access walks the tables again.
                RequireCpl0(); // emulate.c group7 "I(SrcMem | ByteOp | Priv | NoAccess, em_invlpg)"
                break;

            case Mnemonic.Mov:
                if (IsSegmentMove(i)) { MoveSegment(i); break; }
                if (IsControlRegisterMove(i)) { MoveControlRegister(i); break; }
                if (IsDebugRegisterMove(i)) { MoveDebugRegister(i); break; }
                {
                    int size = OpSize(i, 0);
                    WriteOp(i, 0, size, ReadOp(i, 1, size));
                }
                break;
            case Mnemonic.Movzx:
                WriteOp(i, 0, OpSize(i, 0), ReadOp(i, 1, OpSize(i, 1)));
                break;
            case Mnemonic.Movsx:
            case Mnemonic.Movsxd:
            {
                int src = OpSize(i, 1);
                WriteOp(i, 0, OpSize(i, 0), Alu.SignExtend(ReadOp(i, 1, src), src) & Alu.Mask(OpSize(i, 0)));
                break;
            }
            case Mnemonic.Lea:
                WriteOp(i, 0, OpSize(i, 0), EffectiveAddress(i) & Alu.Mask(OpSize(i, 0)));
                break;
            case Mnemonic.Xchg:
            {
                int size = OpSize(i, 0);
                ulong a = ReadOp(i, 0, size), b = ReadOp(i, 1, size);
                WriteOp(i, 0, size, b);
                WriteOp(i, 1, size, a);
                break;
            }
            case Mnemonic.Cmove or Mnemonic.Cmovne or Mnemonic.Cmovb or Mnemonic.Cmovae or Mnemonic.Cmovbe or Mnemonic.Cmova
                or Mnemonic.Cmovs or Mnemonic.Cmovns or Mnemonic.Cmovl or Mnemonic.Cmovge or Mnemonic.Cmovle or Mnemonic.Cmovg
                or Mnemonic.Cmovo or Mnemonic.Cmovno or Mnemonic.Cmovp or Mnemonic.Cmovnp:
            {
                int size = OpSize(i, 0);
                ulong v = ReadOp(i, 1, size);
                // A 32-bit CMOV zero-extends its destination even when the condition is false.
                WriteOp(i, 0, size, Alu.Condition(i.ConditionCode, f) ? v : ReadOp(i, 0, size));
                break;
            }
            case Mnemonic.Sete or Mnemonic.Setne or Mnemonic.Setb or Mnemonic.Setae or Mnemonic.Setbe or Mnemonic.Seta
                or Mnemonic.Sets or Mnemonic.Setns or Mnemonic.Setl or Mnemonic.Setge or Mnemonic.Setle or Mnemonic.Setg
                or Mnemonic.Seto or Mnemonic.Setno or Mnemonic.Setp or Mnemonic.Setnp:
                WriteOp(i, 0, 1, Alu.Condition(i.ConditionCode, f) ? 1UL : 0UL);
                break;

            case Mnemonic.Add:
            case Mnemonic.Adc:
            case Mnemonic.Sub:
            case Mnemonic.Sbb:
            case Mnemonic.Cmp:
            case Mnemonic.And:
            case Mnemonic.Or:
            case Mnemonic.Xor:
            case Mnemonic.Test:
                Arithmetic(i, ref f);
                break;
            case Mnemonic.Inc:
            case Mnemonic.Dec:
            {
                int size = OpSize(i, 0);
                WriteOp(i, 0, size, Alu.IncDec(ReadOp(i, 0, size), i.Mnemonic == Mnemonic.Inc, size, ref f));
                break;
            }
            case Mnemonic.Neg:
            {
                int size = OpSize(i, 0);
                WriteOp(i, 0, size, Alu.Neg(ReadOp(i, 0, size), size, ref f));
                break;
            }
            case Mnemonic.Not:
            {
                int size = OpSize(i, 0);
                WriteOp(i, 0, size, ~ReadOp(i, 0, size) & Alu.Mask(size));
                break;
            }
            case Mnemonic.Shl:
            case Mnemonic.Sal:
            case Mnemonic.Shr:
            case Mnemonic.Sar:
            case Mnemonic.Rol:
            case Mnemonic.Ror:
            {
                int size = OpSize(i, 0);
                ulong count = i.OpCount > 1 ? ReadOp(i, 1, 1) : 1;
                WriteOp(i, 0, size, Alu.Shift(i.Mnemonic, ReadOp(i, 0, size), count, size, ref f));
                break;
            }
            case Mnemonic.Mul:
            case Mnemonic.Imul:
                Multiply(i, ref f);
                break;
            case Mnemonic.Div:
            case Mnemonic.Idiv:
                Divide(i);
                break;
            case Mnemonic.Cbw:
                WriteReg(Register.AX, Alu.SignExtend(ReadReg(Register.AL), 1));
                break;
            case Mnemonic.Cwde:
                WriteReg(Register.EAX, Alu.SignExtend(ReadReg(Register.AX), 2));
                break;
            case Mnemonic.Cdqe:
                WriteReg(Register.RAX, Alu.SignExtend(ReadReg(Register.EAX), 4));
                break;
            case Mnemonic.Cwd:
                WriteReg(Register.DX, (ReadReg(Register.AX) & 0x8000) != 0 ? 0xffffUL : 0UL);
                break;
            case Mnemonic.Cdq:
                WriteReg(Register.EDX, (ReadReg(Register.EAX) & 0x8000_0000) != 0 ? 0xffff_ffffUL : 0UL);
                break;
            case Mnemonic.Cqo:
                WriteReg(Register.RDX, (ReadReg(Register.RAX) >> 63) != 0 ? ulong.MaxValue : 0);
                break;

            case Mnemonic.Push:
            {
                int size = -i.StackPointerIncrement;
                bool sreg = i.GetOpKind(0) == OpKind.Register && i.Op0Register.IsSegmentRegister();
                ulong v = sreg ? ReadReg(i.Op0Register) : Alu.SignExtend(ReadOp(i, 0, OpSize(i, 0)), OpSize(i, 0)) & Alu.Mask(size);
                if (sreg && size == 4)
                {
                    // emulate.c em_push_sreg: "if (ctxt->op_bytes == 4) { rsp_increment(ctxt, -2); ctxt->op_bytes = 2; }" —
                    // ESP - 4, only the selector's 16 bits written (the fuzzer's real-mode IVT programs, PUSHD CS).
                    ulong sp = (ReadStackPointer() - 4) & Alu.Mask(StackAddressSize);
                    WriteMemory(Register.SS, sp, 2, v);
                    WriteStackPointer(sp);
                    break;
                }
                Push(v, size);
                break;
            }
            case Mnemonic.Pop:
            {
                if (i.GetOpKind(0) == OpKind.Register && i.Op0Register.IsSegmentRegister())
                {
                    PopSegment(i);
                    break;
                }
                int size = i.StackPointerIncrement;
                ulong v = Pop(size);
                WriteOp(i, 0, size, v);
                break;
            }
            case Mnemonic.Pushf:
            case Mnemonic.Pushfd:
            case Mnemonic.Pushfq:
                // The pushed image has RF and VM clear.
                Push(f & ~(RFLAGS_RF | (1UL << 17)), -i.StackPointerIncrement);
                break;
            case Mnemonic.Popf:
            case Mnemonic.Popfd:
            case Mnemonic.Popfq:
            {
                ulong v = Pop(i.StackPointerIncrement);
                f = PoppedFlags(f, v, i.StackPointerIncrement); // IOPL/IF by CPL (X86Emulator.Privilege.cs)
                break;
            }
            case Mnemonic.Leave:
            {
                // SDM LEAVE: (E/R)SP ← (E/R)BP by the stack address size, then (E/R)BP ← Pop() by the operand size
                // (iced's StackPointerIncrement is 0 for LEAVE: the change is not a constant).
                int size = i.Code switch { Code.Leavew => 2, Code.Leaved => 4, _ => 8 };
                WriteStackPointer(ReadReg(Register.RBP));
                WriteReg(FramePointer(size), Pop(size));
                break;
            }
            case Mnemonic.Call:
                if (IsFarBranch(i))
                {
                    next = FarCall(i, next);
                    break;
                }
                {
                    int size = -i.StackPointerIncrement;
                    ulong target = BranchTarget(i, size);
                    Push(next, size);
                    next = target;
                }
                break;
            case Mnemonic.Ret:
            {
                ulong imm = i.OpCount > 0 ? i.GetImmediate(0) : 0;
                int size = i.StackPointerIncrement - (int)imm;
                next = Pop(size);
                if (imm != 0) WriteStackPointer(ReadStackPointer() + imm);
                break;
            }
            case Mnemonic.Jmp:
                next = IsFarBranch(i) ? FarJump(i) : BranchTarget(i, _cpu.Bitness == 64 ? 8 : OpSize(i, 0));
                break;
            case Mnemonic.Retf:
                next = FarReturn(i);
                break;
            case Mnemonic.Jo or Mnemonic.Jno or Mnemonic.Jb or Mnemonic.Jae or Mnemonic.Je or Mnemonic.Jne or Mnemonic.Jbe
                or Mnemonic.Ja or Mnemonic.Js or Mnemonic.Jns or Mnemonic.Jp or Mnemonic.Jnp or Mnemonic.Jl or Mnemonic.Jge
                or Mnemonic.Jle or Mnemonic.Jg:
                if (Alu.Condition(i.ConditionCode, f)) next = i.NearBranchTarget;
                break;
            case Mnemonic.Jcxz:
            case Mnemonic.Jecxz:
            case Mnemonic.Jrcxz:
            {
                Register counter = i.Mnemonic == Mnemonic.Jcxz ? Register.CX : i.Mnemonic == Mnemonic.Jecxz ? Register.ECX : Register.RCX;
                if (ReadReg(counter) == 0) next = i.NearBranchTarget;
                break;
            }
            case Mnemonic.Loop:
            case Mnemonic.Loope:
            case Mnemonic.Loopne:
            {
                Register counter = LoopCounter(i.Code);
                ulong c = (ReadReg(counter) - 1) & Alu.Mask(counter.GetSize());
                WriteReg(counter, c);
                bool zf = (f & RFLAGS_ZF) != 0;
                bool taken = c != 0 && (i.Mnemonic == Mnemonic.Loop || (i.Mnemonic == Mnemonic.Loope ? zf : !zf));
                if (taken) next = i.NearBranchTarget;
                break;
            }

            case Mnemonic.Movsb or Mnemonic.Movsw or Mnemonic.Movsd or Mnemonic.Movsq
                or Mnemonic.Stosb or Mnemonic.Stosw or Mnemonic.Stosd or Mnemonic.Stosq
                or Mnemonic.Lodsb or Mnemonic.Lodsw or Mnemonic.Lodsd or Mnemonic.Lodsq:
                if (i.Mnemonic == Mnemonic.Movsd && i.OpCount == 2 && TrySseFloat(i, ref f)) break; // SSE2 MOVSD (X86Emulator.SseFloat.cs)
                if (!StringOp(i)) next = _cpu.Rip; // REP not finished: run the instruction again.
                break;

            case Mnemonic.Cmpsb or Mnemonic.Cmpsw or Mnemonic.Cmpsd or Mnemonic.Cmpsq
                or Mnemonic.Scasb or Mnemonic.Scasw or Mnemonic.Scasd or Mnemonic.Scasq:
                if (i.Mnemonic == Mnemonic.Cmpsd && i.OpCount == 3 && TrySseFloat(i, ref f)) break; // SSE2 CMPSD (X86Emulator.SseFloat.cs)
                if (!StringCompare(i, ref f)) next = _cpu.Rip; // REPE/REPNE not finished: run it again.
                break;

            case Mnemonic.In:
            case Mnemonic.Out:
                RequirePortIoPermission(i); // IOPL / TSS I/O bitmap (X86Emulator.Privilege.cs)
                TdVirtualizationException(i);
                SevEsCommunicationException(i); // SEV-ES/SNP: #VC (X86Emulator.SevEs.cs)
                PortIo(i);
                break;
            case Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd:
                RequireStringIoPermission(i); // check_perm before the REP rCX = 0 test (X86Emulator.Privilege.cs)
                TdVirtualizationException(i);
                SevEsCommunicationException(i); // SEV-ES/SNP: #VC (X86Emulator.SevEs.cs)
                if (!StringPortIo(i)) (next, f) = (_cpu.Rip, f | RFLAGS_RF); // REP not finished: run it again, RF set (X86Emulator.StringIo.cs)
                break;
            case Mnemonic.Tdcall when Arch.CocoState.IsTd(_kvm):
                next = Tdcall(i);
                break;
            case Mnemonic.Vmcall:
            case Mnemonic.Vmmcall:
                SevEsCommunicationException(i); // SEV-ES/SNP: #VC or #UD (X86Emulator.SevEs.cs)
                next = Hypercall(i);
                break;
            case Mnemonic.Vmgexit:
                next = Vmgexit(i, ref f); // X86Emulator.SevEs.cs
                break;
            case Mnemonic.Hlt:
                // x86.c __kvm_emulate_halt: "if (lapic_in_kernel(vcpu)) { vcpu->arch.mp_state = state; return 1; }" —
                // the vCPU waits in KVM_RUN (Vcpu/VcpuRun.cs Block); without one KVM_EXIT_HLT. A TD halts through
                // TDG.VP.VMCALL<Instruction.HLT> (X86Emulator.Tdcall.cs); its HLT instruction is a #VE. Before both,
                // the CPU's own check (SDM Vol. 2A HLT: "#GP(0) If the current privilege level is not 0"; AMD APM
                // Vol. 3 HLT likewise, checked before the intercept).
                RequireCpl0();
                TdVirtualizationException(i);
                if (InKernelApic is not null)
                {
                    // __kvm_emulate_halt: "++vcpu->stat.halt_exits" for every HLT (probed: N HLTs woken by the in-kernel
                    // APIC count N); the KVM_EXIT_HLT below is counted with the exit (Vcpu/VcpuStatCounting.cs). The HLT
                    // was a VM exit too, handled in the kernel: vcpu_enter_guest "++vcpu->stat.exits" (observed on this
                    // host: 2 in-kernel HLTs count exits 2; HaltPollingRules.every_hlt_counts_a_halt_exit).
                    if (Stats is { } haltStats)
                    {
                        haltStats.Increment(haltStats.Table.Slots.Exits);
                        haltStats.Increment(haltStats.Table.Slots.HaltExits);
                    }
                    _cpu.State.MpState = Abi.KvmMpState.KVM_MP_STATE_HALTED;
                    break;
                }
                _run.ExitReason = (uint)Abi.KvmExitReason.KVM_EXIT_HLT;
                _exit = StepOutcome.ExitToUser;
                break;
            case Mnemonic.Cli:
                RequireIoplForInterruptFlag(); // X86Emulator.Privilege.cs
                f &= ~RFLAGS_IF;
                break;
            case Mnemonic.Sti:
                // emulate.c em_sti: "ctxt->interruptibility = KVM_X86_SHADOW_INT_STI" whatever IF was before — this host
                // runs every instruction through KVM's emulator, so an STI with IF already set blocks interrupts over
                // the next instruction too (probed on Linux 6.18 kvm_pvm: sti; mov ax,[mmio] exits with shadow 2 and
                // ready_for_interrupt_injection 0 for IF 0 and 1; found by the differential fuzzer's interrupt guests).
                // The Intel SDM's STI opens the shadow only when IF was clear. sti; sti opens no second shadow:
                // x86.c toggle_interruptibility (ToggledShadow).
                RequireIoplForInterruptFlag(); // X86Emulator.Privilege.cs
                _shadowAfter = ToggledShadow(Abi.KvmVcpuEvents.KVM_X86_SHADOW_INT_STI);
                f |= RFLAGS_IF;
                break;
            case Mnemonic.Cld:
                f &= ~RFLAGS_DF;
                break;
            case Mnemonic.Std:
                f |= RFLAGS_DF;
                break;
            case Mnemonic.Clc:
                f &= ~RFLAGS_CF;
                break;
            case Mnemonic.Stc:
                f |= RFLAGS_CF;
                break;
            case Mnemonic.Cmc:
                f ^= RFLAGS_CF;
                break;
            case Mnemonic.Cpuid:
            {
                // arch/x86/kvm/cpuid.c kvm_emulate_cpuid → kvm_cpuid(EAX, ECX) over the KVM_SET_CPUID2 table; without
                // one every leaf reads as zero (observed on this host). kvm_emulate_cpuid writes the whole registers
                // (kvm_rax_write …): the upper halves clear in every mode (CpuidTests compares with the host).
                // "if (cpuid_fault_enabled(vcpu) && !kvm_require_cpl(vcpu, 0)) return 1;" — #GP(0) outside ring 0.
                SevEsCommunicationException(i); // SEV-ES/SNP: #VC (X86Emulator.SevEs.cs)
                if (TdCpuid(i)) break; // TD: the TDX module's answer or #VE (X86Emulator.TdxCpuidMsr.cs)
                if (_cpu.Msrs.CpuidFaultEnabled && _cpu.Cpl > 0) throw new GuestFault(GP_VECTOR, 0);
                var (eax, ebx, ecx, edx) = _cpu.Cpuid.Emulate((uint)_cpu.Gpr[X86Cpu.RAX], (uint)_cpu.Gpr[X86Cpu.RCX], _cpu);
                WriteReg(Register.EAX, eax);
                WriteReg(Register.EBX, ebx);
                WriteReg(Register.ECX, ecx);
                WriteReg(Register.EDX, edx);
                break;
            }
            case Mnemonic.Rdtsc:
            {
                // The guest TSC: host TSC + l1_tsc_offset, as RDMSR IA32_TSC reads it (was the host's alone).
                RequireTscReadable(); // CR4.TSD (X86Emulator.Privilege.cs)
                ulong tsc = _cpu.Msrs.ReadTsc();
                WriteReg(Register.EAX, tsc & 0xffff_ffff);
                WriteReg(Register.EDX, tsc >> 32);
                break;
            }
            case Mnemonic.Rdtscp:
            case Mnemonic.Rdpid:
                TscAuxInstruction(i); // X86Emulator.Tsc.cs
                break;
            case Mnemonic.Ud2:
                throw InvalidOpcodeStop(); // real mode: an emulation failure (X86Emulator.RealModeEvents.cs)
            // Software interrupts: delivered with RIP past the instruction, no EXT bit (SDM Vol. 2A INT n/INT3).
            case Mnemonic.Int3:
                if (SoftwareBreakpointExit()) { next = _cpu.Rip; f = _cpu.Rflags; break; } // KVM_GUESTDBG_USE_SW_BP
                throw new GuestFault(BP_VECTOR, software: true);
            case Mnemonic.Int:
                throw new GuestFault(i.Immediate8, software: true);
            case Mnemonic.Iret:
            case Mnemonic.Iretd:
            case Mnemonic.Iretq:
                next = InterruptReturn(i, ref f);
                break;
            case Mnemonic.Lgdt:
            case Mnemonic.Lidt:
            case Mnemonic.Sgdt:
            case Mnemonic.Sidt:
                DescriptorTableRegister(i);
                break;
            case Mnemonic.Rdmsr:
            case Mnemonic.Wrmsr:
                if (SevEsModelSpecificRegister(i)) break; // SEV-ES/SNP: the GHCB MSR, else #VC (X86Emulator.SevEs.cs)
                if (TdModelSpecificRegister(i)) break; // TD: the TDX module's MSR virtualization or #VE (X86Emulator.TdxCpuidMsr.cs)
                // An access that went to userspace (KVM_EXIT_X86_RDMSR/WRMSR) leaves RIP on it (X86Emulator.UserSpaceMsr.cs).
                if (ModelSpecificRegisterAccess(i)) next = _cpu.Rip;
                break;
            default:
                if (TryExecuteExtended(i, ref f)) break; // SSE, AVX, XGETBV/XSETBV (X86Emulator.Sse.cs and siblings)
                if (TrySseFloat(i, ref f) || TrySseInteger(i)) break; // SSE/SSE2 FP, packed integer (X86Emulator.SseFloat.cs, SseInteger.cs)
                if (TrySseV2(i, ref f)) break; // SSE3, SSSE3, SSE4.1, SSE4.2 PCMPGTQ/CRC32 (X86Emulator.Sse41.cs and siblings)
                if (TryBmi(i, ref f) || TryVexV3(i, ref f)) break; // x86-64-v3: BMI1/BMI2, VEX SSE/AVX2, FMA (X86Emulator.Bmi.cs, Vex.cs, Fma.cs)
                if (TryTaskRegister(i) || TryBitTest(i, ref f)) break; // LTR/STR, BT/BTS/BTR/BTC (their own files)
                if (TryInterruptOnOverflow(i) || TryLdt(i)) break; // INTO (X86Emulator.RealModeEvents.cs), LLDT/SLDT (X86Emulator.Ldt.cs)
                if (TryPvalidate(i, ref f)) break; // SEV-SNP PVALIDATE (X86Emulator.Pvalidate.cs)
                if (TryRmpadjust(i)) break; // SEV-SNP RMPADJUST (X86Emulator.Rmpadjust.cs)
                if (TrySystemCall(i, ref f, ref next)) break; // SYSCALL/SYSRET, SWAPGS, RD/WR FS/GS BASE (X86Emulator.SystemCall.cs)
                if (TrySysEnter(i, ref f, ref next)) break; // SYSENTER/SYSEXIT (X86Emulator.SysEnter.cs)
                if (TryPrivilegedOutsideSubset(i)) break; // CLTS, INVD, LMSW … at CPL > 0: #GP(0) (X86Emulator.Privilege.cs)
                if (TryFxsave(i)) break; // FXSAVE/FXRSTOR (X86Emulator.Fxsave.cs)
                if (TryX87Control(i)) break; // FNINIT, FLDCW, FNSTCW, FNSTSW, FNCLEX, FWAIT (X86Emulator.X87Control.cs)
                if (TryX87Arithmetic(i, ref f)) break; // x87 loads, stores, arithmetic, compares (X86Emulator.X87Load.cs and siblings)
                if (TryCacheControl(i)) break; // INVD, WBINVD, WBNOINVD at CPL 0: skipped as KVM does (X86Emulator.CacheControl.cs)
                if (TryCacheLineFlush(i)) break; // CLFLUSH, CLFLUSHOPT, CLWB: a byte load's faults only (X86Emulator.CacheControl.cs)
                if (TryIntegerExtras(i, ref f)) break; // XADD, CMPXCHG*, BSF/BSR/TZCNT/LZCNT/POPCNT, BSWAP, SHLD/SHRD, RCL/RCR … (X86Emulator.IntegerExtras.cs)
                throw new EmulationFailure($"{i.Mnemonic} is outside the emulated subset", haveInstructionBytes: true);
        }
        _cpu.Rflags = f;
        _cpu.Rip = next;
    }
}
