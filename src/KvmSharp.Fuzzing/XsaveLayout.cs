// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.X86;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The standard-format XSAVE layout of the kernel under test, as KVM_GET_SUPPORTED_CPUID shows it:
/// kvm_caps.supported_xcr0 (leaf 0xD.0 EDX:EAX) and, for each component above SSE it names, the offset and size of its
/// bytes in a KVM_GET_XSAVE image (leaf 0xD.i EBX / EAX; fpu/xstate.c setup_xstate_cache). x87|SSE|AVX|PKRU (0x207,
/// PKRU at 0x980) on the EPYC Milan machines, x87|SSE|AVX|opmask|ZMM_Hi256|Hi16_ZMM (0xe7: 0x340, 0x380, 0x580) on the
/// Genoa one — read, never assumed, so the fuzzer's images and its comparison follow the machine.
/// </summary>
internal sealed class XsaveLayout
{
    /// <summary>XSTATE_BV's offset in an image (the header follows the 512-byte legacy area).</summary>
    public const int HeaderOffset = 512;

    internal const ulong Fp = 1, Sse = 2;
    private const int MxcsrOffset = 24, FpRegsOffset = 32, XmmOffset = 160;
    private const uint MxcsrInit = 0x1f80;
    private const ushort FcwInit = 0x37f;

    /// <summary>x87|SSE|AVX with AVX at 0x240: what every x86 host with AVX has, for a kernel whose table cannot be read.</summary>
    public static XsaveLayout Fallback { get; } = new(7, [new XsaveComponent(2, 0x240, 0x100)]);

    public XsaveLayout(ulong supportedXcr0, IReadOnlyList<XsaveComponent> components)
    {
        SupportedXcr0 = supportedXcr0;
        Components = components;
    }

    /// <summary>kvm_caps.supported_xcr0: the XSTATE_BV bits KVM_SET_XSAVE accepts.</summary>
    public ulong SupportedXcr0 { get; }

    /// <summary>The components above SSE in <see cref="SupportedXcr0"/>, with their standard-format offsets.</summary>
    public IReadOnlyList<XsaveComponent> Components { get; }

    /// <summary>
    /// The layout that <paramref name="entries"/> (a KVM_GET_SUPPORTED_CPUID answer) describes, read as the emulator
    /// reads a host CPU's (<see cref="X86CpuModel.FromSupportedCpuid"/>).
    /// </summary>
    public static XsaveLayout FromSupportedCpuid(ReadOnlySpan<kvm_cpuid_entry2> entries)
    {
        var model = X86CpuModel.FromSupportedCpuid("the kernel under test", entries);
        return model.SupportedXcr0 == 0 ? Fallback : new XsaveLayout(model.SupportedXcr0, model.Components);
    }

    /// <summary>
    /// KVM_GET_SUPPORTED_CPUID on a /dev/kvm of <paramref name="kernel"/> (opened and closed here), or
    /// <see cref="Fallback"/> when it cannot be read.
    /// </summary>
    public static XsaveLayout Read(IKernel kernel)
    {
        const int Room = 256;
        if (kernel.Open("/dev/kvm", LinuxConstants.O_RDWR, out var opened) < 0 || opened is null) return Fallback;
        using var system = opened;
        var buffer = new byte[Marshal.SizeOf<kvm_cpuid2>() + Room * Marshal.SizeOf<kvm_cpuid_entry2>()];
        MemoryMarshal.Write(buffer, new kvm_cpuid2 { nent = Room });
        if (kernel.Ioctl(system, KvmIoctls.KVM_GET_SUPPORTED_CPUID, buffer) != 0) return Fallback;
        int count = (int)Math.Min(MemoryMarshal.Read<kvm_cpuid2>(buffer).nent, Room);
        return FromSupportedCpuid(MemoryMarshal.Cast<byte, kvm_cpuid_entry2>(buffer.AsSpan(Marshal.SizeOf<kvm_cpuid2>()))[..count]);
    }

    /// <summary>
    /// True when the bytes of component <paramref name="bit"/> in the standard-format <paramref name="image"/> are its
    /// init value (Intel SDM Vol. 1 13.6 / AMD APM Vol. 2 §11.5): x87 — FCW 0x37f, FSW, the abridged FTW, FOP, FIP and
    /// FDP 0, ST0–ST7 (their 16-byte slots) 0; SSE — XMM0–15 0 and MXCSR 0x1f80 (this AMD host counts MXCSR: an image
    /// with MXCSR 0x1f81 and zero XMM keeps SSE's bit after every run); any other component — all its bytes 0 (AVX's
    /// upper halves, AVX-512's opmask and ZMM parts, PKRU). Null for a component this layout does not know.
    /// </summary>
    public bool? IsInit(ReadOnlySpan<byte> image, int bit)
    {
        switch (bit)
        {
            case 0:
                return BinaryPrimitives.ReadUInt16LittleEndian(image) == FcwInit
                    && !image[2..MxcsrOffset].ContainsAnyExcept((byte)0)
                    && !image.Slice(FpRegsOffset, 128).ContainsAnyExcept((byte)0);
            case 1:
                return BinaryPrimitives.ReadUInt32LittleEndian(image[MxcsrOffset..]) == MxcsrInit
                    && !image.Slice(XmmOffset, 256).ContainsAnyExcept((byte)0);
        }
        foreach (var c in Components)
            if (c.Bit == bit) return c.Offset + c.Size <= image.Length && !image.Slice(c.Offset, c.Size).ContainsAnyExcept((byte)0);
        return null;
    }

    /// <summary>Bytes of <see cref="AsWrittenByCpu"/>'s first argument: FCW, FSW, FTW, a reserved byte, FOP, FIP, FDP.</summary>
    public const int X87FieldsSize = 24;

    /// <summary>
    /// Rewrites x87 state into the form the CPU writes when XSAVES really saves it from the registers: FCW with the
    /// bits an x87 unit holds (reserved bit 6 reads 1; 7 and 13–15 read 0), FSW with ES (7) and B (15) computed from
    /// its flags and FCW's masks, the byte after the abridged FTW 0, the 6 padding bytes of each ST slot 0, and — with
    /// ES clear — FOP, FIP and FDP 0 (the error pointers survive only with an exception pending: the rule of AMD's
    /// X86_BUG_FXSAVE_LEAK, arch/x86/kernel/fpu/core.c restore_fpregs_from_fpstate, although this CPU reports
    /// XSAVEERPTR and the kernel does not set the bug); with ES set FIP's and FDP's top byte reads 0xff.
    /// <paramref name="fields"/> is the <see cref="X87FieldsSize"/> bytes from FCW (legacy-area offset 0, kvm_fpu.fcw),
    /// <paramref name="st"/> the 128 bytes of ST0–ST7 (offset 32, kvm_fpu.fpr). Idempotent.
    /// <para>
    /// Why (KernelSession's comparison after a run that saved x87): kvm_put_guest_fpu's XSAVES normally leaves the
    /// x87 area alone — the bytes KVM_SET_FPU / KVM_SET_XSAVE stored come back verbatim, FOP/FIP/FDP included — but
    /// after some runs the CPU writes it in its own form. Seen on the Genoa kvm_pvm host (C probes, session 15:
    /// KVM_SET_XSAVE with FP|SSE and x87 in use, four KVM_RUNs of a hlt guest with the thread moved between the 2 CPUs
    /// between them, KVM_GET_XSAVE): FCW 0xf4bf / FSW 0x3801 came back in this form 26–28 times per 1000–1500 with a
    /// busy thread on CPU 0 and 4–9 per 1000 without, FSW 0x8081 (stored ES and B, every exception masked) 11–40 and
    /// 2–4; immediate exits 0–4 of 1000; a stored byte 5 of 0x5a 49 times in 3000, 0 every time; and over 14000 runs
    /// never a third form. FSW.ES does not protect the pointers — the CPU computes it, and with every exception masked
    /// (as the fuzzer's images have) it is 0; only an unmasked IM with IE pending kept FOP and FIP/FDP (top byte 0xff,
    /// 87 of 87 rewritten). x87 not in use (XSTATE_BV's FP bit clear after the run): the area is not written, never
    /// rewritten in 16000 runs. The rate depends on scheduling (a migration or preemption between the XRSTORS and the
    /// XSAVES; 800 plain immediate exits in session 14 never showed it), so neither kernel can be expected to do it on
    /// a given run: the differential fuzzer's KVM_GET_FPU at op 99863 of seed 1 read FOP/FIP/FDP 0 once, and its
    /// KVM_GET_XSAVE at op 19179 of seed 1 once read FCW 0x147f for 0xf4bf with the pointers and ST padding 0.
    /// </para>
    /// </summary>
    public static void AsWrittenByCpu(Span<byte> fields, Span<byte> st)
    {
        const ushort FcwHeld = 0x1f3f, FcwReadsOne = 0x40, FswHeld = 0x7f7f, EsAndB = 0x8080;
        ushort fcw = (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(fields) & FcwHeld) | FcwReadsOne);
        ushort fsw = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(fields[2..]) & FswHeld);
        bool es = (fsw & ~fcw & 0x3f) != 0;
        if (es) fsw |= EsAndB;
        BinaryPrimitives.WriteUInt16LittleEndian(fields, fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(fields[2..], fsw);
        fields[5] = 0;
        if (es)
        {
            fields[15] = 0xff;
            fields[23] = 0xff;
        }
        else
        {
            fields[6..X87FieldsSize].Clear();
        }
        for (int i = 0; i < 8; i++) st.Slice(i * 16 + 10, 6).Clear();
    }

    /// <summary>
    /// Clears the XSTATE_BV bit of every component whose bytes in <paramref name="image"/> are its init value; returns
    /// the bits cleared. For comparing images read back after a KVM_RUN (see <see cref="KernelSession"/>): KVM saves the
    /// guest FPU with XSAVES (kvm_put_guest_fpu), whose init optimisation writes XSTATE_BV[i] = XINUSE[i], and the
    /// architecture only promises that XINUSE[i] = 0 means init, not the converse (Intel SDM Vol. 1 13.6 "Processor
    /// Tracking of XSAVE-Managed State": a component may be reported in use while it holds its init value; AMD APM
    /// Vol. 2 §11.5, XSAVE/XRSTOR, likewise). Seen on the Genoa kvm_pvm host (a C probe in session 13: 3000 runs of a tiny real-mode
    /// guest per case): SSE's bit set with zero XMM and MXCSR 0x1f80 after 0.1–2% of KVM_RUNs (immediate exits too),
    /// more under load and when the thread moves between CPUs; AVX's bit with it (still zero) when ZMM_Hi256 is in
    /// use; never x87's or an AVX-512 component's, never a bit missing for a component whose data is not init, and
    /// never without a run (3000 of 3000 GETs after KVM_SET_XSAVE keep the bits given). Two vCPUs with the same history
    /// then read different headers over the same bytes (DifferentialFuzzerTests.The_real_kernel_agrees_with_itself
    /// failed so once, at op 1434 of seed 7).
    /// </summary>
    public ulong ClearInitBits(Span<byte> image)
    {
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(image[HeaderOffset..]);
        ulong cleared = 0;
        for (int bit = 0; bit < 64; bit++)
            if ((bv & (1UL << bit)) != 0 && IsInit(image, bit) == true) cleared |= 1UL << bit;
        BinaryPrimitives.WriteUInt64LittleEndian(image[HeaderOffset..], bv & ~cleared);
        return cleared;
    }

    /// <summary>
    /// Shows <paramref name="image"/> as if SSE were init: XSTATE_BV's SSE bit cleared, the XMM bytes 0, and — when AVX
    /// is not in XSTATE_BV either, so fpu/xstate.c __copy_xstate_to_uabi_buf copies MXCSR and its mask from the init
    /// state on one kernel and from the fpstate on the other — those 8 bytes 0. For state only one kernel may hold
    /// (KernelSession's _sseUncertain).
    /// </summary>
    public static void ForgetSse(Span<byte> image)
    {
        const ulong Avx = 4;
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(image[HeaderOffset..]);
        BinaryPrimitives.WriteUInt64LittleEndian(image[HeaderOffset..], bv & ~Sse);
        image.Slice(XmmOffset, 256).Clear();
        if ((bv & Avx) == 0) image.Slice(MxcsrOffset, 8).Clear();
    }
}

