// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>The size of <c>struct kvm_xsave</c>: KVM_GET_XSAVE's buffer and the least KVM_SET_XSAVE reads.</summary>
    public const int XsaveSize = 4096;

    // KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM, asked once: 0 = not asked yet, -1 = no KVM_GET_XSAVE2.
    private int _xsave2Size;

    /// <summary>
    /// The whole XSAVE image of the vCPU (x87, SSE, AVX and the other components the VM may use) in the kernel's
    /// standard (non-compacted) format: KVM_GET_XSAVE2 into a buffer of the VM's KVM_CAP_XSAVE2 size when that cap is
    /// offered (at least 4096 bytes), else KVM_GET_XSAVE (4096 bytes). The capability is asked once per vCPU.
    /// The kernel reports a component only when its xstate_bv bit is set (the rest reads as the init value: FCW
    /// 0x37f, MXCSR 0x1f80, zeros) and only the components of the vCPU's CPUID (FP and SSE always); see
    /// <see cref="XsaveArea"/> to read it.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public byte[] GetXsave()
    {
        int size = Xsave2Size();
        var area = new byte[size > 0 ? size : XsaveSize];
        uint request = size > 0 ? KvmIoctls.KVM_GET_XSAVE2 : KvmIoctls.KVM_GET_XSAVE;
        KvmCall.Check(Kernel.Ioctl(Handle, request, area), size > 0 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", $"vcpu={Id} size={area.Length}");
        return area;
    }

    /// <summary>
    /// KVM_SET_XSAVE: replaces the components whose xstate_bv bit is set in <paramref name="area"/> (a standard-format
    /// XSAVE image, e.g. from <see cref="GetXsave"/>); components whose bit is clear go to their init state (PKRU
    /// keeps its value). A span longer than 4096 bytes is passed whole: the kernel reads KVM_CAP_XSAVE2's size.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="area"/> is shorter than <see cref="XsaveSize"/>.</exception>
    /// <exception cref="KvmException">EINVAL: an xstate_bv bit the host does not support (kvm_caps.supported_xcr0,
    /// whatever the vCPU's CPUID), a non-zero xcomp_bv (compacted format) or header reserved byte, or MXCSR with a
    /// reserved bit while FP, SSE or AVX is in xstate_bv. EFAULT: the buffer is shorter than the kernel's size.</exception>
    public void SetXsave(ReadOnlySpan<byte> area)
    {
        if (area.Length < XsaveSize)
            throw new ArgumentException($"an XSAVE image is at least {XsaveSize} bytes, got {area.Length}", nameof(area));
        // KVM_SET_XSAVE is _IOW: the kernel only reads the buffer, so the span's bytes are never written.
        var bytes = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(area), area.Length);
        var view = new XsaveArea(area);
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_XSAVE, bytes), "KVM_SET_XSAVE",
            $"vcpu={Id} xstate_bv=0x{view.XstateBv:X} xcomp_bv=0x{view.XcompBv:X} mxcsr=0x{view.Mxcsr:X} size={area.Length}");
    }

    private int Xsave2Size()
    {
        int size = Volatile.Read(ref _xsave2Size);
        if (size != 0) return size;
        long cap = Vm.CheckExtension(KvmCaps.KVM_CAP_XSAVE2);
        size = cap > 0 && cap <= int.MaxValue ? (int)cap : -1;
        Volatile.Write(ref _xsave2Size, size);
        return size;
    }
}

/// <summary>
/// A read-only view of a standard-format XSAVE image (<see cref="Vcpu.GetXsave"/>): the legacy fxsave fields, the
/// XSAVE header and the AVX upper halves. A field of a component whose <see cref="XstateBv"/> bit is clear holds
/// that component's init value in what the kernel returns.
/// </summary>
public readonly ref struct XsaveArea
{
    /// <summary>Offset of MXCSR in the legacy area.</summary>
    public const int MxcsrOffset = 24;

    /// <summary>Offset of XMM0 in the legacy area (16 bytes per register).</summary>
    public const int XmmOffset = 160;

    /// <summary>Offset of the XSAVE header (xstate_bv, then xcomp_bv, then 48 reserved bytes).</summary>
    public const int HeaderOffset = 512;

    /// <summary>Offset of the AVX component (YMM0..15 bits 255:128, 16 bytes each): CPUID.(0xD,2).EBX on x86 hosts.</summary>
    public const int YmmOffset = 576;

    /// <summary>xstate_bv bit of the x87 state (XFEATURE_FP).</summary>
    public const ulong FeatureFp = 1;

    /// <summary>xstate_bv bit of the SSE state: XMM0..15 (MXCSR belongs to SSE and AVX).</summary>
    public const ulong FeatureSse = 2;

    /// <summary>xstate_bv bit of the AVX state: the upper halves of YMM0..15.</summary>
    public const ulong FeatureYmm = 4;

    /// <summary>xstate_bv bit of the PKRU register.</summary>
    public const ulong FeaturePkru = 0x200;

    private readonly ReadOnlySpan<byte> _bytes;

    /// <summary>A view of <paramref name="bytes"/>.</summary>
    /// <exception cref="ArgumentException">Shorter than <see cref="Vcpu.XsaveSize"/>.</exception>
    public XsaveArea(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Vcpu.XsaveSize)
            throw new ArgumentException($"an XSAVE image is at least {Vcpu.XsaveSize} bytes, got {bytes.Length}", nameof(bytes));
        _bytes = bytes;
    }

    /// <summary>The whole image.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The x87 control word (FCW).</summary>
    public ushort Fcw => BinaryPrimitives.ReadUInt16LittleEndian(_bytes);

    /// <summary>The x87 status word (FSW).</summary>
    public ushort Fsw => BinaryPrimitives.ReadUInt16LittleEndian(_bytes[2..]);

    /// <summary>MXCSR.</summary>
    public uint Mxcsr => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[MxcsrOffset..]);

    /// <summary>MXCSR_MASK: the MXCSR bits the CPU supports (the kernel reports its own mask for an init SSE state).</summary>
    public uint MxcsrMask => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[(MxcsrOffset + 4)..]);

    /// <summary>XSTATE_BV: which components the image holds (a clear bit: the component is in its init state).</summary>
    public ulong XstateBv => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[HeaderOffset..]);

    /// <summary>XCOMP_BV: 0 in the standard format (KVM_SET_XSAVE refuses anything else).</summary>
    public ulong XcompBv => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[(HeaderOffset + 8)..]);

    /// <summary>ST<paramref name="n"/> (MM<paramref name="n"/>): 10 significant bytes of a 16-byte slot.</summary>
    public ReadOnlySpan<byte> St(int n) => _bytes.Slice(32 + Index(n, 8) * 16, 16);

    /// <summary>XMM<paramref name="n"/> (the low 128 bits of YMM<paramref name="n"/>).</summary>
    public ReadOnlySpan<byte> Xmm(int n) => _bytes.Slice(XmmOffset + Index(n, 16) * 16, 16);

    /// <summary>Bits 255:128 of YMM<paramref name="n"/>.</summary>
    public ReadOnlySpan<byte> YmmHigh(int n) => _bytes.Slice(YmmOffset + Index(n, 16) * 16, 16);

    private static int Index(int n, int count) =>
        (uint)n < (uint)count ? n : throw new ArgumentOutOfRangeException(nameof(n), n, $"a register number below {count}");
}
