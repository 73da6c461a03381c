// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Vmm.Arch.Arm64;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// An arm64 vCPU for <see cref="GdbStub"/>. gdb's aarch64 numbers (gdb/features/aarch64-core.xml and aarch64-fpu.xml;
/// aarch64-tdep.h AARCH64_X0_REGNUM, AARCH64_V0_REGNUM …): 0–30 x0–x30, 31 sp, 32 pc (8 bytes each), 33 cpsr (4),
/// 34–65 v0–v31 (16 each), 66 fpsr, 67 fpcr (4 each) — the <c>g</c> packet, 788 bytes —, read and written one
/// KVM_GET/SET_ONE_REG each (the core registers of struct kvm_regs, fp_regs.vregs[n] as KVM_REG_SIZE_U128 ids);
/// sp is the stack pointer in use (SP_EL1 at EL1h, else SP_EL0: Arm ARM PSTATE.SP). Steps are the arm64
/// KVM_GUESTDBG_SINGLESTEP (software step exits, EC 0x32), breakpoints the host's DBGBVR/DBGBCR pairs and watchpoints
/// its DBGWVR/DBGWCR pairs with KVM_GUESTDBG_USE_HW (EC 0x30 and 0x34 exits; a watchpoint exit carries the data
/// address in debug.arch.far, handle_exit.c kvm_handle_guest_debug). With any host debugging on a guest BRK exits
/// (MDCR_EL2.TDE: debug.c kvm_arm_setup_mdcr_el2): it is given back to the guest (<see cref="Arm64GuestDebug.ReflectBrk"/>).
/// </summary>
internal sealed class Arm64GdbTarget(Vcpu vcpu) : GdbTarget
{
    private const int Sp = 31, PcNumber = 32, Cpsr = 33, V0 = 34, Fpsr = 66, Fpcr = 67;

    /// <summary>Bytes of the <c>g</c> packet: 33 × 8 + 4 + 32 × 16 + 2 × 4.</summary>
    private const int GPacketSize = 33 * 8 + 4 + 32 * 16 + 2 * 4;

    private int _breakpointRegisters = -1;
    private int _watchpointRegisters = -1;

    /// <summary>The target description: gdb's aarch64 core and fpu features, registers in the order above.</summary>
    public override string TargetXml => Arm64TargetXml;

    private static readonly string Arm64TargetXml = BuildTargetXml();

    private static string BuildTargetXml()
    {
        var xml = new System.Text.StringBuilder(
            "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target><architecture>aarch64</architecture>" +
            "<feature name=\"org.gnu.gdb.aarch64.core\">");
        for (int n = 0; n <= 30; n++) xml.Append("<reg name=\"x").Append(n).Append("\" bitsize=\"64\"/>");
        // cpsr's fields as gdb's own aarch64-core.xml names them (cpsr_flags), so gdb prints e.g. [ SP EL=1 F I A D BTYPE=0 ].
        xml.Append("<reg name=\"sp\" bitsize=\"64\" type=\"data_ptr\"/><reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\"/>" +
            "<flags id=\"cpsr_flags\" size=\"4\"><field name=\"SP\" start=\"0\" end=\"0\"/><field name=\"EL\" start=\"2\" end=\"3\"/>" +
            "<field name=\"nRW\" start=\"4\" end=\"4\"/><field name=\"F\" start=\"6\" end=\"6\"/><field name=\"I\" start=\"7\" end=\"7\"/>" +
            "<field name=\"A\" start=\"8\" end=\"8\"/><field name=\"D\" start=\"9\" end=\"9\"/><field name=\"BTYPE\" start=\"10\" end=\"11\"/>" +
            "<field name=\"SSBS\" start=\"12\" end=\"12\"/><field name=\"IL\" start=\"20\" end=\"20\"/><field name=\"SS\" start=\"21\" end=\"21\"/>" +
            "<field name=\"PAN\" start=\"22\" end=\"22\"/><field name=\"UAO\" start=\"23\" end=\"23\"/><field name=\"DIT\" start=\"24\" end=\"24\"/>" +
            "<field name=\"TCO\" start=\"25\" end=\"25\"/><field name=\"V\" start=\"28\" end=\"28\"/><field name=\"C\" start=\"29\" end=\"29\"/>" +
            "<field name=\"Z\" start=\"30\" end=\"30\"/><field name=\"N\" start=\"31\" end=\"31\"/></flags>" +
            "<reg name=\"cpsr\" bitsize=\"32\" type=\"cpsr_flags\"/></feature><feature name=\"org.gnu.gdb.aarch64.fpu\">" +
            "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/><vector id=\"v2u\" type=\"uint64\" count=\"2\"/>" +
            "<vector id=\"v2i\" type=\"int64\" count=\"2\"/><vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>" +
            "<vector id=\"v4u\" type=\"uint32\" count=\"4\"/><vector id=\"v4i\" type=\"int32\" count=\"4\"/>" +
            "<vector id=\"v8f\" type=\"ieee_half\" count=\"8\"/><vector id=\"v8u\" type=\"uint16\" count=\"8\"/>" +
            "<vector id=\"v8i\" type=\"int16\" count=\"8\"/><vector id=\"v16u\" type=\"uint8\" count=\"16\"/>" +
            "<vector id=\"v16i\" type=\"int8\" count=\"16\"/><vector id=\"v1u\" type=\"uint128\" count=\"1\"/>" +
            "<vector id=\"v1i\" type=\"int128\" count=\"1\"/>" +
            "<union id=\"vnd\"><field name=\"f\" type=\"v2d\"/><field name=\"u\" type=\"v2u\"/><field name=\"s\" type=\"v2i\"/></union>" +
            "<union id=\"vns\"><field name=\"f\" type=\"v4f\"/><field name=\"u\" type=\"v4u\"/><field name=\"s\" type=\"v4i\"/></union>" +
            "<union id=\"vnh\"><field name=\"f\" type=\"v8f\"/><field name=\"u\" type=\"v8u\"/><field name=\"s\" type=\"v8i\"/></union>" +
            "<union id=\"vnb\"><field name=\"u\" type=\"v16u\"/><field name=\"s\" type=\"v16i\"/></union>" +
            "<union id=\"vnq\"><field name=\"u\" type=\"v1u\"/><field name=\"s\" type=\"v1i\"/></union>" +
            "<union id=\"aarch64v\"><field name=\"d\" type=\"vnd\"/><field name=\"s\" type=\"vns\"/><field name=\"h\" type=\"vnh\"/>" +
            "<field name=\"b\" type=\"vnb\"/><field name=\"q\" type=\"vnq\"/></union>");
        for (int n = 0; n < 32; n++)
        {
            xml.Append("<reg name=\"v").Append(n).Append("\" bitsize=\"128\" type=\"aarch64v\"");
            xml.Append(n == 0 ? " regnum=\"34\"/>" : "/>");
        }
        xml.Append("<reg name=\"fpsr\" bitsize=\"32\"/><reg name=\"fpcr\" bitsize=\"32\"/></feature></target>");
        return xml.ToString();
    }

    public override int PcRegister => PcNumber;

    public override int Count => 68;

    public override ulong Pc
    {
        get => vcpu.GetPc();
        set => vcpu.SetPc(value);
    }

    public override int Size(int n) => n switch
    {
        >= 0 and <= PcNumber => 8,
        Cpsr => 4,
        >= V0 and < Fpsr => 16,
        Fpsr or Fpcr => 4,
        _ => 0,
    };

    public override int Offset(int n) => n switch
    {
        <= Cpsr => n * 8,
        < Fpsr => Cpsr * 8 + 4 + (n - V0) * 16,
        _ => Cpsr * 8 + 4 + 32 * 16 + (n - Fpsr) * 4,
    };

    /// <summary>The one-reg id of register <paramref name="n"/> (0–32), with the SP in use.</summary>
    private ulong Id(int n) => n switch
    {
        < Sp => KvmArm64Regs.X(n),
        Sp => UsesSpEl1(vcpu.GetPstate()) ? KvmArm64Regs.SpEl1 : KvmArm64Regs.Sp,
        _ => KvmArm64Regs.Pc,
    };

    /// <summary>
    /// The one-reg id of v0–v31, fpsr or fpcr: KVM_REG_ARM_CORE_REG of fp_regs.vregs[n] (KVM_REG_SIZE_U128),
    /// fp_regs.fpsr / fpcr (KVM_REG_SIZE_U32) — arch/arm64/include/uapi/asm/kvm.h, Documentation/virt/kvm/api.rst 4.68.
    /// </summary>
    private static ulong FloatId(int n) => n switch
    {
        < Fpsr => CoreId(KvmArm64Regs.KVM_REG_SIZE_U128, KvmArm64Regs.OffsetVregs + (n - V0) * 16),
        Fpsr => CoreId(KvmArm64Regs.KVM_REG_SIZE_U32, KvmArm64Regs.OffsetFpsr),
        _ => CoreId(KvmArm64Regs.KVM_REG_SIZE_U32, KvmArm64Regs.OffsetFpcr),
    };

    private static ulong CoreId(ulong size, int offset) =>
        KvmArm64Regs.KVM_REG_ARM64 | size | KvmArm64Regs.KVM_REG_ARM_CORE | KvmArm64Regs.KVM_REG_ARM_CORE_REG(offset);

    /// <summary>PSTATE.SP = 1 at EL1 (M[3:2] = 1): EL1h, whose stack pointer is SP_EL1 (Arm ARM D1.2 "Stack pointer").</summary>
    private static bool UsesSpEl1(ulong pstate) => (pstate & 1) != 0 && ((pstate >> 2) & 3) == 1;

    public override byte[] ReadAll()
    {
        var bytes = new byte[GPacketSize];
        for (int n = 0; n <= PcNumber; n++) BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(n * 8), vcpu.GetOneReg(Id(n)));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(Offset(Cpsr)), (uint)vcpu.GetPstate());
        for (int n = V0; n <= Fpcr; n++) vcpu.GetOneRegBytes(FloatId(n)).CopyTo(bytes.AsSpan(Offset(n), Size(n)));
        return bytes;
    }

    /// <summary>A whole <c>g</c> packet: the core registers, and v0–v31, fpsr and fpcr when it holds them.</summary>
    public override bool WriteAll(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < Offset(V0)) return false;
        int last = packet.Length >= GPacketSize ? Fpcr : Cpsr;
        for (int n = 0; n <= last; n++) Write(n, packet.Slice(Offset(n), Size(n)));
        return true;
    }

    public override bool Write(int n, ReadOnlySpan<byte> value)
    {
        int size = Size(n);
        if (size == 0 || value.Length != size) return false;
        if (n >= V0)
        {
            vcpu.SetOneRegBytes(FloatId(n), value);
            return true;
        }
        if (n == Cpsr)
        {
            // PSTATE as SPSR lays it out; bits 63:32 are RES0 (Arm ARM C5.2.18).
            vcpu.SetOneReg(KvmArm64Regs.Pstate, BinaryPrimitives.ReadUInt32LittleEndian(value));
            return true;
        }
        vcpu.SetOneReg(Id(n), BinaryPrimitives.ReadUInt64LittleEndian(value));
        return true;
    }

    public override void Step(IReadOnlyList<GdbWatchpoint> watchpoints)
    {
        if (watchpoints.Count == 0)
        {
            Arm64GuestDebug.EnableSingleStep(vcpu);
            return;
        }
        // A watched access by the stepped instruction stops it before the access (EC 0x34), as it would under a
        // continue; the step exit comes once it ran.
        vcpu.SetGuestDebug(new Arm64GuestDebugOptions
        {
            Flags = GuestDebugFlags.Enable | GuestDebugFlags.SingleStep | GuestDebugFlags.UseHardwareBreakpoints,
            Watchpoints = WatchpointPairs(watchpoints),
        });
    }

    private static Arm64DebugRegisterPair[] WatchpointPairs(IReadOnlyList<GdbWatchpoint> watchpoints) =>
        [.. watchpoints.SelectMany(w => w.Pieces().Select(p => WatchpointPair(w.Kind, p.Doubleword, p.Bas)))];

    /// <summary>
    /// The host's breakpoint registers: ID_AA64DFR0_EL1.BRPs + 1 (Arm ARM D19.2 ID_AA64DFR0_EL1, bits 15:12) as the
    /// vCPU reads it — the count the host's world switch loads (hyp/include/hyp/debug-sr.h, up to get_num_brps()) —,
    /// at most KVM_ARM_MAX_DBG_REGS.
    /// </summary>
    public override int BreakpointRegisters
    {
        get
        {
            if (_breakpointRegisters < 0)
            {
                int brps = (int)((vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1) >> 12) & 0xF) + 1;
                _breakpointRegisters = Math.Min(brps, Arm64GuestDebugOptions.MaxRegisters);
            }
            return _breakpointRegisters;
        }
    }

    /// <summary>
    /// The host's watchpoint registers: ID_AA64DFR0_EL1.WRPs + 1 (Arm ARM D19.2 ID_AA64DFR0_EL1, bits 23:20) as the
    /// vCPU reads it — the count the host's world switch loads (hyp/include/hyp/debug-sr.h, up to get_num_wrps()) —,
    /// at most KVM_ARM_MAX_DBG_REGS. (KVM_CAP_GUEST_DEBUG_HW_WPS tells the host's own count but is not in the Abi
    /// layer, nor answered by the emulated kernel.)
    /// </summary>
    public override int WatchpointRegisters
    {
        get
        {
            if (_watchpointRegisters < 0)
            {
                int wrps = (int)((vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64DFR0_EL1) >> 20) & 0xF) + 1;
                _watchpointRegisters = Math.Min(wrps, Arm64GuestDebugOptions.MaxRegisters);
            }
            return _watchpointRegisters;
        }
    }

    public override void Arm(IReadOnlyList<ulong> breakpoints, IReadOnlyList<GdbWatchpoint> watchpoints)
    {
        if (breakpoints.Count == 0 && watchpoints.Count == 0)
        {
            Disable();
            return;
        }
        vcpu.SetGuestDebug(new Arm64GuestDebugOptions
        {
            Flags = GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints,
            Breakpoints = [.. breakpoints.Select(Arm64DebugRegisterPair.ExecuteBreakpoint)],
            Watchpoints = WatchpointPairs(watchpoints),
        });
    }

    /// <summary>
    /// DBGWVR/DBGWCR of a watchpoint on the bytes <paramref name="bas"/> of the doubleword at <paramref name="doubleword"/>
    /// (Arm ARM D19.3 DBGWCR&lt;n&gt;_EL1): E (bit 0), PAC = 0b11 (bits 2:1, EL1 and EL0), LSC (bits 4:3: 0b01 loads,
    /// 0b10 stores, 0b11 both), BAS (bits 12:5), HMC, SSC, LBN, WT and MASK 0; DBGWVR the doubleword-aligned address
    /// (as qemu's target/arm/hyp_gdbstub.c insert_hw_watchpoint programs them).
    /// </summary>
    internal static Arm64DebugRegisterPair WatchpointPair(GdbWatchKind kind, ulong doubleword, byte bas)
    {
        ulong lsc = kind switch
        {
            GdbWatchKind.Read => 1,
            GdbWatchKind.Write => 2,
            _ => 3,
        };
        return new Arm64DebugRegisterPair(doubleword, 1UL | (3UL << 1) | (lsc << 3) | ((ulong)bas << 5));
    }

    public override bool IsWatchpointExit(VcpuExit exit, out ulong address, out bool write)
    {
        address = 0;
        write = false;
        if (exit.Reason != Abi.KvmExitReason.KVM_EXIT_DEBUG || !exit.Arm64Debug.IsWatchpoint) return false;
        address = exit.Arm64Debug.Far;
        write = exit.Arm64Debug.IsWatchpointWrite;
        return true;
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
