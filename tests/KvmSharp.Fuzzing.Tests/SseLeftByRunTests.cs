// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// XMM bytes KVM_SET_FPU wrote after a run are live on a kernel whose run left SSE in XSTATE_BV and not on one whose
/// did not (the fuzzer met it at call 2252 of seed 3 and call 8611 of seed 1, session 15; KernelSession's
/// _sseUncertain): such images are compared as if SSE were init.
/// </summary>
public class SseLeftByRunTests
{
    private const int Header = 512, Mxcsr = 24, Xmm = 160;

    private static byte[] Image(ulong bv, uint mxcsr, byte xmm)
    {
        var image = new byte[4096];
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(Header), bv);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(Mxcsr), mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(Mxcsr + 4), 0x2ffff);
        image.AsSpan(Xmm, 256).Fill(xmm);
        image[0] = 0x7f; // FCW, untouched
        return image;
    }

    [Fact]
    public void An_image_with_live_xmm_bytes_and_one_without_compare_equal()
    {
        // Linux after the divergence: SSE in XSTATE_BV, KVM_SET_FPU's XMM bytes and MXCSR; the emulator: x87 only, init.
        var live = Image(bv: 0x3, mxcsr: 0x1f81, xmm: 0x5a);
        var init = Image(bv: 0x1, mxcsr: 0, xmm: 0);
        XsaveLayout.ForgetSse(live);
        XsaveLayout.ForgetSse(init);
        Assert.Equal(Convert.ToHexString(init), Convert.ToHexString(live));
        Assert.Equal(0x1UL, BinaryPrimitives.ReadUInt64LittleEndian(live.AsSpan(Header)));
        Assert.Equal(0x7f, live[0]);
    }

    [Fact]
    public void With_avx_in_xstate_bv_mxcsr_is_still_compared()
    {
        // __copy_xstate_to_uabi_buf copies MXCSR for SSE or YMM: with AVX kept, both kernels show the fpstate's.
        var a = Image(bv: 0x7, mxcsr: 0x1f81, xmm: 0x5a);
        var b = Image(bv: 0x5, mxcsr: 0x1f80, xmm: 0);
        XsaveLayout.ForgetSse(a);
        XsaveLayout.ForgetSse(b);
        Assert.NotEqual(Convert.ToHexString(a), Convert.ToHexString(b));
        Assert.Equal(0x1f81u, BinaryPrimitives.ReadUInt32LittleEndian(a.AsSpan(Mxcsr)));
    }
}
