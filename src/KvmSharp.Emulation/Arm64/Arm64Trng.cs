// SPDX-License-Identifier: MIT
using System.Security.Cryptography;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The Arm True Random Number Generator firmware interface (DEN0098) as arch/arm64/kvm/trng.c kvm_trng_call answers
/// it, gated by KVM_REG_ARM_STD_BIT_TRNG_V1_0 (Smccc.TestFwBmap). The bits come from the host's CSPRNG
/// (get_random_long upstream).
/// </summary>
internal static class Arm64Trng
{
    /// <summary>ARM_SMCCC_TRNG_VERSION: SMCCC_CALL_VAL(FAST, SMC_32, STANDARD, 0x50).</summary>
    public const uint Version = 0x8400_0050;
    public const uint Features = 0x8400_0051;
    public const uint GetUuid = 0x8400_0052;
    public const uint Rnd32 = 0x8400_0053;

    /// <summary>ARM_SMCCC_TRNG_RND64: SMC_64 convention, function 0x53.</summary>
    public const uint Rnd64 = 0xC400_0053;

    /// <summary>ARM_SMCCC_TRNG_VERSION_1_0.</summary>
    public const ulong Version10 = 0x1_0000;

    /// <summary>TRNG_INVALID_PARAMETER ((unsigned long)-2).</summary>
    public const ulong InvalidParameter = unchecked((ulong)-2L);

    /// <summary>arm_smc_trng_uuid 0d21e000-4384-11eb-8070-6b82109d9f1d as four little-endian words.</summary>
    public static readonly ulong[] Uuid = [0x00e0_210d, 0xeb11_8443, 0x826b_7080, 0x1d9f_9d10];

    /// <summary>kvm_trng_call: val = TRNG_NOT_SUPPORTED unless the function answers; x0..x3 via smccc_set_retval.</summary>
    public static void Call(Arm64Cpu cpu)
    {
        uint fn = (uint)cpu.X[0];
        Span<ulong> val = [Smccc.SMCCC_RET_NOT_SUPPORTED, 0, 0, 0];
        switch (fn)
        {
            case Version:
                val[0] = Version10;
                break;
            case Features:
                // Every TRNG function id answers TRNG_SUCCESS; anything else TRNG_NOT_SUPPORTED.
                if ((uint)cpu.X[1] is Version or Features or GetUuid or Rnd32 or Rnd64) val[0] = 0;
                break;
            case GetUuid:
                Uuid.CopyTo(val);
                break;
            case Rnd32:
            case Rnd64:
                DoRnd(cpu, fn == Rnd32 ? 32 : 64, val);
                break;
        }
        Smccc.SetRetval(cpu, val);
    }

    /// <summary>
    /// kvm_trng_do_rnd: "if (num_bits > 3 * size)" → TRNG_INVALID_PARAMETER; else num_bits random bits (the rest of the
    /// 192-bit buffer cleared), RND32: x1 = low32(bits[1]), x2 = high32(bits[0]), x3 = low32(bits[0]); RND64: x1..x3 =
    /// bits[2], bits[1], bits[0].
    /// </summary>
    private static void DoRnd(Arm64Cpu cpu, int size, Span<ulong> val)
    {
        uint numBits = (uint)cpu.X[1];
        if (numBits > 3 * (uint)size)
        {
            val[0] = InvalidParameter;
            return;
        }
        Span<ulong> bits = stackalloc ulong[3];
        RandomNumberGenerator.Fill(System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits));
        // bitmap_clear(bits, num_bits, TRNG_MAX_BITS64 - num_bits).
        for (int i = 0; i < 3; i++)
        {
            int keep = Math.Clamp((int)numBits - 64 * i, 0, 64);
            bits[i] = keep == 64 ? bits[i] : bits[i] & ((1UL << keep) - 1);
        }
        val[0] = 0;
        if (size == 32)
        {
            val[1] = bits[1] & 0xffff_ffff;
            val[2] = bits[0] >> 32;
            val[3] = bits[0] & 0xffff_ffff;
        }
        else
        {
            val[1] = bits[2];
            val[2] = bits[1];
            val[3] = bits[0];
        }
    }
}
