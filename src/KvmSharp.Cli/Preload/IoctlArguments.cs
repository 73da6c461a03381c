// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Kernel;

namespace KvmSharp.Cli.Preload;

/// <summary>
/// ioctl(2)'s third argument as the program passed it, turned into the boundary's two forms: an integer for a request
/// without a size (_IO: KVM_CREATE_VM, KVM_RUN …), else the bytes at that address — the request's _IOC_SIZE, or for
/// the requests whose struct ends in an array (kvm_msrs, kvm_cpuid2 …) or whose number encodes a pointer's size
/// (KVM_MEMORY_ENCRYPT_OP), the length the kernel reads from the header. Only bytes the kernel changed are written
/// back, so a program's other data next to the struct is never rewritten.
/// </summary>
internal static class IoctlArguments
{
    /// <summary>Beyond this the kernel refuses (E2BIG/ENOMEM) long before copying: enough for every variable struct.</summary>
    private const int MaxLength = 1 << 20;

    /// <summary>What a request read, once it succeeded (the bytes handed to the kernel, after it ran).</summary>
    public delegate void Succeeded(uint request, ReadOnlySpan<byte> argument);

    /// <summary>
    /// ioctl(fd, request, arg) of the program on <paramref name="kernel"/>; <paramref name="realKernel"/>: the kernel
    /// is the real one (traced), which gets the program's own pointer (<see cref="PassOn"/>).
    /// </summary>
    public static long Call(IKernel kernel, KernelFd fd, uint request, nuint arg, bool realKernel, Succeeded? succeeded = null)
    {
        uint direction = request >> 30;
        int size = (int)((request >> 16) & 0x3fff);
        // _IO, or a NULL pointer, which some requests take as "none" (KVM_SET_SIGNAL_MASK): the integer itself.
        if (direction == 0 || arg == 0) return kernel.Ioctl(fd, request, (ulong)arg);
        int length = Math.Min(MaxLength, ArgumentLength(request, size, arg));
        if (realKernel) return PassOn(kernel, fd, request, arg, length);
        byte[] buffer = new byte[length];
        Span<byte> span;
        // Requests numbered _IOR whose argument the kernel only reads: treated as _IOW (read in, nothing copied out).
        bool onlyRead = request == KvmIoctls.KVM_MEMORY_ENCRYPT_REG_REGION || request == KvmIoctls.KVM_MEMORY_ENCRYPT_UNREG_REGION;
        if (direction == IocRead && !onlyRead)
        {
            // _IOR: the kernel reads nothing, fills the struct and copies it out (a fault there is its EFAULT).
            span = buffer;
        }
        else
        {
            // A struct that is partly unreadable is handed over as its readable prefix: the kernel's copy_from_user
            // of the rest then fails with EFAULT where the real one would.
            span = buffer.AsSpan(0, UserBuffers.ReadPrefix(arg, buffer));
        }
        byte[] before = span.ToArray();
        long rc = kernel.Ioctl(fd, request, span);
        // On success a _IOR/_IOWR request copied its whole struct out (copy_to_user(argp, &s, sizeof(s))): every
        // byte is written, so an unwritable one is EFAULT even where the value did not change. Otherwise (and for
        // what follows the struct) only the bytes the kernel changed are written back.
        int whole = rc >= 0 && (direction & IocRead) != 0 && !onlyRead ? Math.Min(size, span.Length) : 0;
        bool written = UserBuffers.Write(arg, span[..whole]) && UserBuffers.WriteChanged(arg + (nuint)whole, before.AsSpan(whole), span[whole..]);
        if (!written && rc >= 0) return -(long)Errno.EFAULT;
        if (rc >= 0) succeeded?.Invoke(request, span);
        return rc;
    }

    /// <summary>
    /// The real kernel (traced): it gets the program's own pointer, so every copy and fault is its own. A struct that
    /// can be read is handed to the trace as a span over the program's memory (decoded there); one that cannot goes as
    /// the bare pointer (traced undecoded), never as a copy of what could be read.
    /// </summary>
    private static long PassOn(IKernel kernel, KernelFd fd, uint request, nuint arg, int length)
    {
        byte[] probe = new byte[length];
        if (arg == 0 || UserBuffers.ReadPrefix(arg, probe) < length) return kernel.Ioctl(fd, request, (ulong)arg);
        return kernel.Ioctl(fd, request, KvmSharp.Memory.HostMemory.UnownedSpan((nint)arg, length));
    }

    // _IOC_READ: the kernel writes the argument (include/uapi/asm-generic/ioctl.h) — but KVM_MEMORY_ENCRYPT_REG_REGION and
    // _UNREG_REGION are _IOR(KVMIO, 0xbb/0xbc, struct kvm_enc_region) that x86.c kvm_arch_vm_ioctl only copy_from_user()s.
    private const uint IocRead = 2;

    /// <summary>How many bytes at <paramref name="arg"/> the kernel may read or write for <paramref name="request"/>.</summary>
    private static int ArgumentLength(uint request, int size, nuint arg)
    {
        // struct kvm_msrs / kvm_cpuid2 / kvm_irq_routing: a u32 count, 4 bytes of padding, then the entries.
        if (request == KvmIoctls.KVM_GET_MSRS || request == KvmIoctls.KVM_SET_MSRS) return 8 + Count(arg) * 16;
        if (request == KvmIoctls.KVM_GET_SUPPORTED_CPUID || request == KvmIoctls.KVM_GET_EMULATED_CPUID ||
            request == KvmIoctls.KVM_SET_CPUID2 || request == KvmIoctls.KVM_GET_CPUID2) return 8 + Count(arg) * 40;
        if (request == KvmIoctls.KVM_SET_GSI_ROUTING) return 8 + Count(arg) * 64;
        // struct kvm_msr_list: a u32 count and u32 indices.
        if (request == KvmIoctls.KVM_GET_MSR_INDEX_LIST || request == KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST) return 4 + Count(arg) * 4;
        // struct kvm_reg_list: a u64 count and u64 ids.
        if (request == KvmArm64Ioctls.KVM_GET_REG_LIST) return 8 + Count(arg) * 8;
        // struct kvm_signal_mask: a u32 len and that many bytes of sigset (the kernel takes only 8).
        if (request == KvmIoctls.KVM_SET_SIGNAL_MASK) return 4 + Count(arg);
        // _IOWR(KVMIO, 0xba, unsigned long): the number says "a pointer", the kernel reads kvm_sev_cmd / kvm_tdx_cmd.
        if (request == KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP) return Math.Max(Unsafe.SizeOf<kvm_sev_cmd>(), Unsafe.SizeOf<kvm_tdx_cmd>());
        // KVM_GET_XSAVE2 writes KVM_CAP_XSAVE2's size (more than struct kvm_xsave when AMX is offered).
        if (request == KvmIoctls.KVM_GET_XSAVE2) return 64 * 1024;
        return size;
    }

    // The header's count, clamped: a count the kernel would refuse must not make us read a gigabyte first.
    private static int Count(nuint arg)
    {
        Span<byte> header = stackalloc byte[4];
        if (UserBuffers.ReadPrefix(arg, header) < 4) return 0;
        return (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(header), MaxLength);
    }
}
