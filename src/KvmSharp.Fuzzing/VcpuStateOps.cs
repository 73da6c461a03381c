// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.VcpuStateRoundTrip"/> draws from a seed: a kvm_fpu, kvm_xcrs, kvm_vcpu_events, kvm_mp_state,
/// kvm_debugregs or XSAVE image (read back with KVM_GET_XSAVE or KVM_GET_XSAVE2) to SET, valid and not (reserved and padding bytes, flags, nr_xcrs, XCR0 values, exception vectors,
/// NMI counts, MP states, DR6/DR7 high bits), and a CPUID table to set before XCR0. Kept to values both
/// kernels must agree on whatever the machine:
/// <list type="bullet">
/// <item>no CPUID table offers an XCR0 bit (<see cref="CpuidTable"/>): guest_supported_xcr0 is 0 on both kernels
/// with or without a table, so an XCR0 value's fate never depends on the host's supported_xcr0;</item>
/// <item>FCW keeps every x87 exception masked and MXCSR is valid with its exception masks set: the host restores this
/// image with FXRSTOR/XRSTOR on the next KVM_RUN, and an invalid MXCSR faults there (the kernel's "Bad FPU state"
/// warning) — not a state to drive a shared machine into. XSAVE images likewise: FCW/FSW as above and MXCSR valid
/// with its masks set, except now and then a reserved MXCSR bit in an image the kernel refuses (xstate_bv with FP,
/// SSE or AVX) or does not store (xstate_bv without them).</item>
/// </list>
/// </summary>
internal static class VcpuStateOps
{
    /// <summary>The ioctl pairs, by <see cref="OpKind.VcpuStateRoundTrip"/>'s E &amp; 7.</summary>
    internal static readonly string[] Names = ["FPU", "XCRS", "VCPU_EVENTS", "MP_STATE", "DEBUGREGS", "XSAVE", "XSAVE2"];

    /// <summary>The SET's name of <paramref name="kind"/>: XSAVE2 is read back with KVM_GET_XSAVE2 but set with KVM_SET_XSAVE.</summary>
    public static string SetName(int kind) => kind == 6 ? "XSAVE" : Names[kind];

    /// <summary>E bit: KVM_SET_CPUID2 of a leaf-0xD table first (XCRS only).</summary>
    public const int CpuidFirst = 8;

    /// <summary>E bit: no SET, only the GET.</summary>
    public const int GetOnly = 16;

    public static (uint Set, uint Get, int Size) Ioctls(int kind) => kind switch
    {
        0 => (KvmIoctls.KVM_SET_FPU, KvmIoctls.KVM_GET_FPU, Marshal.SizeOf<kvm_fpu>()),
        1 => (KvmIoctls.KVM_SET_XCRS, KvmIoctls.KVM_GET_XCRS, Marshal.SizeOf<kvm_xcrs>()),
        2 => (KvmIoctls.KVM_SET_VCPU_EVENTS, KvmIoctls.KVM_GET_VCPU_EVENTS, Marshal.SizeOf<kvm_vcpu_events>()),
        3 => (KvmIoctls.KVM_SET_MP_STATE, KvmIoctls.KVM_GET_MP_STATE, Marshal.SizeOf<kvm_mp_state>()),
        4 => (KvmIoctls.KVM_SET_DEBUGREGS, KvmIoctls.KVM_GET_DEBUGREGS, Marshal.SizeOf<kvm_debugregs>()),
        5 => (KvmIoctls.KVM_SET_XSAVE, KvmIoctls.KVM_GET_XSAVE, Marshal.SizeOf<kvm_xsave>()),
        _ => (KvmIoctls.KVM_SET_XSAVE, KvmIoctls.KVM_GET_XSAVE2, Marshal.SizeOf<kvm_xsave>()),
    };

    /// <summary>
    /// The SET argument of <paramref name="kind"/> drawn from <paramref name="seed"/>; XSAVE images follow
    /// <paramref name="layout"/>, the kernel's own (both kernels of a comparison have the same one).
    /// </summary>
    public static byte[] SetArgument(int kind, ulong seed, XsaveLayout? layout = null)
    {
        var rng = new Random(unchecked((int)seed * 7 + 0x5E7));
        return kind switch
        {
            0 => ToBytes(Fpu(rng)),
            1 => ToBytes(Xcrs(rng)),
            2 => ToBytes(Events(rng)),
            3 => ToBytes(new kvm_mp_state { mp_state = MpState(rng) }),
            4 => ToBytes(DebugRegs(rng)),
            _ => Xsave(rng, layout ?? XsaveLayout.Fallback),
        };
    }

    /// <summary>
    /// A table of one entry without leaf 0xD (CPUID.0 with a max leaf past 0xD, or CPUID.0x80000000): guest_supported_xcr0
    /// is 0 on both kernels, so only XCR0 = 1 is accepted. Never leaf 0xD itself: this host rewrites CPUID.0xD.0
    /// (EAX becomes its supported_xcr0 with SIGNIFCANT_INDEX and 0 without, ECX likewise) and XCR0's rules follow the
    /// rewritten table (HostDeviations.KvmPvmSetCpuidRewritesLeaves).
    /// </summary>
    public static kvm_cpuid_entry2[] CpuidTable(ulong seed)
    {
        var rng = new Random(unchecked((int)seed * 11 + 0xD));
        var e = rng.Next(2) == 0
            ? new kvm_cpuid_entry2 { function = 0, eax = (uint)rng.Next(0xD, 0x20), ebx = 0x6874_7541, ecx = 0x444d_4163, edx = 0x6974_6e65 }
            : new kvm_cpuid_entry2 { function = 0x8000_0000, eax = 0x8000_0000 + (uint)rng.Next(8) };
        return [e];
    }

    private static kvm_fpu Fpu(Random rng)
    {
        var f = new kvm_fpu
        {
            fcw = (ushort)(rng.Next(3) == 0 ? 0x37f : rng.Next(0x10000) | 0x3f),
            fsw = (ushort)(rng.Next(3) == 0 ? 0 : rng.Next(0x10000) & ~0x80 & ~0x8000),
            ftwx = (byte)(rng.Next(3) == 0 ? 0 : rng.Next(256)),
            pad1 = (byte)(rng.Next(4) == 0 ? rng.Next(256) : 0),
            last_opcode = (ushort)(rng.Next(3) == 0 ? 0 : rng.Next(0x800)),
            last_ip = rng.Next(3) == 0 ? 0 : (ulong)rng.NextInt64(),
            last_dp = rng.Next(3) == 0 ? 0 : (ulong)rng.NextInt64(),
            // MXCSR: every exception masked, random flags, rounding and FZ; never a reserved bit or DAZ.
            mxcsr = rng.Next(3) == 0 ? 0x1f80 : 0x1f80u | (uint)rng.Next(0x40) | ((uint)rng.Next(4) << 13) | ((uint)rng.Next(2) << 15),
            pad2 = rng.Next(4) == 0 ? (uint)rng.Next() : 0,
        };
        if (rng.Next(4) != 0) rng.NextBytes(f.fpr);
        if (rng.Next(4) != 0) rng.NextBytes(f.xmm);
        return f;
    }

    private static kvm_xcrs Xcrs(Random rng)
    {
        var x = new kvm_xcrs
        {
            nr_xcrs = rng.Next(8) switch { < 4 => 1, 4 => 0, 5 => (uint)rng.Next(2, 17), 6 => 17, _ => (uint)rng.Next() },
            flags = rng.Next(10) == 0 ? 1u << rng.Next(32) : 0,
        };
        int entries = rng.Next(3) == 0 ? rng.Next(1, 17) : 1;
        for (int i = 0; i < entries; i++)
        {
            x.xcrs[i] = new kvm_xcr
            {
                xcr = rng.Next(5) switch { < 3 => 0, 3 => 1, _ => (uint)rng.Next() },
                reserved = rng.Next(6) == 0 ? (uint)rng.Next() : 0,
                value = Xcr0(rng),
            };
        }
        if (rng.Next(6) == 0) x.padding[rng.Next(16)] = (ulong)rng.NextInt64();
        return x;
    }

    /// <summary>XCR0: subsets of x87/SSE/AVX (with and without x87, AVX without SSE), or with bits no CPUID table here offers.</summary>
    private static ulong Xcr0(Random rng) => rng.Next(6) switch
    {
        < 3 => (ulong)rng.Next(8),
        3 => 1UL | (1UL << rng.Next(3, 64)),
        4 => (uint)rng.Next(8) | (1UL << rng.Next(3, 20)),
        _ => (ulong)rng.NextInt64(),
    };

    private static kvm_vcpu_events Events(Random rng)
    {
        byte Flag() => (byte)(rng.Next(6) switch { < 3 => 0, < 5 => 1, _ => rng.Next(256) });
        var e = new kvm_vcpu_events
        {
            exception_injected = Flag(),
            exception_nr = (byte)(rng.Next(5) switch { 0 => 2, 1 => rng.Next(3, 5), 2 => rng.Next(32, 34), 3 => rng.Next(256), _ => rng.Next(32) }),
            exception_has_error_code = Flag(),
            exception_pending = Flag(),
            exception_error_code = rng.Next(3) == 0 ? 0 : (uint)rng.Next(),
            interrupt_injected = Flag(),
            interrupt_nr = (byte)rng.Next(256),
            interrupt_soft = Flag(),
            interrupt_shadow = (byte)(rng.Next(5) == 0 ? rng.Next(256) : rng.Next(4)),
            nmi_injected = Flag(),
            nmi_pending = (byte)(rng.Next(5) == 0 ? rng.Next(256) : rng.Next(4)),
            nmi_masked = Flag(),
            nmi_pad = (byte)(rng.Next(6) == 0 ? rng.Next(256) : 0),
            sipi_vector = rng.Next(4) == 0 ? (uint)rng.Next() : 0,
            // Mostly NMI_PENDING, SIPI_VECTOR, SHADOW and SMM; PAYLOAD and TRIPLE_FAULT (refused unless an EnableCap op
            // turned KVM_CAP_EXCEPTION_PAYLOAD / KVM_CAP_X86_TRIPLE_FAULT_EVENT on; TRIPLE_FAULT then makes or cancels a
            // KVM_EXIT_SHUTDOWN) and unknown bits now and then.
            flags = rng.Next(10) switch
            {
                < 7 => (uint)rng.Next(16),
                7 => (uint)rng.Next(64),
                8 => (uint)rng.Next(16) | (1u << rng.Next(6, 32)),
                _ => 0,
            },
            smi_smm = (byte)(rng.Next(6) == 0 ? rng.Next(1, 256) : 0),
            smi_pending = (byte)(rng.Next(6) == 0 ? rng.Next(1, 256) : 0),
            smi_smm_inside_nmi = (byte)(rng.Next(6) == 0 ? rng.Next(1, 256) : 0),
            smi_latched_init = (byte)(rng.Next(6) == 0 ? rng.Next(1, 256) : 0),
            triple_fault_pending = (byte)(rng.Next(6) == 0 ? rng.Next(1, 256) : 0),
            exception_has_payload = Flag(),
            exception_payload = rng.Next(3) == 0 ? 0 : (ulong)rng.NextInt64(),
        };
        if (rng.Next(5) == 0) e.reserved[rng.Next(26)] = (byte)rng.Next(1, 256);
        return e;
    }

    private static uint MpState(Random rng) => rng.Next(6) switch
    {
        < 3 => 0,
        3 => (uint)rng.Next(1, 12),
        4 => uint.MaxValue,
        _ => (uint)rng.Next(),
    };

    private static kvm_debugregs DebugRegs(Random rng)
    {
        ulong Dr(ulong reset) => rng.Next(6) switch
        {
            0 => reset,
            1 => 0,
            2 => (uint)rng.Next() | ((ulong)(uint)rng.Next(2) << 31),
            3 => reset | (1UL << rng.Next(32, 64)),
            4 => (ulong)rng.NextInt64(),
            _ => reset | (uint)rng.Next(0x10000),
        };
        var d = new kvm_debugregs
        {
            dr6 = Dr(0xffff0ff0),
            dr7 = Dr(0x400),
            flags = rng.Next(10) == 0 ? 1UL << rng.Next(64) : 0,
        };
        for (int i = 0; i < 4; i++) d.db[i] = rng.Next(3) == 0 ? 0 : (ulong)rng.NextInt64() ^ ((ulong)(uint)rng.Next(2) << 63);
        if (rng.Next(5) == 0) d.reserved[rng.Next(9)] = (ulong)rng.NextInt64();
        return d;
    }

    /// <summary>
    /// A standard-format XSAVE image in the kernel's layout (<see cref="XsaveLayout"/>, from its supported CPUID):
    /// xstate_bv mostly a subset of its supported_xcr0 (x87|SSE|AVX|PKRU on Milan; x87|SSE|AVX and AVX-512's opmask,
    /// ZMM_Hi256 and Hi16_ZMM on Genoa), now and then a bit beyond it, a non-zero xcomp_bv or reserved header byte;
    /// random registers, MXCSR_MASK, component bytes and ignored bytes (416..511, beyond the components).
    /// </summary>
    private static byte[] Xsave(Random rng, XsaveLayout layout)
    {
        var image = new byte[Marshal.SizeOf<kvm_xsave>()];
        var fpu = Fpu(rng);
        // The legacy (fxsave) area from the kvm_fpu drawn, at its offsets (kvm_fpu puts the registers first; until
        // Dec 2026 its bytes were copied as they are, so MXCSR was an ST byte and most images were refused).
        BinaryPrimitives.WriteUInt16LittleEndian(image, fpu.fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(2), fpu.fsw);
        image[4] = fpu.ftwx;
        image[5] = fpu.pad1;
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(6), fpu.last_opcode);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(8), fpu.last_ip);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(16), fpu.last_dp);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(24), fpu.mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(28), rng.Next(3) == 0 ? 0x2ffff : (uint)rng.Next()); // MXCSR_MASK
        ((ReadOnlySpan<byte>)fpu.fpr).CopyTo(image.AsSpan(32));
        ((ReadOnlySpan<byte>)fpu.xmm).CopyTo(image.AsSpan(160));
        if (rng.Next(3) == 0) rng.NextBytes(image.AsSpan(416, 96));
        int end = XsaveLayout.HeaderOffset + 64;
        foreach (var c in layout.Components)
        {
            end = Math.Max(end, c.Offset + c.Size);
            if (c.Offset + c.Size > image.Length || rng.Next(2) != 0) continue;
            // PKRU: its 4-byte value (the rest of its 8 bytes stays 0); any other component: all of its bytes.
            if (c.Bit == 9) BitConverter.TryWriteBytes(image.AsSpan(c.Offset), (uint)rng.Next());
            else rng.NextBytes(image.AsSpan(c.Offset, c.Size));
        }
        if (rng.Next(4) == 0 && end < image.Length) rng.NextBytes(image.AsSpan(end));
        ulong supported = layout.SupportedXcr0;
        ulong bv = rng.Next(10) switch
        {
            < 7 => supported & (ulong)rng.NextInt64(),
            7 => 0,
            8 => (supported & (ulong)rng.NextInt64()) | (1UL << rng.Next(3, 64)),
            _ => (ulong)rng.NextInt64(),
        };
        BitConverter.TryWriteBytes(image.AsSpan(XsaveLayout.HeaderOffset), bv);
        if (rng.Next(12) == 0) BitConverter.TryWriteBytes(image.AsSpan(520), 1UL << rng.Next(64)); // xcomp_bv
        if (rng.Next(12) == 0) image[528 + rng.Next(48)] = (byte)rng.Next(1, 256);
        if (rng.Next(10) == 0) BitConverter.TryWriteBytes(image.AsSpan(24), fpu.mxcsr | (1u << rng.Next(16, 32))); // refused or not stored
        return image;
    }

    private static byte[] ToBytes<T>(T value) where T : unmanaged => MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref value, 1)).ToArray();
}
