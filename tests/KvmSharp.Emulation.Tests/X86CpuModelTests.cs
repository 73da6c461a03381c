// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation.X86;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// <see cref="X86CpuModel"/> (the host CPU an emulated x86 kernel is: KVM_GET_SUPPORTED_CPUID and what follows from
/// its leaf 0xD; HostCpuMatchingTests holds <see cref="HostMatching.HostCpuModel"/> to this machine). Each model runs
/// on an emulated kernel configured with it, whichever CPU this machine is; the values are those the two kvm_pvm machines reported (Milan: XCR0 0x207, PKRU at
/// 0x980, size 0x988; Genoa: XCR0 0xe7, opmask 0x340/0x40, ZMM_Hi256 0x380/0x200, Hi16_ZMM 0x580/0x400, size 0x980).
/// </summary>
public sealed class X86CpuModelTests
{
    private const string NoKvm = "/dev/kvm cannot be opened here: there is no real kernel whose CPU to match";
    private const int XsaveSize = 4096, HeaderOffset = 512;

    private static X86CpuModel Model(string name) => name switch
    {
        "Milan" => X86CpuModel.EpycMilan,
        "Genoa" => X86CpuModel.EpycGenoa,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    private static EmulatedKernel KernelOn(X86CpuModel model) =>
        new(EmulatorConfig.LikeThisHost() with { X86Cpu = model });

    [Theory]
    [InlineData("Milan", 0x207UL)]
    [InlineData("Genoa", 0xe7UL)]
    public void Supported_cpuid_is_the_model_table_and_leaf_0xd_gives_its_xcr0(string name, ulong xcr0)
    {
        var model = Model(name);
        Assert.Equal(xcr0, model.SupportedXcr0);
        using var k = KernelOn(model);
        using (var kvm = Kvm.Open(k))
        {
            var table = kvm.GetSupportedCpuid();
            Assert.Equal(model.SupportedCpuid.Select(e => CpuidEntry.FromNative(e)), table);
            // Milan's table fits the SDK's first 64-entry buffer; Genoa's 75 do not (E2BIG at 64, as that host).
            if (model == X86CpuModel.EpycGenoa) Assert.Equal(75, table.Count);
            else Assert.InRange(table.Count, 1, 64);
            var d = table.Single(e => e.Function == 0xd && e.Index == 0);
            Assert.Equal(xcr0, d.Eax | ((ulong)d.Edx << 32));
            // __do_cpuid_func case 0xd: EBX = ECX = xstate_required_size(supported_xcr0, false).
            uint size = model.XstateSize(xcr0, compacted: false);
            Assert.Equal((size, size), (d.Ebx, d.Ecx));

            // KVM_X86_XCOMP_GUEST_SUPP (x86.c __kvm_x86_dev_get_attr) = kvm_caps.supported_xcr0.
            Assert.Equal(xcr0, kvm.GetSupportedXsaveFeatures());
            // KVM_CAP_XSAVE2 = max(xstate_required_size(supported_xcr0, false), sizeof(struct kvm_xsave)): 4096 on both.
            Assert.Equal(XsaveSize, kvm.CheckExtension(KvmCaps.KVM_CAP_XSAVE2));
            using var vm = kvm.CreateVm();
            Assert.Equal(XsaveSize, vm.CheckExtension(KvmCaps.KVM_CAP_XSAVE2));
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void Milan_offers_pkru_at_0x980()
    {
        var m = X86CpuModel.EpycMilan;
        Assert.Equal([(2, 0x240, 0x100), (9, 0x980, 8)], m.Components.Select(c => (c.Bit, c.Offset, c.Size)));
        Assert.Empty(m.ExtendedComponents);
        Assert.Equal(0x980, m.PkruOffset);
        // xstate_required_size: the end of the furthest enabled component (standard), the sum of sizes (compacted).
        Assert.Equal(0x240u, m.XstateSize(1, compacted: false));
        Assert.Equal(0x240u, m.XstateSize(3, compacted: false));
        Assert.Equal(0x340u, m.XstateSize(7, compacted: false));
        Assert.Equal(0x988u, m.XstateSize(0x207, compacted: false));
        Assert.Equal(0x988u, m.XstateSize(0x203, compacted: false));
        Assert.Equal(0x348u, m.XstateSize(0x207, compacted: true));
        Assert.Equal(0x340u, m.XstateSize(0xe7, compacted: false)); // bits the model lacks add nothing
    }

    [Fact]
    public void Genoa_offers_avx512_and_no_pkru()
    {
        var g = X86CpuModel.EpycGenoa;
        Assert.Equal([(2, 0x240, 0x100), (5, 0x340, 0x40), (6, 0x380, 0x200), (7, 0x580, 0x400)], g.Components.Select(c => (c.Bit, c.Offset, c.Size)));
        Assert.Equal([5, 6, 7], g.ExtendedComponents.Select(c => c.Bit));
        Assert.Equal(0, g.PkruOffset);
        Assert.Equal(0x240u, g.XstateSize(3, compacted: false));
        Assert.Equal(0x340u, g.XstateSize(7, compacted: false));
        Assert.Equal(0x380u, g.XstateSize(0x27, compacted: false));
        Assert.Equal(0x580u, g.XstateSize(0x67, compacted: false));
        Assert.Equal(0x980u, g.XstateSize(0xe7, compacted: false));
        Assert.Equal(0x980u, g.XstateSize(0x87, compacted: false)); // Hi16_ZMM alone still ends at 0x980
        Assert.Equal(0x780u, g.XstateSize(0xa7, compacted: true));  // 0x240 + 0x100 + 0x40 + 0x400
        Assert.Equal(0x980u, g.XstateSize(0x2e7, compacted: false)); // PKRU: not a component here
    }

    [Fact]
    public void Only_the_model_whose_xcr0_it_is_matches_a_table()
    {
        foreach (var model in X86CpuModel.Known)
            foreach (var other in X86CpuModel.Known)
                Assert.Equal(model == other, other.Matches(model.SupportedCpuid));
        Assert.False(X86CpuModel.EpycGenoa.Matches([]));
        var noPkru = X86CpuModel.EpycMilan.SupportedCpuid.ToArray();
        int i = Array.FindIndex(noPkru, e => e.function == 0xd && e.index == 0);
        noPkru[i].eax = 7;
        Assert.DoesNotContain(X86CpuModel.Known, m => m.Matches(noPkru));
        Assert.Equal([X86CpuModel.EpycMilan, X86CpuModel.EpycGenoa], X86CpuModel.Known);
    }

    [Theory]
    [InlineData("Milan")]
    [InlineData("Genoa")]
    public void Set_xsave_round_trips_each_supported_component_and_refuses_the_others(string name)
    {
        var model = Model(name);
        using var k = KernelOn(model);
        AssertXsaveRoundTrips(k, model);
        Assert.Equal(0, k.OpenFdCount);
    }

    /// <summary>The same on this machine's kernel, as the model it matches: what the emulator does is what it does.</summary>
    [SkippableFact]
    public void Set_xsave_round_trips_each_supported_component_on_the_real_kernel()
    {
        Skip.IfNot(Raw.HostHasKvm, NoKvm);
        var model = HostMatching.HostCpuModel;
        Assert.NotNull(model);
        AssertXsaveRoundTrips(LinuxKernel.Instance, model);
    }

    /// <summary>
    /// KVM_SET_XSAVE then KVM_GET_XSAVE (x86.c kvm_vcpu_ioctl_x86_set_xsave / kvm_vcpu_ioctl_x86_get_xsave2;
    /// fpu/xstate.c copy_uabi_to_xstate / __copy_xstate_to_uabi_buf) with <paramref name="model"/>'s components.
    /// </summary>
    private static void AssertXsaveRoundTrips(IKernel k, X86CpuModel model)
    {
        string name = model.Name;
        using (var kvm = Kvm.Open(k))
        using (var vm = kvm.CreateVm())
        using (var vcpu = vm.CreateVcpu())
        {
            // Without KVM_SET_CPUID2 only FP and SSE are reported (__copy_xstate_to_uabi_buf masks with
            // guest_supported_xcr0 | FP | SSE).
            var fresh = Get(k, vcpu.Handle);
            var image = (byte[])fresh.Clone();
            SetBv(image, model.SupportedXcr0);
            foreach (var c in model.Components) Fill(image, c, (byte)(0x10 + c.Bit));
            Assert.Equal(0, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_XSAVE, image));
            var back = Get(k, vcpu.Handle);
            Assert.Equal(3UL, Bv(back));
            foreach (var c in model.Components) Assert.True(back.AsSpan(c.Offset, c.Size).IndexOfAnyExcept((byte)0) < 0, $"bit {c.Bit} reported without CPUID");

            vcpu.SetCpuid(kvm.GetSupportedCpuid());
            // Each component alone (with FP and SSE): set, then read back with its bytes and only its bit.
            foreach (var c in model.Components)
            {
                image = (byte[])fresh.Clone();
                SetBv(image, 3 | c.Mask);
                Fill(image, c, (byte)(0x40 + c.Bit));
                Assert.Equal(0, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_XSAVE, image));
                back = Get(k, vcpu.Handle);
                Assert.Equal(3 | c.Mask, Bv(back));
                Assert.True(back.AsSpan(c.Offset, c.Size).SequenceEqual(Expected(c, (byte)(0x40 + c.Bit))), $"bit {c.Bit} at 0x{c.Offset:X}");
                foreach (var other in model.Components.Where(o => o.Bit != c.Bit))
                    Assert.True(back.AsSpan(other.Offset, other.Size).IndexOfAnyExcept((byte)0) < 0, $"bit {other.Bit} reads init while bit {c.Bit} alone is set");
            }

            // All of them at once.
            image = (byte[])fresh.Clone();
            SetBv(image, model.SupportedXcr0);
            foreach (var c in model.Components) Fill(image, c, (byte)(0x80 + c.Bit));
            Assert.Equal(0, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_XSAVE, image));
            back = Get(k, vcpu.Handle);
            Assert.Equal(model.SupportedXcr0, Bv(back));
            foreach (var c in model.Components)
                Assert.True(back.AsSpan(c.Offset, c.Size).SequenceEqual(Expected(c, (byte)(0x80 + c.Bit))), $"bit {c.Bit} with all set");
            // fxsave sw_reserved word 464: kvm_caps.supported_xcr0 on these hosts (HostDeviations.KvmPvmXsaveSwReservedBytes).
            Assert.Equal((uint)model.SupportedXcr0, BinaryPrimitives.ReadUInt32LittleEndian(back.AsSpan(464)));

            // kvm_vcpu_ioctl_x86_set_xsave: xstate_bv & ~kvm_caps.supported_xcr0 is EINVAL, and nothing changes.
            for (int bit = 2; bit < 64; bit++)
            {
                if ((model.SupportedXcr0 & (1UL << bit)) != 0) continue;
                var bad = (byte[])fresh.Clone();
                SetBv(bad, 3 | (1UL << bit));
                Assert.True(k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_XSAVE, bad) == Raw.EINVAL, $"{name}: xstate_bv bit {bit}");
            }
            Assert.Equal(back, Get(k, vcpu.Handle));
        }
    }

    [Fact]
    public void Set_xsave_refuses_the_other_models_components()
    {
        // PKRU (bit 9) on Genoa, AVX-512 (bits 5–7) on Milan.
        foreach (var (model, foreign) in new[] { (X86CpuModel.EpycGenoa, 0x200UL), (X86CpuModel.EpycMilan, 0xe0UL) })
        {
            using var k = KernelOn(model);
            using var kvm = Kvm.Open(k);
            using var vm = kvm.CreateVm();
            using var vcpu = vm.CreateVcpu();
            vcpu.SetCpuid(kvm.GetSupportedCpuid());
            var image = Get(k, vcpu.Handle);
            SetBv(image, 7 | foreign);
            Assert.Equal(Raw.EINVAL, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_XSAVE, image));
            SetBv(image, 7);
            Assert.Equal(0, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_XSAVE, image));
        }
    }

    private static byte[] Get(IKernel k, KernelFd vcpu)
    {
        var b = new byte[XsaveSize];
        Assert.Equal(0, k.Ioctl(vcpu, KvmIoctls.KVM_GET_XSAVE, b));
        return b;
    }

    private static ulong Bv(byte[] image) => BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(HeaderOffset));

    private static void SetBv(byte[] image, ulong bv) => BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(HeaderOffset), bv);

    private static void Fill(byte[] image, XsaveComponent c, byte value) => image.AsSpan(c.Offset, c.Size).Fill(value);

    /// <summary>What KVM_GET_XSAVE shows of a component filled with <paramref name="value"/>: PKRU keeps its 4 bytes.</summary>
    private static byte[] Expected(XsaveComponent c, byte value)
    {
        var b = new byte[c.Size];
        b.AsSpan(0, c.Bit == 9 ? 4 : c.Size).Fill(value);
        return b;
    }
}
