// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The imm19 branches (Arm ARM C6.2 B.cond, CBZ, CBNZ: offset = SignExtend(imm19:'00')) take exactly their offset,
/// whatever sits in bits 4:0 — Rt of CBZ/CBNZ, cond of B.cond. The interpreter once added bits 4:3 to the target, so a
/// CBZ on w8..w15 or w24..w30 or a B.GE/LT/GT/LE/HI/LS landed 1-3 bytes past it (a PC alignment fault); found by the
/// arm64 micro-VM's hello (its CBZ w10).
/// </summary>
public class Arm64BranchOffsetTests
{
    [Theory]
    [InlineData(10)]
    [InlineData(15)]
    [InlineData(27)]
    public void Cbz_and_cbnz_on_a_register_with_bit_3_set_land_on_the_target(int rt)
    {
        AssertReaches(a =>
        {
            var l1 = a.CreateLabel();
            var l2 = a.CreateLabel();
            a.Movz(X(rt), 0);
            a.Cbz(W(rt), l1);
            a.Udf(1);
            a.Bind(l1);
            a.Movz(X(rt), 1);
            a.Cbnz(X(rt), l2);
            a.Udf(2);
            a.Bind(l2);
        });
    }

    [Theory]
    [InlineData(A64Condition.HI)]
    [InlineData(A64Condition.GE)]
    [InlineData(A64Condition.LE)]
    public void B_cond_with_cond_bit_3_set_lands_on_the_target(A64Condition cond)
    {
        AssertReaches(a =>
        {
            var target = a.CreateLabel();
            // Flags for which the condition holds: 2 - 1 for HI and GE, 1 - 2 for LE.
            if (cond == A64Condition.LE) { a.Movz(X(1), 1); a.CmpImm(X(1), 2); }
            else { a.Movz(X(1), 2); a.CmpImm(X(1), 1); }
            a.B(cond, target);
            a.Udf(3);
            a.Bind(target);
        });
    }

    /// <summary>Runs <paramref name="branches"/>, then a ucall: the guest must reach the ucall (an MMIO exit), not fault.</summary>
    private static void AssertReaches(Action<A64Assembler> branches)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using var kvm = Kvm.Open(kernel);
        using var guest = Arm64Guest.Create(kvm, a =>
        {
            branches(a);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        var exit = guest.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
    }
}
