// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// MOV to CR4 in a TD with TD_CTLS.REDUCE_VE (X86/Emulate/X86Emulator.TdxCpuidMsr.cs TdRefusesCr4Mce): intel/tdx-module
/// src/common/helpers/helpers.c write_guest_cr4 — while CPUID_FLAGS says MCE is not supported (REDUCE_VE without
/// FEATURE_PARAVIRT_CTLS.MCA), a 0→1 write of the virtual CR4.MCE is #GP(0); clearing it, and a write with it
/// already 1, are taken. Each MOV reports its outcome (0, or 13 &lt;&lt; 32 | the #GP error code), then CR4 after it.
/// </summary>
public sealed class TdReduceVeCr4Tests
{
    private const ulong TdCtlsField = 0x1110_0003_0000_0017, FeatureParavirtCtls = 0x9110_0003_0000_0022;
    private const ulong ReduceVe = 8, PvMca = 1UL << 3, Cr4Mce = 1UL << 6, Marker = 0x600d, Gp = 13UL << 32;

    private static EmulatedKernel NewKernel() => new(EmulatorConfig.X86_64());

    /// <summary>A TD running <paramref name="body"/>; its #GP handler sets R15 = 13 &lt;&lt; 32 | error code and skips MOV CR4, RAX (3 bytes).</summary>
    private static TdGuest Td(Kvm kvm, Action<Assembler> body) => TdGuest.Create(kvm, a =>
    {
        Label gp = a.CreateLabel();
        TdGuest.InstallHandler(a, 13, gp);
        body(a);
        a.mov(r15, Marker);
        TdGuest.Report(a, r15);
        TdTestCode.SpinForever(a);

        a.Label(ref gp);
        a.pop(r14); // error code
        a.mov(r15, Gp);
        a.or(r15, r14);
        a.add(__qword_ptr[rsp], 3);
        a.iretq();
    });

    /// <summary>TDG.VM.WR of <paramref name="field"/> (all bits of <paramref name="value"/>); reports the status.</summary>
    private static void VmWr(Assembler a, ulong field, ulong value)
    {
        a.xor(ecx, ecx);
        a.mov(rdx, field);
        a.mov(r8, value);
        a.mov(r9, value);
        a.mov(eax, 8); // TDG.VM.WR
        a.tdcall();
        TdGuest.Report(a, rax);
    }

    /// <summary>CR4 with MCE set or cleared, through MOV CR4, RAX; reports the outcome and CR4 after it.</summary>
    private static void WriteMce(Assembler a, bool set)
    {
        a.xor(r15d, r15d);
        a.mov(rax, cr4);
        if (set) a.or(rax, (int)Cr4Mce);
        else a.and(rax, ~(int)Cr4Mce);
        a.mov(cr4, rax);
        TdGuest.Report(a, r15);
        a.mov(rax, cr4);
        TdGuest.Report(a, rax);
    }

    private static void AssertWrite(TdGuest td, ulong outcome, bool mceAfter)
    {
        Assert.Equal(outcome, td.RunToReport());
        Assert.Equal(mceAfter, (td.RunToReport() & Cr4Mce) != 0);
    }

    [Fact]
    public void With_reduce_ve_and_mce_virtualized_as_unsupported_setting_cr4_mce_is_a_gp_0()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            WriteMce(a, set: true);   // before REDUCE_VE: taken
            VmWr(a, TdCtlsField, ReduceVe);
            WriteMce(a, set: true);   // MCE already 1: "OK (for backward compatibility)"
            WriteMce(a, set: false);  // clearing the virtual CR4.MCE: taken
            WriteMce(a, set: true);   // 0 → 1: #GP(0), CR4 unchanged
        });
        AssertWrite(td, 0, mceAfter: true);
        Assert.Equal(0UL, td.RunToReport()); // TDG.VM.WR: TDX_SUCCESS
        AssertWrite(td, 0, mceAfter: true);
        AssertWrite(td, 0, mceAfter: false);
        AssertWrite(td, Gp, mceAfter: false);
        Assert.Equal(Marker, td.RunToReport());
    }

    [Fact]
    public void With_reduce_ve_and_feature_paravirt_ctls_mca_cr4_mce_can_be_set_again()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = Td(kvm, a =>
        {
            VmWr(a, TdCtlsField, ReduceVe);
            VmWr(a, FeatureParavirtCtls, PvMca); // the configured CPUID(1).EDX.MCE is 1: MCE stays supported
            WriteMce(a, set: false);
            WriteMce(a, set: true);
        });
        Assert.Equal(0UL, td.RunToReport());
        Assert.Equal(0UL, td.RunToReport());
        AssertWrite(td, 0, mceAfter: false);
        AssertWrite(td, 0, mceAfter: true);
        Assert.Equal(Marker, td.RunToReport());
    }
}
