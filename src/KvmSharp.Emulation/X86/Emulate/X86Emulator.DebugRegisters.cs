// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// MOV to/from DR0–DR7 and the instruction breakpoints DR0–DR3/DR7 arm, as this host's KVM runs them: through KVM's
/// instruction emulator (arch/x86/kvm/emulate.c em_dr_read/em_dr_write with check_dr_read/check_dr_write, over
/// x86.c kvm_get_dr/kvm_set_dr) and x86.c kvm_vcpu_check_code_breakpoint. Every rule below was observed on this host
/// (Linux 6.18 kvm_pvm, AMD). Data (read/write) breakpoints: this host does not raise them (a write to a DR0 address
/// armed with RW=01 ran on without #DB), VMX/SVM hardware does — EmulatorConfig.X86DataBreakpoints, on in the upstream
/// presets (X86Emulator.GuestDebug.cs NoteDataAccess / DataBreakpointTrap). Not modelled: I/O breakpoints, single-step
/// (RFLAGS.TF) traps of the guest's own and DR6.BS. The host's KVM_SET_GUEST_DEBUG breakpoints and single-step are
/// X86Emulator.GuestDebug.cs (checked before these).
/// </summary>
internal sealed partial class X86Emulator
{
    private const int DB_VECTOR = 1;
    private const ulong CR4_DE = 1UL << 3;

    /// <summary>kvm_host.h DR6_ACTIVE_LOW, DR6_VOLATILE, DR6_FIXED_1, DR6_BD, DR6_RTM, DR6_BUS_LOCK.</summary>
    private const ulong Dr6ActiveLow = 0xffff0ff0, Dr6Volatile = 0x0001e80f, Dr6Fixed1 = 0xfffe0ff0, Dr6Bd = 1UL << 13,
        Dr6Rtm = 1UL << 16, Dr6BusLock = 1UL << 11, DrTrapBits = 0xf;

    /// <summary>kvm_host.h DR7_VOLATILE, DR7_FIXED_1, DR7_GD, DR7_BP_EN_MASK.</summary>
    private const ulong Dr7Volatile = 0xffff2bff, Dr7Fixed1 = 0x400, Dr7Gd = 1UL << 13, Dr7BpEnable = 0xff;

    private static bool IsDebugRegisterMove(in Instruction i) =>
        i.Code is Code.Mov_r64_dr or Code.Mov_dr_r64 or Code.Mov_r32_dr or Code.Mov_dr_r32;

    /// <summary>
    /// MOV DRn: x86_emulate_insn's Priv check first (CPL ≠ 0 → #GP(0)); check_dr_write: a write of bits 63:32 to DR6 or
    /// DR7 → #GP(0); check_dr_read: DR8+ → #UD, DR4/DR5 with CR4.DE → #UD, DR7.GD → #DB with DR6.BD (GD cleared as the
    /// #DB is injected, kvm_check_and_inject_events). Then kvm_get_dr/kvm_set_dr, DR4/DR5 aliasing DR6/DR7. em_dr_write
    /// turns only a negative set_dr result into #GP, so a DR4/DR5 write with bits 63:32 set (kvm_set_dr returns 1) is
    /// dropped without a fault — observed here (SVM's dr_interception would #GP: kvm_complete_insn_gp).
    /// Outside 64-bit mode the operands are 32 bits.
    /// </summary>
    private void MoveDebugRegister(in Instruction i)
    {
        RequireCpl0();
        bool toDr = i.Code is Code.Mov_dr_r64 or Code.Mov_dr_r32;
        Register drReg = toDr ? i.Op0Register : i.GetOpRegister(1);
        int dr = drReg - Register.DR0;
        ulong value = toDr ? ReadReg(i.GetOpRegister(1)) : 0;
        if (toDr && dr is 6 or 7 && (value >> 32) != 0) throw new GuestFault(GP_VECTOR);
        if (dr > 7) throw new GuestFault(UD_VECTOR);
        if ((_cpu.Sregs.cr4 & CR4_DE) != 0 && dr is 4 or 5) throw new GuestFault(UD_VECTOR);
        var s = Vec;
        if ((s.Dr7 & Dr7Gd) != 0)
        {
            s.Dr6 = (s.Dr6 & ~DrTrapBits) | Dr6Bd | Dr6ActiveLow;
            RaiseDebugException();
        }
        if (!toDr)
        {
            WriteReg(i.Op0Register, dr switch { < 4 => s.Db[dr], 4 or 6 => s.Dr6, _ => s.Dr7 });
            return;
        }
        switch (dr)
        {
            case < 4:
                s.Db[dr] = value;
                break;
            case 4 or 6:
                if ((value >> 32) != 0) break; // kvm_dr6_valid failed: dropped (DR4 only; DR6 faulted above)
                s.Dr6 = (value & Dr6Volatile) | Dr6Fixed();
                break;
            default:
                if ((value >> 32) != 0) break; // kvm_dr7_valid failed: dropped (DR5 only)
                s.Dr7 = (value & Dr7Volatile) | Dr7Fixed1;
                break;
        }
    }

    /// <summary>x86.c kvm_dr6_fixed: DR6_FIXED_1, plus RTM and BUS_LOCK (active low) when the guest CPUID lacks them.</summary>
    private ulong Dr6Fixed() =>
        Dr6Fixed1 | (GuestFeatures.Rtm(_cpu) ? 0 : Dr6Rtm) | (GuestFeatures.BusLockDetect(_cpu) ? 0 : Dr6BusLock);

    /// <summary>
    /// x86.c kvm_vcpu_check_code_breakpoint, before each instruction: with RFLAGS.RF clear and an enabled DR0–DR3 whose
    /// RW and LEN are both 0 at the linear RIP (kvm_vcpu_check_hw_bp(eip, 0, …)), #DB with the matching B bits as
    /// payload (kvm_deliver_exception_payload: DR6 = (DR6 &amp; ~B0-3) | DR6_ACTIVE_LOW | payload, bit 12 clear).
    /// exception_type(DB_VECTOR) is a trap for KVM, so the pushed RFLAGS has RF clear (observed here: frame RFLAGS 0x2,
    /// RIP on the breakpointed instruction; a CPU would push RF = 1).
    /// </summary>
    private void CheckCodeBreakpoint()
    {
        var s = Vec;
        if ((s.Dr7 & Dr7BpEnable) == 0 || (_cpu.Rflags & RFLAGS_RF) != 0) return;
        ulong rip = _cpu.Bitness == 64 ? _cpu.Rip : (uint)(_cpu.Sregs.cs.@base + (_cpu.Bitness == 32 ? (uint)_cpu.Rip : (ushort)_cpu.Rip));
        ulong hit = 0;
        for (int n = 0; n < 4; n++)
        {
            bool enabled = ((s.Dr7 >> (2 * n)) & 3) != 0;
            bool execute = ((s.Dr7 >> (16 + 4 * n)) & 0xf) == 0;
            if (enabled && execute && s.Db[n] == rip) hit |= 1UL << n;
        }
        if (hit == 0) return;
        _fetchedLength = 0;
        s.Dr6 = ((s.Dr6 & ~DrTrapBits) | Dr6ActiveLow | hit) & ~(1UL << 12);
        RaiseDebugException();
    }

    /// <summary>Raise #DB; kvm_check_and_inject_events clears DR7.GD when it injects one.</summary>
    private void RaiseDebugException()
    {
        Vec.Dr7 &= ~Dr7Gd;
        throw new GuestFault(DB_VECTOR);
    }
}
