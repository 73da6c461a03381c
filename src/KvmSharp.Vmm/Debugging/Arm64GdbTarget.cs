// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Vmm.Arch.Arm64;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// An arm64 vCPU for <see cref="GdbStub"/>. gdb's aarch64 numbers (gdb/features/aarch64-core.xml; aarch64-tdep.h
/// AARCH64_X0_REGNUM …): 0–30 x0–x30, 31 sp, 32 pc (8 bytes each), 33 cpsr (4) — the <c>g</c> packet, 268 bytes —,
/// read and written one KVM_GET/SET_ONE_REG each; sp is the stack pointer in use (SP_EL1 at EL1h, else SP_EL0: Arm ARM
/// PSTATE.SP). Steps are the arm64 KVM_GUESTDBG_SINGLESTEP (software step exits, EC 0x32), breakpoints the host's
/// DBGBVR/DBGBCR pairs with KVM_GUESTDBG_USE_HW (EC 0x30 exits). With any host debugging on a guest BRK exits
/// (MDCR_EL2.TDE: debug.c kvm_arm_setup_mdcr_el2): it is given back to the guest (<see cref="Arm64GuestDebug.ReflectBrk"/>).
/// </summary>
internal sealed class Arm64GdbTarget(Vcpu vcpu) : GdbTarget
{
    private const int Sp = 31, PcNumber = 32, Cpsr = 33;

    public override string TargetXml =>
        "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target><architecture>aarch64</architecture></target>";

    public override int PcRegister => PcNumber;

    public override int Count => 34;

    public override ulong Pc
    {
        get => vcpu.GetPc();
        set => vcpu.SetPc(value);
    }

    public override int Size(int n) => n switch
    {
        >= 0 and <= PcNumber => 8,
        Cpsr => 4,
        _ => 0,
    };

    public override int Offset(int n) => n * 8;

    // v0–v31 (16 bytes), fpsr and fpcr (4): gdb/features/aarch64-fpu.xml.
    public override int UnavailableSize(int n) => n switch
    {
        >= 34 and <= 65 => 16,
        66 or 67 => 4,
        _ => 0,
    };

    /// <summary>The one-reg id of register <paramref name="n"/> (0–32), with the SP in use.</summary>
    private ulong Id(int n) => n switch
    {
        < Sp => KvmArm64Regs.X(n),
        Sp => UsesSpEl1(vcpu.GetPstate()) ? KvmArm64Regs.SpEl1 : KvmArm64Regs.Sp,
        _ => KvmArm64Regs.Pc,
    };

    /// <summary>PSTATE.SP = 1 at EL1 (M[3:2] = 1): EL1h, whose stack pointer is SP_EL1 (Arm ARM D1.2 "Stack pointer").</summary>
    private static bool UsesSpEl1(ulong pstate) => (pstate & 1) != 0 && ((pstate >> 2) & 3) == 1;

    public override byte[] ReadAll()
    {
        var bytes = new byte[33 * 8 + 4];
        for (int n = 0; n <= PcNumber; n++) BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(n * 8), vcpu.GetOneReg(Id(n)));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(33 * 8), (uint)vcpu.GetPstate());
        return bytes;
    }

    public override bool WriteAll(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < 33 * 8 + 4) return false;
        for (int n = 0; n <= Cpsr; n++) Write(n, packet.Slice(Offset(n), Size(n)));
        return true;
    }

    public override bool Write(int n, ReadOnlySpan<byte> value)
    {
        int size = Size(n);
        if (size == 0 || value.Length != size) return false;
        if (n == Cpsr)
        {
            // PSTATE as SPSR lays it out; bits 63:32 are RES0 (Arm ARM C5.2.18).
            vcpu.SetOneReg(KvmArm64Regs.Pstate, BinaryPrimitives.ReadUInt32LittleEndian(value));
            return true;
        }
        vcpu.SetOneReg(Id(n), BinaryPrimitives.ReadUInt64LittleEndian(value));
        return true;
    }

    public override void Step() => Arm64GuestDebug.EnableSingleStep(vcpu);

    public override void Arm(IReadOnlyList<ulong> breakpoints)
    {
        if (breakpoints.Count == 0)
        {
            Disable();
            return;
        }
        vcpu.SetGuestDebug(new Arm64GuestDebugOptions
        {
            Flags = GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints,
            Breakpoints = [.. breakpoints.Select(Arm64DebugRegisterPair.ExecuteBreakpoint)],
        });
    }

    public override void Disable() => Arm64GuestDebug.Disable(vcpu);

    public override bool IsStepExit(VcpuExit exit) => Arm64GuestDebug.IsSingleStep(exit);

    public override bool ReflectGuestBreakpoint(VcpuExit exit)
    {
        if (!Arm64GuestDebug.IsGuestBrk(exit)) return false;
        Arm64GuestDebug.ReflectBrk(vcpu, exit);
        return true;
    }
}
