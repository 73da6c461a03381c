// SPDX-License-Identifier: MIT
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SYSCALL/SYSRET in IA-32e mode (Intel SDM Vol. 2B SYSCALL, SYSRET; AMD APM Vol. 3 SYSCALL, SYSRET; the flat
/// segments are arch/x86/kvm/emulate.c setup_syscalls_segments, the MSRs em_syscall's), SWAPGS (SDM Vol. 2B SWAPGS)
/// and RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE (SDM Vol. 2B). KVM runs them natively; the rules here are the CPU's, with
/// the vendor of the CPU the emulator models (<see cref="X86CpuModel.IsAmd"/>) where Intel and AMD differ. SYSCALL and
/// SYSRET outside long mode (AMD's legacy-mode forms) are outside the subset.
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>The RFLAGS bits SYSRET takes from R11 (SDM Vol. 2B SYSRET: "RFLAGS ← (R11 AND 3C7FD7H) OR 2").</summary>
    private const ulong SysretFlags = 0x3C_7FD7;

    private const ulong Cr4FsGsBase = 1UL << 16;

    private bool TrySystemCall(in Instruction i, ref ulong f, ref ulong next)
    {
        if (i.Code is Code.Sysretd or Code.Sysretq)
        {
            next = SystemReturn(i, ref f);
            return true;
        }
        switch (i.Mnemonic)
        {
            case Mnemonic.Syscall: next = SystemCall(next, ref f); return true;
            case Mnemonic.Swapgs: SwapGs(); return true;
            case Mnemonic.Rdfsbase or Mnemonic.Rdgsbase or Mnemonic.Wrfsbase or Mnemonic.Wrgsbase: SegmentBase(i); return true;
            default: return false;
        }
    }

    /// <summary>
    /// SYSCALL: EFER.SCE clear → #UD (both vendors); Intel: only in 64-bit mode, else #UD; AMD: compatibility mode goes
    /// to CSTAR. RCX = the next RIP, R11 = RFLAGS (RF clear), CS = STAR[47:32] &amp; 0xFFFC and SS = STAR[47:32] + 8 as
    /// flat ring-0 segments, RFLAGS &amp;= ~SFMASK (RF clear), RIP = LSTAR (CSTAR from compatibility mode).
    /// </summary>
    private ulong SystemCall(ulong next, ref ulong f)
    {
        if ((_cpu.Sregs.efer & EFER_SCE) == 0) throw new GuestFault(UD_VECTOR);
        bool amd = _kvm.Kernel.Config.X86Cpu.IsAmd;
        if (!_cpu.LongModeActive)
        {
            if (!amd) throw new GuestFault(UD_VECTOR);
            throw new EmulationFailure("SYSCALL in legacy mode", haveInstructionBytes: true);
        }
        bool compat = _cpu.Bitness != 64;
        if (compat && !amd) throw new GuestFault(UD_VECTOR);
        var m = _cpu.Msrs;
        ushort selector = (ushort)(m.Star >> 32);
        _cpu.Gpr[X86Cpu.RCX] = next;
        _cpu.Gpr[11] = f; // R11
        _cpu.Sregs.cs = FlatSegment((ushort)(selector & 0xfffc), code: true, dpl: 0, longCode: true);
        _cpu.Sregs.ss = FlatSegment((ushort)(selector + 8), code: false, dpl: 0, longCode: false);
        f = (f & ~m.SyscallMask & ~RFLAGS_RF) | RFLAGS_FIXED;
        return compat ? m.Cstar : m.Lstar;
    }

    /// <summary>
    /// SYSRET: EFER.SCE clear → #UD; Intel: only in 64-bit mode, else #UD; CPL ≠ 0 → #GP(0). SYSRETQ: RIP = RCX, CS =
    /// STAR[63:48] + 16 | 3 (64-bit); SYSRETD: RIP = ECX, CS = STAR[63:48] | 3 (32-bit). SS = STAR[63:48] + 8 | 3,
    /// RFLAGS = R11 &amp; 0x3C7FD7 | 2. A non-canonical RCX is #GP(0) at CPL 0 on Intel; AMD returns and the fetch at
    /// CPL 3 faults (the reason for Linux's "SYSRET with a non-canonical RCX" checks in arch/x86/entry/common.c).
    /// AMD also leaves SS's hidden attributes as they were, only the selector and the CPL change (Linux's
    /// X86_BUG_SYSRET_SS_ATTRS, arch/x86/kernel/cpu/amd.c).
    /// </summary>
    private ulong SystemReturn(in Instruction i, ref ulong f)
    {
        if ((_cpu.Sregs.efer & EFER_SCE) == 0) throw new GuestFault(UD_VECTOR);
        bool amd = _kvm.Kernel.Config.X86Cpu.IsAmd;
        if (!_cpu.LongModeActive)
        {
            if (!amd) throw new GuestFault(UD_VECTOR);
            throw new EmulationFailure("SYSRET in legacy mode", haveInstructionBytes: true);
        }
        if (_cpu.Bitness != 64 && !amd) throw new GuestFault(UD_VECTOR);
        if (_cpu.Cpl != 0) throw new GuestFault(GP_VECTOR);
        bool to64 = i.Code == Code.Sysretq;
        ulong rip = to64 ? _cpu.Gpr[X86Cpu.RCX] : (uint)_cpu.Gpr[X86Cpu.RCX];
        // Intel SDM Vol. 2B SYSRET: a non-canonical RCX is #GP(0) here, at CPL 0. AMD APM Vol. 3 SYSRET: RIP is loaded
        // as it is and the fetch at CPL 3 raises #GP(0) (X86Emulator.cs Fetch) — what this AMD host does
        // (RingTransitionFaults.ring_fault_sysret_with_a_non_canonical_rcx_faults_by_vendor).
        if (to64 && !amd && !IsCanonical(rip)) throw new GuestFault(GP_VECTOR);
        ushort @base = (ushort)(_cpu.Msrs.Star >> 48);
        _cpu.Sregs.cs = FlatSegment((ushort)((to64 ? @base + 16 : @base) | 3), code: true, dpl: 3, longCode: to64);
        ushort ssSelector = (ushort)((@base + 8) | 3);
        if (amd)
        {
            _cpu.Sregs.ss.selector = ssSelector;
            _cpu.Sregs.ss.dpl = 3;
        }
        else
        {
            _cpu.Sregs.ss = FlatSegment(ssSelector, code: false, dpl: 3, longCode: false);
        }
        f = (_cpu.Gpr[11] & SysretFlags) | RFLAGS_FIXED;
        return rip;
    }

    /// <summary>
    /// The flat segment SYSCALL/SYSRET load (emulate.c setup_syscalls_segments: base 0, limit 4 GiB with G, S = 1,
    /// present; code type 0xB with L for 64-bit code and D for 32-bit code, stack type 3 with B).
    /// </summary>
    private static Abi.kvm_segment FlatSegment(ushort selector, bool code, byte dpl, bool longCode) => new()
    {
        selector = selector,
        @base = 0,
        limit = 0xffff_ffff,
        type = (byte)(code ? 0xb : 0x3),
        s = 1,
        dpl = dpl,
        present = 1,
        l = (byte)(code && longCode ? 1 : 0),
        db = (byte)(code && longCode ? 0 : 1),
        g = 1,
    };

    /// <summary>SWAPGS: #UD outside 64-bit mode, #GP(0) at CPL ≠ 0; exchanges GS.base and IA32_KERNEL_GS_BASE.</summary>
    private void SwapGs()
    {
        if (_cpu.Bitness != 64) throw new GuestFault(UD_VECTOR);
        if (_cpu.Cpl != 0) throw new GuestFault(GP_VECTOR);
        // Registers are restored when an instruction stops; the MSR is not, so it is written last (nothing can fail after).
        ulong kernel = _cpu.Msrs.KernelGsBase;
        _cpu.Msrs.KernelGsBase = _cpu.Sregs.gs.@base;
        _cpu.Sregs.gs.@base = kernel;
    }

    /// <summary>
    /// RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE: #UD outside 64-bit mode or with CR4.FSGSBASE clear (CPUID is not consulted:
    /// the CPU has the instructions); a 32-bit operand reads the low half zero-extended and writes it zero-extended;
    /// a non-canonical 64-bit write is #GP(0).
    /// </summary>
    private void SegmentBase(in Instruction i)
    {
        if (_cpu.Bitness != 64 || (_cpu.Sregs.cr4 & Cr4FsGsBase) == 0) throw new GuestFault(UD_VECTOR);
        bool fs = i.Mnemonic is Mnemonic.Rdfsbase or Mnemonic.Wrfsbase;
        ref var seg = ref fs ? ref _cpu.Sregs.fs : ref _cpu.Sregs.gs;
        var reg = i.Op0Register;
        bool wide = reg.GetSize() == 8;
        if (i.Mnemonic is Mnemonic.Rdfsbase or Mnemonic.Rdgsbase)
        {
            WriteReg(reg, wide ? seg.@base : seg.@base & 0xffff_ffff);
            return;
        }
        ulong value = ReadReg(reg);
        if (!wide) value &= 0xffff_ffff;
        if (!IsCanonical(value)) throw new GuestFault(GP_VECTOR);
        seg.@base = value;
    }
}
