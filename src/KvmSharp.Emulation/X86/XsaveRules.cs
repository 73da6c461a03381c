// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// KVM_GET_XSAVE, KVM_GET_XSAVE2 and KVM_SET_XSAVE (arch/x86/kvm/x86.c kvm_vcpu_ioctl_x86_get_xsave2 /
/// kvm_vcpu_ioctl_x86_set_xsave; arch/x86/kernel/fpu/core.c fpu_copy_guest_fpstate_to_uabi /
/// fpu_copy_uabi_to_guest_fpstate; fpu/xstate.c __copy_xstate_to_uabi_buf / copy_uabi_to_xstate /
/// validate_user_xstate_header) over <see cref="VcpuState"/>, and what a KVM_RUN does to the saved image
/// (kvm_load_guest_fpu's XRSTOR, kvm_put_guest_fpu's XSAVES). Every rule was probed on this host (Linux 6.18 kvm_pvm,
/// AMD; C probes). The legacy area is <see cref="VcpuState.Fpu"/>, AVX's upper halves <see cref="VcpuState.YmmHigh"/>.
/// Bad input is an errno; a refused call changes nothing.
/// </summary>
internal static class XsaveRules
{
    /// <summary>sizeof(struct kvm_xsave); fpu_alloc_guest_fpstate: gfpu->uabi_size = sizeof(struct kvm_xsave).</summary>
    public const int Size = 4096;

    private const ulong Fp = 1, Sse = 2, Ymm = 4, Pkru = X86CpuModel.Pkru;

    /// <summary>mxcsr_feature_mask on this host (init_fpstate's mxcsr_mask, read back from a fresh vCPU).</summary>
    public const uint MxcsrFeatureMask = 0x2ffff;

    private const int MxcsrOffset = 24, StOffset = 32, XmmOffset = 160, SwReservedOffset = 464;
    private const int HeaderOffset = 512, YmmOffset = 576; // CPUID.0xD.2 EBX on every model

    /// <summary>
    /// x86.c kvm_vm_ioctl_check_extension KVM_CAP_XSAVE2: max(xstate_required_size(kvm_get_filtered_xcr0(), false),
    /// sizeof(struct kvm_xsave)); on /dev/kvm and every VM. 0x988 on Milan, 0x980 on Genoa, so 4096 on both.
    /// </summary>
    public static long CapXsave2(X86CpuModel model) => Math.Max(model.XstateSize(model.SupportedXcr0, compacted: false), (uint)Size);

    /// <summary>
    /// The first word of the fxsave sw_reserved bytes (464..467) as these hosts write them into every image:
    /// kvm_caps.supported_xcr0 (0x207 on Milan, 0xe7 on Genoa), the rest of 464..511 zero
    /// (HostDeviations.KvmPvmXsaveSwReservedBytes; upstream copies xstate_fx_sw_bytes).
    /// </summary>
    private static uint SwReservedWord(X86CpuModel model) => (uint)model.SupportedXcr0;


    /// <summary>
    /// kvm_vcpu_ioctl_x86_get_xsave2 → fpu_copy_guest_fpstate_to_uabi → __copy_xstate_to_uabi_buf(XSTATE_COPY_XSAVE)
    /// into a kzalloc'd buffer of <see cref="Size"/> bytes (KVM_GET_XSAVE: the same 4096): see <see cref="Image"/>.
    /// A buffer shorter than that is EFAULT.
    /// </summary>
    public static long Get(X86Cpu cpu, IoctlArg arg)
    {
        if (!arg.IsPointer || arg.Buffer.Length < Size) return Err.EFAULT;
        Image(cpu, arg.Buffer[..Size]);
        return 0;
    }

    /// <summary>
    /// __copy_xstate_to_uabi_buf: header.xfeatures = xstate_bv &amp; user_xfeatures &amp; (guest_supported_xcr0 | FP |
    /// SSE) — without KVM_SET_CPUID2 only FP and SSE are reported (observed: AVX and PKRU set, read back cleared).
    /// XCR0 plays no part (observed). Then each part from the state when its bit is set, else init_fpstate's value:
    /// FCW..FDP and ST0..7 (FP; init FCW 0x37f, zeros), MXCSR + MXCSR_MASK (SSE or AVX; init 0x1f80 and
    /// <see cref="MxcsrFeatureMask"/>), XMM0..15 (SSE; zeros), bytes 416..463 zero, the sw_reserved bytes, the
    /// header (xcomp_bv and reserved 0), AVX at 576 (zeros if init), PKRU at its offset (0x980 on Milan;
    /// vcpu->arch.pkru when reported, else 0 — observed), the other components at theirs, everything else zero.
    /// </summary>
    public static void Image(X86Cpu cpu, Span<byte> b)
    {
        var s = cpu.State;
        var model = cpu.Model;
        ulong bv = s.XstateBv & model.SupportedXcr0 & (VcpuStateRules.GuestSupportedXcr0(cpu) | Fp | Sse);
        b.Clear();
        ref readonly var f = ref s.Fpu;
        bool fp = (bv & Fp) != 0;
        BinaryPrimitives.WriteUInt16LittleEndian(b, fp ? f.fcw : VcpuState.FcwDefault);
        if (fp)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b[2..], f.fsw);
            b[4] = f.ftwx;
            b[5] = f.pad1;
            BinaryPrimitives.WriteUInt16LittleEndian(b[6..], f.last_opcode);
            BinaryPrimitives.WriteUInt64LittleEndian(b[8..], f.last_ip);
            BinaryPrimitives.WriteUInt64LittleEndian(b[16..], f.last_dp);
            ((ReadOnlySpan<byte>)f.fpr).CopyTo(b[StOffset..]);
        }
        bool mxcsr = (bv & (Sse | Ymm)) != 0;
        BinaryPrimitives.WriteUInt32LittleEndian(b[MxcsrOffset..], mxcsr ? f.mxcsr : VcpuState.MxcsrDefault);
        BinaryPrimitives.WriteUInt32LittleEndian(b[(MxcsrOffset + 4)..], mxcsr ? s.MxcsrMask : MxcsrFeatureMask);
        if ((bv & Sse) != 0) ((ReadOnlySpan<byte>)f.xmm).CopyTo(b[XmmOffset..]);
        BinaryPrimitives.WriteUInt32LittleEndian(b[SwReservedOffset..], SwReservedWord(model));
        BinaryPrimitives.WriteUInt64LittleEndian(b[HeaderOffset..], bv);
        if ((bv & Ymm) != 0) s.YmmHigh.CopyTo(b[YmmOffset..]);
        if ((bv & Pkru) != 0) BinaryPrimitives.WriteUInt32LittleEndian(b[model.PkruOffset..], s.Pkru);
        foreach (var c in model.ExtendedComponents)
            if ((bv & c.Mask) != 0) s.ExtendedArea.AsSpan(c.Offset, c.Size).CopyTo(b[c.Offset..]);
    }

    /// <summary>
    /// KVM_SET_XSAVE: memdup_user of <see cref="Size"/> bytes (shorter → EFAULT), kvm_vcpu_ioctl_x86_set_xsave (xfd is
    /// 0: no bit is dropped), fpu_copy_uabi_to_guest_fpstate, copy_uabi_to_xstate. EINVAL, in the kernel's order:
    /// <list type="bullet">
    /// <item>xstate_bv &amp; ~kvm_caps.supported_xcr0 (0x207 on Milan; the vCPU's CPUID and XCR0 do not matter —
    /// observed);</item>
    /// <item>validate_user_xstate_header: a bit outside fpstate->user_xfeatures (the same mask), xcomp_bv != 0,
    /// any of the 48 reserved header bytes non-zero;</item>
    /// <item>when FP, SSE or AVX is in xstate_bv: MXCSR &amp; ~mxcsr_feature_mask (with none of them MXCSR is not
    /// looked at).</item>
    /// </list>
    /// Then: without FP but with SSE or AVX, MXCSR and MXCSR_MASK are stored; each component whose bit is set is
    /// copied (FP: bytes 0..159, MXCSR and MXCSR_MASK included, stored verbatim); PKRU (bit 9) sets vcpu->arch.pkru,
    /// without it pkru is left alone (KVM passes a NULL vpkru); XSTATE_BV becomes the given bits. Components whose bit
    /// is clear keep their bytes (KVM_GET_FPU still shows them — observed) but read as init through KVM_GET_XSAVE.
    /// </summary>
    public static long Set(X86Cpu cpu, IoctlArg arg)
    {
        if (!arg.IsPointer || arg.Buffer.Length < Size) return Err.EFAULT;
        ReadOnlySpan<byte> b = arg.Buffer[..Size];
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(b[HeaderOffset..]);
        var model = cpu.Model;
        // fpu_copy_uabi_to_guest_fpstate, then validate_user_xstate_header against user_xfeatures (the same mask).
        if ((bv & ~model.SupportedXcr0) != 0) return Err.EINVAL;
        if (BinaryPrimitives.ReadUInt64LittleEndian(b[(HeaderOffset + 8)..]) != 0) return Err.EINVAL;
        if (b.Slice(HeaderOffset + 16, 48).ContainsAnyExcept((byte)0)) return Err.EINVAL;
        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(b[MxcsrOffset..]);
        uint mxcsrMask = BinaryPrimitives.ReadUInt32LittleEndian(b[(MxcsrOffset + 4)..]);
        if ((bv & (Fp | Sse | Ymm)) != 0 && (mxcsr & ~MxcsrFeatureMask) != 0) return Err.EINVAL; // copy_uabi_to_xstate

        var s = cpu.State;
        ref var f = ref s.Fpu;
        if ((bv & (Fp | Sse | Ymm)) != 0)
        {
            // FP's 160 bytes include MXCSR/MXCSR_MASK; without FP, "SSE and YMM require MXCSR even when FP is not in use".
            f.mxcsr = mxcsr;
            s.MxcsrMask = mxcsrMask;
        }
        if ((bv & Fp) != 0)
        {
            f.fcw = BinaryPrimitives.ReadUInt16LittleEndian(b);
            f.fsw = BinaryPrimitives.ReadUInt16LittleEndian(b[2..]);
            f.ftwx = b[4];
            f.pad1 = b[5];
            f.last_opcode = BinaryPrimitives.ReadUInt16LittleEndian(b[6..]);
            f.last_ip = BinaryPrimitives.ReadUInt64LittleEndian(b[8..]);
            f.last_dp = BinaryPrimitives.ReadUInt64LittleEndian(b[16..]);
            b.Slice(StOffset, 128).CopyTo(f.fpr);
        }
        if ((bv & Sse) != 0) b.Slice(XmmOffset, 256).CopyTo(f.xmm);
        if ((bv & Ymm) != 0) b.Slice(YmmOffset, 256).CopyTo(s.YmmHigh);
        if ((bv & Pkru) != 0) s.Pkru = BinaryPrimitives.ReadUInt32LittleEndian(b[model.PkruOffset..]);
        foreach (var c in model.ExtendedComponents)
            if ((bv & c.Mask) != 0) b.Slice(c.Offset, c.Size).CopyTo(s.ExtendedArea.AsSpan(c.Offset));
        s.XstateBv = bv;
        return 0;
    }

    /// <summary>What <see cref="BeforeRun"/> keeps of the saved area while the registers hold init values.</summary>
    internal sealed class SavedArea
    {
        public ulong InitComponents;
        public kvm_fpu Fpu;
        public byte[]? YmmHigh;
    }

    /// <summary>
    /// kvm_arch_vcpu_ioctl_run → kvm_load_guest_fpu (XRSTOR of the guest fpstate): a component whose XSTATE_BV bit is
    /// clear is loaded in its init state — the registers the guest (the interpreter) sees are FCW 0x37f and zeros,
    /// XMM zero with MXCSR 0x1f80 (MXCSR goes with SSE: with AVX alone it was not kept — observed), YMM zero — while
    /// the saved bytes stay where they are (observed: KVM_SET_FPU's values survive a KVM_RUN on a fresh vCPU, and the
    /// run does not set FP or SSE). Paired with <see cref="AfterRun"/>, on every KVM_RUN past kvm_vcpu_ioctl's
    /// argument check (immediate_exit too: the load and put come before it).
    /// </summary>
    public static void BeforeRun(X86Cpu cpu)
    {
        var s = cpu.State;
        ulong init = ~s.XstateBv & (Fp | Sse | Ymm);
        if (init == 0) return;
        var saved = new SavedArea { InitComponents = init, Fpu = s.Fpu };
        ref var f = ref s.Fpu;
        if ((init & Fp) != 0)
        {
            f.fcw = VcpuState.FcwDefault;
            f.fsw = 0;
            f.ftwx = 0;
            f.pad1 = 0;
            f.last_opcode = 0;
            f.last_ip = 0;
            f.last_dp = 0;
            ((Span<byte>)f.fpr).Clear();
        }
        if ((init & Sse) != 0)
        {
            ((Span<byte>)f.xmm).Clear();
            f.mxcsr = VcpuState.MxcsrDefault;
        }
        if ((init & Ymm) != 0)
        {
            saved.YmmHigh = (byte[])s.YmmHigh.Clone();
            Array.Clear(s.YmmHigh);
        }
        s.InitAtEntry = saved;
    }

    /// <summary>
    /// kvm_put_guest_fpu (XSAVES with the init optimisation): a component in its init state is not written and its
    /// XSTATE_BV bit is cleared, one that is not is written and its bit set. Observed on this host (SET_XSAVE with one
    /// field changed, KVM_RUN, GET_XSAVE): FP is in use when FCW != 0x37f, FSW != 0, the tag byte != 0 or an ST
    /// register's 80 bits are not zero (FOP, FIP, FDP and the 6 padding bytes of each ST slot do not count); SSE when
    /// an XMM register is not zero or MXCSR != 0x1f80; AVX when an upper half is not zero. PKRU's bit is set after
    /// every run where the host has PKRU (reported only with a CPUID offering it), pkru itself unchanged; MXCSR_MASK
    /// becomes the CPU's. The components the interpreter never touches (AVX-512's) keep their bit only while the
    /// saved bytes are not all zero (their init value).
    /// FCW and FSW are compared as the CPU holds them after XRSTOR: FCW's reserved bits 6, 7 and 13–15 and FSW's
    /// computed ES (7) and B (15) bits do not count (probed: FCW 0x23bf or FSW 0x8080 with nothing else in use
    /// loses FP's bit; found by the differential fuzzer, seed 19 — a KVM_SET_FPU of FCW 0x23bf read back as init
    /// through KVM_GET_XSAVE after a run on the host, not in the emulator).
    /// </summary>
    public static void AfterRun(X86Cpu cpu)
    {
        var s = cpu.State;
        ref var f = ref s.Fpu;
        bool fp = (f.fcw & FcwHeldBits) != (VcpuState.FcwDefault & FcwHeldBits) || (f.fsw & FswHeldBits) != 0
            || f.ftwx != 0 || StInUse(f);
        bool sse = ((ReadOnlySpan<byte>)f.xmm).ContainsAnyExcept((byte)0) || f.mxcsr != VcpuState.MxcsrDefault;
        bool ymm = s.YmmHigh.AsSpan().ContainsAnyExcept((byte)0);
        if (s.InitAtEntry is { } saved)
        {
            // Init at entry and still init: the area was not written, its old bytes are what stays saved.
            var old = saved.Fpu;
            if ((saved.InitComponents & Fp) != 0 && !fp)
            {
                var (mxcsr, xmm) = (f.mxcsr, f.xmm);
                f = old with { mxcsr = mxcsr, xmm = xmm };
            }
            if ((saved.InitComponents & Sse) != 0 && !sse)
            {
                f.xmm = old.xmm;
                f.mxcsr = old.mxcsr;
            }
            if (saved.YmmHigh is { } high && !ymm) high.CopyTo(s.YmmHigh, 0);
            s.InitAtEntry = null;
        }
        // XSAVE(S) writes the CPU's MXCSR_MASK with the legacy area (observed: a stored mask reads 0x2ffff after a run).
        s.MxcsrMask = MxcsrFeatureMask;
        ulong extended = 0;
        foreach (var c in cpu.Model.ExtendedComponents)
            if ((s.XstateBv & c.Mask) != 0 && s.ExtendedArea.AsSpan(c.Offset, c.Size).ContainsAnyExcept((byte)0)) extended |= c.Mask;
        s.XstateBv = (fp ? Fp : 0) | (sse ? Sse : 0) | (ymm ? Ymm : 0) | (cpu.Model.SupportedXcr0 & Pkru) | extended;
    }

    /// <summary>The FCW bits an x87 unit keeps: the masks (0–5), precision (8–9), rounding (10–11) and X (12).</summary>
    private const ushort FcwHeldBits = 0x1f3f;

    /// <summary>The FSW bits that are state, not computed from it: all but ES (7) and B (15).</summary>
    private const ushort FswHeldBits = 0x7f7f;

    private static bool StInUse(in kvm_fpu f)
    {
        ReadOnlySpan<byte> st = f.fpr;
        for (int i = 0; i < 8; i++)
            if (st.Slice(i * 16, 10).ContainsAnyExcept((byte)0)) return true;
        return false;
    }
}
