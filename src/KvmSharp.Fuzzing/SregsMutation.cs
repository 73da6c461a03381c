// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Changes to a vCPU's special registers between KVM_GET_SREGS and KVM_SET_SREGS, valid and invalid alike
/// (kvm_is_valid_sregs: CR0.PG without PE, long mode without PAE, EFER.LMA without LME, reserved CR4 bits).
/// </summary>
public static class SregsMutation
{
    public const int Count = 7;

    /// <summary>
    /// Added to a mutation number: also draw the values on which the emulator's X86 code (owned elsewhere) is known to
    /// disagree with this host (<see cref="ReportedDivergences"/>). Without it the fuzzer steers around them.
    /// </summary>
    public const int WithReported = 0x100;

    private const ulong Cr0Pe = 1, Cr0Et = 1UL << 4, Cr0Ne = 1UL << 5, Cr0Pg = 1UL << 31, Cr0Cd = 1UL << 30, Cr0Nw = 1UL << 29;
    private const ulong Cr4Pae = 1UL << 5, Efer_Lme = 1UL << 8, Efer_Lma = 1UL << 10;

    private static readonly ulong[] s_cr0 = [0x60000010, Cr0Pe | Cr0Et, Cr0Pe | Cr0Et | Cr0Ne | Cr0Pg, Cr0Pg, Cr0Nw | Cr0Et, Cr0Cd | Cr0Nw | Cr0Et, 1UL << 40];
    private static readonly ulong[] s_cr4 = [0, Cr4Pae, Cr4Pae | (1UL << 9) | (1UL << 10), 1UL << 7, 1UL << 31, 1UL << 12, 1UL << 63];
    private static readonly ulong[] s_efer = [0, Efer_Lme, Efer_Lme | Efer_Lma, Efer_Lma, 1UL << 11, 1, 1UL << 20];

    public static void Apply(ref kvm_sregs s, int mutation, Random rng)
    {
        bool reported = (mutation & WithReported) != 0;
        switch (mutation & ~WithReported)
        {
            case 1:
            {
                // Real-mode segments at another base (what a real-mode guest does).
                ulong @base = (ulong)rng.Next(0x10000) << 4;
                s.cs.@base = s.ds.@base = s.ss.@base = @base;
                s.cs.selector = s.ds.selector = s.ss.selector = (ushort)(@base >> 4);
                break;
            }
            case 2:
                s.cr0 = s_cr0[rng.Next(s_cr0.Length)];
                if (!reported) s.cr0 = ReportedDivergences.SteerCr0(s.cr0, s.efer);
                break;
            case 3:
                s.efer = s_efer[rng.Next(s_efer.Length)];
                break;
            case 4:
                s.cr4 = s_cr4[rng.Next(s_cr4.Length)];
                break;
            case 5:
                s.cr8 = rng.Next(3) == 0 ? (ulong)rng.NextInt64() : (ulong)rng.Next(16);
                s.cr2 = (ulong)rng.NextInt64();
                s.cr3 = (ulong)rng.Next(0x1000) << 12;
                break;
            case 6:
                // A consistent long-mode state (the micro-VM's), or one bit short of it.
                s.cr0 = Cr0Pe | Cr0Et | Cr0Ne | Cr0Pg;
                s.cr4 = rng.Next(4) == 0 ? 0 : Cr4Pae;
                s.efer = rng.Next(4) == 0 ? Efer_Lme : Efer_Lme | Efer_Lma;
                s.cr3 = 0x2000;
                s.cs.l = 1;
                s.cs.db = 0;
                s.cs.type = 0xB;
                break;
        }
    }
}
