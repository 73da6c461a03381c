// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// <see cref="Vcpu.GetXsave"/>, <see cref="Vcpu.SetXsave"/> and <see cref="XsaveArea"/> on every kernel. Every
/// expectation was probed on this project's hosts (Linux 6.18 kvm_pvm, AMD EPYC: MXCSR_MASK 0x2ffff; supported_xcr0
/// 0x207 on Milan, 0xe7 on Genoa) and holds on both: the tests use only x87, SSE and AVX, which both offer, and
/// XTILECFG (bit 17), which neither does.
/// </summary>
public class XsaveTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_new_vcpu_reads_the_init_image(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_XSAVE));
        Assert.Equal(Vcpu.XsaveSize, vm.CheckExtension(KvmCaps.KVM_CAP_XSAVE2));
        var bytes = vcpu.GetXsave();
        Assert.Equal(Vcpu.XsaveSize, bytes.Length);
        var area = new XsaveArea(bytes);
        Assert.Equal((0x37f, 0, 0x1f80u, 0x2ffffu, 0UL, 0UL), (area.Fcw, area.Fsw, area.Mxcsr, area.MxcsrMask, area.XstateBv, area.XcompBv));
        for (int n = 0; n < 16; n++) Assert.True(area.Xmm(n).SequenceEqual(new byte[16]) && area.YmmHigh(n).SequenceEqual(new byte[16]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new XsaveArea(bytes).Xmm(16));
        Assert.Throws<ArgumentOutOfRangeException>(() => new XsaveArea(bytes).St(8));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Set_then_get_round_trips_the_registers_the_cpuid_offers(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetCpuid(kvm.GetSupportedCpuid());
        var image = vcpu.GetXsave();
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset), XsaveArea.FeatureFp | XsaveArea.FeatureSse | XsaveArea.FeatureYmm);
        BinaryPrimitives.WriteUInt16LittleEndian(image, 0x27f);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(XsaveArea.MxcsrOffset), 0x1fa0);
        for (int n = 0; n < 16; n++)
        {
            image.AsSpan(XsaveArea.XmmOffset + n * 16, 16).Fill((byte)(n + 1));
            image.AsSpan(XsaveArea.YmmOffset + n * 16, 16).Fill((byte)(0x80 + n));
        }
        // A longer span is passed whole; the kernel reads its own size.
        var longer = new byte[Vcpu.XsaveSize + 100];
        image.CopyTo(longer, 0);
        vcpu.SetXsave(longer);
        var back = new XsaveArea(vcpu.GetXsave());
        Assert.Equal((0x27f, 0x1fa0u, 7UL), (back.Fcw, back.Mxcsr, back.XstateBv));
        Assert.True(back.Xmm(5).SequenceEqual(Enumerable.Repeat((byte)6, 16).ToArray()));
        Assert.True(back.YmmHigh(15).SequenceEqual(Enumerable.Repeat((byte)0x8f, 16).ToArray()));
        Assert.Equal((byte)6, vcpu.GetFpu().xmm[5 * 16]); // KVM_GET_FPU reads the same legacy area
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Refused_images_name_the_header_and_change_nothing(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var before = vcpu.GetXsave();
        Assert.Throws<ArgumentException>(() => vcpu.SetXsave(new byte[Vcpu.XsaveSize - 1]));

        var image = (byte[])before.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset), 0x20003); // XTILECFG: on neither host
        var ex = AssertErrno(Errno.EINVAL, () => vcpu.SetXsave(image));
        Assert.Equal("KVM_SET_XSAVE", ex.Operation);
        Assert.Contains("xstate_bv=0x20003", ex.Message, StringComparison.Ordinal);

        image = (byte[])before.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset), 3);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset + 8), 1UL << 63);
        Assert.Contains("xcomp_bv=0x8000000000000000", AssertErrno(Errno.EINVAL, () => vcpu.SetXsave(image)).Message, StringComparison.Ordinal);

        image = (byte[])before.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset), 2);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(XsaveArea.MxcsrOffset), 0x1f80 | 0x10000);
        Assert.Contains("mxcsr=0x11F80", AssertErrno(Errno.EINVAL, () => vcpu.SetXsave(image)).Message, StringComparison.Ordinal);
        Assert.Equal(before, vcpu.GetXsave());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Set_fpu_shows_through_xsave_only_once_xstate_bv_has_fp_and_sse(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var fpu = vcpu.GetFpu();
        fpu.xmm[0] = 0xaa;
        vcpu.SetFpu(fpu);
        Assert.Equal(0, new XsaveArea(vcpu.GetXsave()).Xmm(0)[0]); // xstate_bv 0: the init state is reported

        var image = vcpu.GetXsave();
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset), 3);
        vcpu.SetXsave(image);
        vcpu.SetFpu(fpu);
        Assert.Equal(0xaa, new XsaveArea(vcpu.GetXsave()).Xmm(0)[0]);
    }
}
