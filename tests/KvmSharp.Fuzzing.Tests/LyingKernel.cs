// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>A wrong answer planted in the real kernel's, for the fuzzer to find.</summary>
public enum PlantedBug
{
    /// <summary>fallocate(KEEP_SIZE|PUNCH_HOLE) beyond a guest_memfd's end answers EINVAL instead of succeeding.</summary>
    PunchBeyondEnd,

    /// <summary>
    /// KVM_SET_USER_MEMORY_REGION2 of a plain slot (no KVM_MEM_GUEST_MEMFD) with KVM_MEM_LOG_DIRTY_PAGES answers EINVAL
    /// where the kernel succeeded: a bug in a call every kernel has, with or without guest_memfd.
    /// </summary>
    PlainSlotDirtyLogging,

    /// <summary>KVM_GET_DIRTY_LOG that succeeded reports page 0 flipped (dirty when clean, clean when dirty).</summary>
    DirtyBitmapBit,

    /// <summary>KVM_SET_MSRS that processed entries reports one fewer (msr_io's partial count off by one).</summary>
    SetMsrsCountShort,

    /// <summary>KVM_GET_CPUID2 that succeeded reports the first entry's EAX with bit 0 flipped.</summary>
    CpuidEaxBit,

    /// <summary>KVM_GET_FPU that succeeded reports FCW's low byte with bit 0 flipped.</summary>
    FpuByteFlip,

    /// <summary>
    /// Not a bug: what XSAVES's init optimisation may do on real hardware (XsaveLayout.ClearInitBits), as if it did it
    /// at every KVM_RUN — after a run, KVM_GET_XSAVE(2) reports SSE in XSTATE_BV while XMM is 0 and MXCSR 0x1f80, and
    /// KVM_GET_FPU shows the saved XMM bytes zeroed (XSAVES wrote the init values) until KVM_SET_FPU or a KVM_SET_XSAVE
    /// with SSE writes them again. The fuzzer must not report it.
    /// </summary>
    SpuriousSseAfterRun,

    /// <summary>
    /// The image half of <see cref="SpuriousSseAfterRun"/> on a vCPU that never ran: there KVM_GET_XSAVE reports the bits
    /// KVM_SET_XSAVE was given, so this is a wrong answer the fuzzer must find.
    /// </summary>
    SpuriousSseWithoutRun,
}

/// <summary>
/// The real kernel with one planted bug (<see cref="PlantedBug"/>). The fuzzer must find it and reduce it to a short
/// reproducer.
/// </summary>
internal sealed class LyingKernel(IKernel inner, PlantedBug bug = PlantedBug.PunchBeyondEnd) : DelegatingKernel(inner)
{
    private readonly Dictionary<int, long> _gmemSizes = [];

    public override string Name => "lying";

    /// <summary>
    /// vCPU descriptors run since KVM_SET_FPU / KVM_SET_XSAVE with SSE last wrote the XMM bytes: by identity, as a
    /// number comes back for another descriptor once closed (and the close goes to the inner kernel).
    /// </summary>
    private readonly HashSet<KernelFd> _ranSinceXmmWritten = new(ReferenceEqualityComparer.Instance);

    /// <summary>vCPU descriptors run since a KVM_SET_XSAVE last set XSTATE_BV (to the bits it was given).</summary>
    private readonly HashSet<KernelFd> _ranSinceXsaveSet = new(ReferenceEqualityComparer.Instance);

    /// <summary>How many images got the spurious SSE bit (<see cref="PlantedBug.SpuriousSseAfterRun"/>, <see cref="PlantedBug.SpuriousSseWithoutRun"/>).</summary>
    public int SpuriousSseBits { get; private set; }

    /// <summary>How many KVM_GET_FPU answers had stale XMM bytes zeroed (<see cref="PlantedBug.SpuriousSseAfterRun"/>).</summary>
    public int ZeroedXmm { get; private set; }

    public override long Ioctl(KernelFd fd, uint request, ulong arg)
    {
        if (request == KvmIoctls.KVM_RUN && !fd.IsClosed)
        {
            _ranSinceXmmWritten.Add(fd);
            _ranSinceXsaveSet.Add(fd);
        }
        return Inner.Ioctl(fd, request, arg);
    }

    public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
    {
        long rc = Inner.Ioctl(fd, request, arg);
        if (request == KvmIoctls.KVM_CREATE_GUEST_MEMFD && rc >= 0)
            _gmemSizes[(int)rc] = (long)BitConverter.ToUInt64(arg);
        if (bug == PlantedBug.PlainSlotDirtyLogging && request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2 && rc == 0)
        {
            var region = MemoryMarshal.Read<kvm_userspace_memory_region2>(arg);
            if (region.memory_size != 0 && (region.flags & KvmConstants.KVM_MEM_GUEST_MEMFD) == 0 && (region.flags & KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) != 0)
                return -(long)Errno.EINVAL;
        }
        if (bug == PlantedBug.DirtyBitmapBit && request == KvmIoctls.KVM_GET_DIRTY_LOG && rc == 0)
        {
            // The bitmap is in this process (the fuzzer's scratch page or a guest run's buffer): flip page 0's bit.
            nint bitmap = (nint)MemoryMarshal.Read<kvm_dirty_log>(arg).dirty_bitmap;
            Marshal.WriteByte(bitmap, (byte)(Marshal.ReadByte(bitmap) ^ 1));
        }
        if (bug == PlantedBug.SetMsrsCountShort && request == KvmIoctls.KVM_SET_MSRS && rc > 0)
            return rc - 1;
        if (bug == PlantedBug.CpuidEaxBit && request == KvmIoctls.KVM_GET_CPUID2 && rc == 0 && MemoryMarshal.Read<kvm_cpuid2>(arg).nent > 0)
        {
            int at = Marshal.SizeOf<kvm_cpuid2>() + (int)Marshal.OffsetOf<kvm_cpuid_entry2>(nameof(kvm_cpuid_entry2.eax));
            arg[at] ^= 1;
        }
        if (bug == PlantedBug.FpuByteFlip && request == KvmIoctls.KVM_GET_FPU && rc == 0)
            arg[(int)Marshal.OffsetOf<kvm_fpu>(nameof(kvm_fpu.fcw))] ^= 1;
        if (bug is PlantedBug.SpuriousSseAfterRun or PlantedBug.SpuriousSseWithoutRun && rc == 0 && !fd.IsClosed)
            SpuriousSse(fd, request, arg);
        return rc;
    }

    private void SpuriousSse(KernelFd fd, uint request, Span<byte> arg)
    {
        const int Header = 512;
        bool ran = _ranSinceXmmWritten.Contains(fd);
        if (request == KvmIoctls.KVM_SET_FPU || (request == KvmIoctls.KVM_SET_XSAVE && (BinaryPrimitives.ReadUInt64LittleEndian(arg[Header..]) & 2) != 0))
            _ranSinceXmmWritten.Remove(fd);
        if (request == KvmIoctls.KVM_SET_XSAVE) _ranSinceXsaveSet.Remove(fd);
        if ((request == KvmIoctls.KVM_GET_XSAVE || request == KvmIoctls.KVM_GET_XSAVE2) && (_ranSinceXsaveSet.Contains(fd) || bug == PlantedBug.SpuriousSseWithoutRun))
        {
            ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(arg[Header..]);
            if ((bv & 2) == 0 && BinaryPrimitives.ReadUInt32LittleEndian(arg[24..]) == 0x1f80 && !arg.Slice(160, 256).ContainsAnyExcept((byte)0))
            {
                BinaryPrimitives.WriteUInt64LittleEndian(arg[Header..], bv | 2);
                SpuriousSseBits++;
            }
        }
        if (request == KvmIoctls.KVM_GET_FPU && ran && bug == PlantedBug.SpuriousSseAfterRun)
        {
            var image = new byte[Marshal.SizeOf<kvm_xsave>()];
            var xmm = arg.Slice((int)Marshal.OffsetOf<kvm_fpu>(nameof(kvm_fpu.xmm)), 256);
            if (Inner.Ioctl(fd, KvmIoctls.KVM_GET_XSAVE, image) == 0 && (BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(Header)) & 2) == 0
                && xmm.ContainsAnyExcept((byte)0))
            {
                xmm.Clear();
                ZeroedXmm++;
            }
        }
    }

    public override long Fallocate(KernelFd fd, int mode, long offset, long length)
    {
        long rc = Inner.Fallocate(fd, mode, offset, length);
        bool punch = mode == (LinuxConstants.FALLOC_FL_KEEP_SIZE | LinuxConstants.FALLOC_FL_PUNCH_HOLE);
        if (bug == PlantedBug.PunchBeyondEnd && rc == 0 && punch && !fd.IsClosed && _gmemSizes.TryGetValue(fd.Number, out long size) && offset >= size && length > 0)
            return -(long)Errno.EINVAL;
        return rc;
    }
}
