// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Arm64;

/// <summary>
/// An arm64 KVM_EXIT_DEBUG (<see cref="VcpuExit.Arm64Debug"/>): kvm_run.debug.arch (struct kvm_debug_exit_arch
/// { __u32 hsr; __u32 hsr_high; __u64 far; }) and kvm_run.flags, as arch/arm64/kvm/handle_exit.c
/// kvm_handle_guest_debug fills them: hsr/hsr_high are ESR_EL2's low/high halves (hsr_high valid with
/// KVM_DEBUG_ARCH_HSR_HIGH_VALID), far is FAR_EL2 for a watchpoint only. The exit carries no PC: read it with
/// <see cref="Arm64Vcpu.GetPc"/>.
/// </summary>
public readonly record struct Arm64DebugExit
{
    /// <summary>asm/esr.h ESR_ELx_EC_BREAKPT_LOW: a hardware breakpoint (host KVM_GUESTDBG_USE_HW).</summary>
    public const uint BreakpointClass = 0x30;

    /// <summary>asm/esr.h ESR_ELx_EC_SOFTSTP_LOW: a software step (KVM_GUESTDBG_SINGLESTEP).</summary>
    public const uint SoftwareStepClass = 0x32;

    /// <summary>asm/esr.h ESR_ELx_EC_WATCHPT_LOW: a watchpoint (host KVM_GUESTDBG_USE_HW); <see cref="Far"/> holds the address.</summary>
    public const uint WatchpointClass = 0x34;

    /// <summary>asm/esr.h ESR_ELx_EC_BRK64: a guest BRK (KVM_GUESTDBG_USE_SW_BP).</summary>
    public const uint Brk64Class = 0x3C;

    internal Arm64DebugExit(uint hsr, uint hsrHigh, ulong far, ushort flags)
    {
        Hsr = hsr;
        HsrHigh = hsrHigh;
        Far = far;
        Flags = flags;
    }

    /// <summary>debug.arch.hsr: ESR_EL2 bits 31:0 (EC, IL, ISS).</summary>
    public uint Hsr { get; }

    /// <summary>debug.arch.hsr_high: ESR_EL2 bits 63:32, meaningful when <see cref="HsrHighValid"/>.</summary>
    public uint HsrHigh { get; }

    /// <summary>debug.arch.far: FAR_EL2 (the data address) for a watchpoint; other exits leave the old bytes.</summary>
    public ulong Far { get; }

    /// <summary>kvm_run.flags of the exit.</summary>
    public ushort Flags { get; }

    /// <summary>kvm_run.flags has KVM_DEBUG_ARCH_HSR_HIGH_VALID (Linux 5.19+ sets it on every debug exit).</summary>
    public bool HsrHighValid => (Flags & KvmArm64GuestDebug.KVM_DEBUG_ARCH_HSR_HIGH_VALID) != 0;

    /// <summary>The whole ESR: hsr, with hsr_high above it when <see cref="HsrHighValid"/>.</summary>
    public ulong Esr => HsrHighValid ? ((ulong)HsrHigh << 32) | Hsr : Hsr;

    /// <summary>ESR.EC (hsr bits 31:26): <see cref="SoftwareStepClass"/>, <see cref="BreakpointClass"/>, …</summary>
    public uint ExceptionClass => Hsr >> 26;

    /// <summary>A software step exit (EC 0x32).</summary>
    public bool IsSoftwareStep => ExceptionClass == SoftwareStepClass;

    /// <summary>A hardware breakpoint exit (EC 0x30): the PC is on the instruction, which has not run.</summary>
    public bool IsBreakpoint => ExceptionClass == BreakpointClass;

    /// <summary>A watchpoint exit (EC 0x34): <see cref="Far"/> is the watched address, the access has not happened.</summary>
    public bool IsWatchpoint => ExceptionClass == WatchpointClass;

    /// <summary>A watchpoint exit of a store (ISS WnR, bit 6; Arm ARM "ISS encoding for an exception from a Watchpoint exception").</summary>
    public bool IsWatchpointWrite => IsWatchpoint && (Hsr & (1u << 6)) != 0;

    /// <summary>A guest BRK (EC 0x3C): the PC is on it; with any host debugging on, arm64 KVM hands every BRK to userspace.</summary>
    public bool IsBrk => ExceptionClass == Brk64Class;

    /// <summary>The BRK's immediate (ISS bits 15:0) for <see cref="IsBrk"/>, else 0.</summary>
    public ushort BrkImmediate => IsBrk ? (ushort)Hsr : (ushort)0;

    /// <summary>"EC=0x32 esr=0x… far=0x…".</summary>
    public override string ToString() => $"EC=0x{ExceptionClass:X2} esr=0x{Esr:X} far=0x{Far:X} flags=0x{Flags:X}";
}
