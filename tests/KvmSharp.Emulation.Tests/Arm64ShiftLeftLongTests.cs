// SPDX-License-Identifier: MIT
using static KvmSharp.Emulation.Tests.A64SimdEncoder;
using static KvmSharp.Emulation.Tests.Arm64SimdFpTests;
using static KvmSharp.Emulation.Tests.Arm64SimdTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SHLL/SHLL2 (Arm ARM C7.2 "SHLL, SHLL2", Advanced SIMD two-register miscellaneous, U = 1, opcode 10011): each
/// esize lane of the low (SHLL) or high half (SHLL2) of Vn shifted left by esize into a 2 × esize lane. gcc's
/// vectoriser emits it for <c>(u32)byte &lt;&lt; 8</c>-style widening shifts (SHA-256's message schedule in
/// CompiledCorpusTests' corpus at -O2/-O3, where the interpreter stopped at <c>shll2 v0.8h, v6.16b, #8</c>).
/// Emulator-only (the host is x86); the Arm ARM pseudocode is the oracle.
/// </summary>
public class Arm64ShiftLeftLongTests
{
    [Fact]
    public void Shll_and_shll2_widen_the_low_or_high_half_and_shift_by_the_element_size()
    {
        Assert.Equal(0x6E2138C0u, TwoRegisterMisc(q: true, u: true, size: 0, opcode: 0x13, rd: 0, rn: 6)); // gcc's shll2 v0.8h, v6.16b, #8
        using var s = RunVectors([U128(0x8877_6655_4433_2211, 0xF0E0_D0C0_B0A0_9080)], g =>
        {
            g.Emit(TwoRegisterMisc(q: false, u: true, size: 0, opcode: 0x13, rd: 2, rn: 0)); // shll v2.8h, v0.8b, #8
            g.Emit(TwoRegisterMisc(q: true, u: true, size: 0, opcode: 0x13, rd: 3, rn: 0));  // shll2 v3.8h, v0.16b, #8
            g.Emit(TwoRegisterMisc(q: false, u: true, size: 1, opcode: 0x13, rd: 4, rn: 0)); // shll v4.4s, v0.4h, #16
            g.Emit(TwoRegisterMisc(q: true, u: true, size: 2, opcode: 0x13, rd: 5, rn: 0));  // shll2 v5.2d, v0.4s, #32
        });
        var v = s.Vcpus[0];
        Assert.Equal(U128(0xF000_E000_D000_C000, 0xB000_A000_9000_8000), V(v, 2));
        Assert.Equal(U128(0x8800_7700_6600_5500, 0x4400_3300_2200_1100), V(v, 3));
        Assert.Equal(U128(0xF0E0_0000_D0C0_0000, 0xB0A0_0000_9080_0000), V(v, 4));
        Assert.Equal(U128(0x8877_6655_0000_0000, 0x4433_2211_0000_0000), V(v, 5));
    }
}
