// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_GET_XSAVE / KVM_GET_XSAVE2 / KVM_SET_XSAVE (arch/x86/kvm/x86.c kvm_vcpu_ioctl_x86_get_xsave2 / _set_xsave,
/// fpu/core.c fpu_copy_guest_fpstate_to_uabi / fpu_copy_uabi_to_guest_fpstate, fpu/xstate.c
/// __copy_xstate_to_uabi_buf / copy_uabi_to_xstate / validate_user_xstate_header) and KVM_CAP_XSAVE / _XSAVE2. The
/// image's host-dependent parts (MXCSR_MASK 0x2ffff, the sw_reserved word, supported_xcr0 0x207, PKRU at 0x980) are
/// this host's (the sw_reserved word: HostDeviations.KvmPvmXsaveSwReservedBytes); the emulator models this host.
/// </summary>
public static class XsaveRules
{
    private const int Size = 4096, Header = 512, Ymm = 576, Pkru = 0x980;

    [ConformanceCase("kvm_vm_ioctl_check_extension: KVM_CAP_XSAVE = boot_cpu_has(XSAVE); KVM_CAP_XSAVE2 = the image size, at least sizeof(struct kvm_xsave), on /dev/kvm and a VM")]
    public static void xsave_caps(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal((1L, 4096L), (kvm.CheckExtension(KvmCaps.KVM_CAP_XSAVE), kvm.CheckExtension(KvmCaps.KVM_CAP_XSAVE2)));
        Assert.Equal((1L, 4096L), (vm.CheckExtension(KvmCaps.KVM_CAP_XSAVE), vm.CheckExtension(KvmCaps.KVM_CAP_XSAVE2)));
    }

    [ConformanceCase("__copy_xstate_to_uabi_buf: a new vCPU (xfeatures 0) reads init_fpstate: FCW 0x37f, MXCSR 0x1f80, MXCSR_MASK, the sw_reserved word, zeros; KVM_GET_XSAVE2 the same; on a VM fd ENOTTY")]
    public static void xsave_of_a_new_vcpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var image = Get(ctx, vcpu, KvmIoctls.KVM_GET_XSAVE);
        Assert.Equal(new Dictionary<int, uint> { [0] = 0x37f, [24] = 0x1f80, [28] = 0x2ffff, [464] = 0x207 }, NonZeroWords(image));
        Assert.Equal(image, Get(ctx, vcpu, KvmIoctls.KVM_GET_XSAVE2));
        Assert.Equal(image, vcpu.GetXsave());
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_XSAVE, new byte[Size]), "KVM_GET_XSAVE on a VM");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_SET_XSAVE, new byte[Size]), "KVM_SET_XSAVE on /dev/kvm");
    }

    [ConformanceCase("fpu_copy_uabi_to_guest_fpstate / validate_user_xstate_header / copy_uabi_to_xstate: EINVAL for xfeatures beyond supported_xcr0, xcomp_bv, reserved header bytes, MXCSR reserved bits under FP/SSE/AVX; nothing changes")]
    public static void xsave_set_refusals(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var before = vcpu.GetXsave();
        var fpuBefore = vcpu.GetFpu();
        foreach (ulong bit in new ulong[] { 8, 0x10, 0x20, 0x80, 0x100, 0x800, 0x20000, 0x40000, 1UL << 63 })
            Refused(Image(bv: 3 | bit, fill: 0x11), $"xstate_bv 0x{3 | bit:X}");
        var compacted = Image(bv: 3, fill: 0x22);
        BinaryPrimitives.WriteUInt64LittleEndian(compacted.AsSpan(Header + 8), 1UL << 63 | 3);
        Refused(compacted, "xcomp_bv");
        for (int offset = Header + 16; offset < Header + 64; offset += 7)
        {
            var reserved = Image(bv: 0, fill: 0);
            reserved[offset] = 1;
            Refused(reserved, $"header byte {offset}");
        }
        foreach (ulong bv in new ulong[] { 1, 2, 3, 4, 7, 0x207 })
            foreach (uint mxcsr in new uint[] { 0x10000, 0x40000, 0x8000_0000 })
            {
                var bad = Image(bv, fill: 0x33);
                BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(24), mxcsr);
                Refused(bad, $"xstate_bv 0x{bv:X} mxcsr 0x{mxcsr:X}");
            }
        Assert.Equal(before, vcpu.GetXsave());
        Assert.True(Raw(fpuBefore).SequenceEqual(Raw(vcpu.GetFpu())));

        // Without FP, SSE or AVX in xstate_bv, MXCSR is not looked at (nor stored).
        var ignored = Image(bv: 0, fill: 0);
        BinaryPrimitives.WriteUInt32LittleEndian(ignored.AsSpan(24), 0xffff_ffff);
        vcpu.SetXsave(ignored);
        Assert.Equal(before, vcpu.GetXsave());

        void Refused(byte[] image, string what) => CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_XSAVE, image), what);
    }

    [ConformanceCase("kvm_vcpu_ioctl_x86_get_xsave2: reported xfeatures = xstate_bv & (guest_supported_xcr0 | FP | SSE): AVX and PKRU only with a CPUID offering them; XCR0 plays no part; KVM_SET_XSAVE accepts supported_xcr0 whatever the CPUID")]
    public static void xsave_reports_what_the_guest_cpuid_offers(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var bare = vm.CreateVcpu(0);
        using var full = vm.CreateVcpu(1);
        full.SetCpuid(kvm.GetSupportedCpuid());
        foreach (var vcpu in new[] { bare, full })
        {
            var image = Image(bv: 0x207, fill: 0x5a);
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(Pkru), 0x5555_5554);
            vcpu.SetXsave(image);
        }
        var b = View(bare);
        Assert.Equal(3UL, b.XstateBv);
        Assert.True(b.YmmHigh(0).SequenceEqual(new byte[16]));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bare.GetXsave().AsSpan(Pkru)));
        var f = View(full);
        Assert.Equal(0x207UL, f.XstateBv);
        Assert.True(f.YmmHigh(15).SequenceEqual(Enumerable.Repeat((byte)0x5a, 16).ToArray()));
        Assert.Equal(0x5555_5554u, BinaryPrimitives.ReadUInt32LittleEndian(full.GetXsave().AsSpan(Pkru)));
        full.SetXcr0(7);
        Assert.Equal(0x207UL, View(full).XstateBv);

        // PKRU's bit clear: vcpu->arch.pkru is left alone but not reported.
        full.SetXsave(Image(bv: 3, fill: 0));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(full.GetXsave().AsSpan(Pkru)));

        static XsaveAreaCopy View(Vcpu v) => new(v.GetXsave());
    }

    [ConformanceCase("copy_uabi_to_xstate: only components in xstate_bv are copied; __copy_xstate_to_uabi_buf: MXCSR goes with SSE or AVX, FP's 160 bytes (MXCSR_MASK too) with FP; the rest of the legacy area reads 0 and the sw_reserved word")]
    public static void xsave_components_and_mxcsr(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetCpuid(kvm.GetSupportedCpuid());
        var rng = new Random(7);
        var image = new byte[Size];
        rng.NextBytes(image);
        image.AsSpan(Header, 64).Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(Header), 0x207);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(24), 0x1f80 | 0x3f);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(28), 0x1234_5678);
        vcpu.SetXsave(image);
        var back = vcpu.GetXsave();
        Assert.True(back.AsSpan(0, 416).SequenceEqual(image.AsSpan(0, 416)));
        Assert.True(back.AsSpan(416, 48).SequenceEqual(new byte[48]));
        Assert.Equal(new Dictionary<int, uint> { [464] = 0x207 }, NonZeroWords(back.AsSpan(464, 48).ToArray()).ToDictionary(p => p.Key + 464, p => p.Value));
        Assert.Equal(0x207UL, BinaryPrimitives.ReadUInt64LittleEndian(back.AsSpan(Header)));
        Assert.True(back.AsSpan(Ymm, 256).SequenceEqual(image.AsSpan(Ymm, 256)));
        Assert.True(back.AsSpan(Pkru, 4).SequenceEqual(image.AsSpan(Pkru, 4)));
        Assert.True(back.AsSpan(Ymm + 256, Pkru - Ymm - 256).SequenceEqual(new byte[Pkru - Ymm - 256]));
        Assert.True(back.AsSpan(Pkru + 4).SequenceEqual(new byte[Size - Pkru - 4]));

        // SSE alone: MXCSR and MXCSR_MASK from the image, FP from init.
        var sse = Image(bv: 2, fill: 0x6b);
        BinaryPrimitives.WriteUInt16LittleEndian(sse, 0x47f);
        BinaryPrimitives.WriteUInt32LittleEndian(sse.AsSpan(24), 0x1f88);
        BinaryPrimitives.WriteUInt32LittleEndian(sse.AsSpan(28), 0xabcd);
        vcpu.SetXsave(sse);
        var s = new XsaveAreaCopy(vcpu.GetXsave());
        Assert.Equal((0x37f, 0x1f88u, 0xabcdu, (byte)0x6b), (s.Fcw, s.Mxcsr, s.MxcsrMask, s.Xmm(3)[0]));
        // FP alone: MXCSR reads init, although FP's bytes carried one.
        var fp = Image(bv: 1, fill: 0x7c);
        BinaryPrimitives.WriteUInt16LittleEndian(fp, 0x57f);
        BinaryPrimitives.WriteUInt32LittleEndian(fp.AsSpan(24), 0x1f90);
        vcpu.SetXsave(fp);
        var f = new XsaveAreaCopy(vcpu.GetXsave());
        Assert.Equal((0x57f, 0x1f80u, 0x2ffffu, (byte)0), (f.Fcw, f.Mxcsr, f.MxcsrMask, f.Xmm(3)[0]));
    }

    [ConformanceCase("kvm_arch_vcpu_ioctl_set_fpu writes the fxsave area (not MXCSR) but not xfeatures: KVM_GET_XSAVE keeps reporting init until KVM_SET_XSAVE sets FP/SSE; a component left out of xstate_bv keeps its bytes for KVM_GET_FPU")]
    public static void xsave_and_fpu_see_one_area(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var fpu = vcpu.GetFpu();
        fpu.fcw = 0x27f;
        fpu.fsw = 0x1234;
        fpu.xmm[0] = 0xaa;
        fpu.fpr[0] = 0x11;
        vcpu.SetFpu(fpu);
        var fresh = vcpu.GetXsave();
        Assert.Equal(0UL, new XsaveAreaCopy(fresh).XstateBv);
        Assert.Equal((ushort)0x37f, new XsaveAreaCopy(fresh).Fcw);

        vcpu.SetXsave(Image(bv: 0, fill: 0x99));
        var kept = vcpu.GetFpu();
        Assert.Equal((0x27f, 0x1234, (byte)0xaa, (byte)0x11), (kept.fcw, kept.fsw, kept.xmm[0], kept.fpr[0]));

        vcpu.SetXsave(Image(bv: 3, fill: 0x5a));
        var written = vcpu.GetFpu();
        Assert.Equal((0x5a5a, (byte)0x5a, (byte)0x5a), (written.fcw, written.xmm[255], written.fpr[0]));
        Assert.Equal(0u, written.mxcsr);
        // KVM_SET_FPU now shows through: xstate_bv has FP and SSE.
        written.xmm[17] = 0x42;
        written.pad1 = 0x77; // twd = ftwx: the byte after the tag byte becomes 0
        vcpu.SetFpu(written);
        var x = new XsaveAreaCopy(vcpu.GetXsave());
        Assert.Equal(((byte)0x42, (byte)0), (x.Xmm(1)[1], x.Bytes[5]));
        Assert.Equal(0x1f80u, x.Mxcsr); // kvm_fpu.mxcsr (0 as KVM_GET_FPU read it) is not copied in
    }

    [ConformanceCase("kvm_arch_vcpu_ioctl_run: kvm_load_guest_fpu / kvm_put_guest_fpu (XRSTOR, XSAVES) around even an immediate exit: components in their init state lose their xstate_bv bit, the others keep it, PKRU's is set")]
    public static void xsave_after_kvm_run(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetCpuid(kvm.GetSupportedCpuid());
        var image = Image(bv: 0x207, fill: 0);
        BinaryPrimitives.WriteUInt16LittleEndian(image, 0x37f);
        image.AsSpan(Ymm, 256).Fill(0x3d);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(24), 0x1f80);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(Pkru), 7);
        vcpu.SetXsave(image);
        RunOnce(ctx, vcpu);
        var after = new XsaveAreaCopy(vcpu.GetXsave());
        Assert.Equal(0x204UL, after.XstateBv);
        Assert.Equal((byte)0x3d, after.YmmHigh(15)[15]);
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(after.Bytes[Pkru..]));

        // KVM_SET_FPU on a component left out of xstate_bv: the run loads init, the saved bytes stay.
        vcpu.SetXsave(Image(bv: 0, fill: 0));
        var fpu = vcpu.GetFpu();
        fpu.fcw = 0x27f;
        fpu.xmm[0] = 0xaa;
        vcpu.SetFpu(fpu);
        RunOnce(ctx, vcpu);
        Assert.Equal(0x200UL, new XsaveAreaCopy(vcpu.GetXsave()).XstateBv);
        var kept = vcpu.GetFpu();
        Assert.Equal((0x27f, (byte)0xaa), (kept.fcw, kept.xmm[0]));

        // A component in use stays: FSW alone makes FP in use, FIP alone does not.
        var fsw = Image(bv: 1, fill: 0);
        BinaryPrimitives.WriteUInt16LittleEndian(fsw, 0x37f);
        BinaryPrimitives.WriteUInt16LittleEndian(fsw.AsSpan(2), 1);
        vcpu.SetXsave(fsw);
        RunOnce(ctx, vcpu);
        Assert.Equal(0x201UL, new XsaveAreaCopy(vcpu.GetXsave()).XstateBv);
        var fip = Image(bv: 3, fill: 0);
        BinaryPrimitives.WriteUInt16LittleEndian(fip, 0x37f);
        BinaryPrimitives.WriteUInt32LittleEndian(fip.AsSpan(24), 0x1f84);
        fip[8] = 1;
        vcpu.SetXsave(fip);
        RunOnce(ctx, vcpu);
        Assert.Equal(0x202UL, new XsaveAreaCopy(vcpu.GetXsave()).XstateBv); // MXCSR != 0x1f80 keeps SSE
    }

    [ConformanceCase("kvm_put_guest_fpu (XSAVES, init optimisation) as the CPU sees the x87 state XRSTOR loaded: FCW's reserved bits 6, 7, 13–15 and FSW's computed ES and B bits are not held, so an image that differs from the init state only there leaves FP out of xstate_bv after a run (KVM_GET_XSAVE reads init; KVM_GET_FPU still shows the stored bytes); a held bit keeps it")]
    public static void xsave_after_kvm_run_ignores_unheld_x87_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (fcw, fsw, inUse) in new (ushort, ushort, bool)[]
        {
            (0x23bf, 0, false), (0x037f ^ 0x40, 0, false), (0x037f | 0x80, 0, false), (0xe37f, 0, false),
            (0x037f, 0x8080, false), (0x137f, 0, true), (0x037e, 0, true), (0x037f, 0x0001, true), (0x037f, 0x4000, true),
        })
        {
            using var vm = kvm.CreateVm();
            using var vcpu = vm.CreateVcpu();
            var image = Image(bv: 1, fill: 0);
            BinaryPrimitives.WriteUInt16LittleEndian(image, fcw);
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(2), fsw);
            vcpu.SetXsave(image);
            RunOnce(ctx, vcpu);
            var after = new XsaveAreaCopy(vcpu.GetXsave());
            string what = $"FCW 0x{fcw:X4} FSW 0x{fsw:X4}";
            Assert.True(inUse == ((after.XstateBv & 1) != 0), $"{what}: xstate_bv 0x{after.XstateBv:X} after a run");
            Assert.Equal(inUse ? fcw : (ushort)0x37f, BinaryPrimitives.ReadUInt16LittleEndian(after.Bytes));
            var fpu = vcpu.GetFpu();
            Assert.Equal((fcw, fsw), (fpu.fcw, fpu.fsw));
        }
    }

    private static void RunOnce(CaseContext ctx, Vcpu vcpu)
    {
        vcpu.ImmediateExit = true;
        CaseContext.AssertErrno(Errno.EINTR, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_RUN, 0UL), "KVM_RUN with immediate_exit");
        vcpu.ImmediateExit = false;
    }

    /// <summary>An image with xstate_bv <paramref name="bv"/>, the legacy area and AVX filled, MXCSR 0x1f80.</summary>
    private static byte[] Image(ulong bv, byte fill)
    {
        var image = new byte[Size];
        image.AsSpan(0, 464).Fill(fill);
        image.AsSpan(Ymm, 256).Fill(fill);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(24), 0x1f80);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(Header), bv);
        return image;
    }

    private static byte[] Get(CaseContext ctx, Vcpu vcpu, uint request)
    {
        var buffer = new byte[Size];
        buffer.AsSpan().Fill(0xcc);
        Assert.Equal(0, ctx.Kernel.Ioctl(vcpu.Handle, request, buffer));
        return buffer;
    }

    private static Dictionary<int, uint> NonZeroWords(byte[] image)
    {
        var words = new Dictionary<int, uint>();
        for (int i = 0; i + 4 <= image.Length; i += 4)
            if (BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(i)) is uint w and not 0) words[i] = w;
        return words;
    }

    private static byte[] Raw(kvm_fpu fpu) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(
        System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(ref fpu, 1)).ToArray();

    /// <summary><see cref="XsaveArea"/> over a kept array (a ref struct cannot be held across calls).</summary>
    private sealed class XsaveAreaCopy(byte[] bytes)
    {
        public ReadOnlySpan<byte> Bytes => bytes;
        public ulong XstateBv => new XsaveArea(bytes).XstateBv;
        public ushort Fcw => new XsaveArea(bytes).Fcw;
        public uint Mxcsr => new XsaveArea(bytes).Mxcsr;
        public uint MxcsrMask => new XsaveArea(bytes).MxcsrMask;
        public byte[] Xmm(int n) => new XsaveArea(bytes).Xmm(n).ToArray();
        public byte[] YmmHigh(int n) => new XsaveArea(bytes).YmmHigh(n).ToArray();
    }
}
