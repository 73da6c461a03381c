// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>KVM_ENABLE_CAP on a VM or a vCPU: the same struct, the same errors, the same message.</summary>
internal static class EnableCap
{
    /// <summary>flags 0 and up to four arguments.</summary>
    public static kvm_enable_cap Build(int capability, ReadOnlySpan<ulong> args)
    {
        if (args.Length > 4) throw new ArgumentException($"kvm_enable_cap has 4 arguments, {args.Length} given", nameof(args));
        var cap = new kvm_enable_cap { cap = (uint)capability };
        for (int i = 0; i < args.Length; i++) cap.args[i] = args[i];
        return cap;
    }

    /// <summary>
    /// Issues the ioctl on <paramref name="fd"/>; a failure is a <see cref="KvmException"/> naming the capability and
    /// arguments (after <paramref name="target"/>, e.g. "vcpu=0 "), and EINVAL for a capability
    /// <paramref name="checkExtension"/> reports as 0 a <see cref="KvmCapabilityException"/>.
    /// </summary>
    public static void Enable(IKernel kernel, KernelFd fd, kvm_enable_cap cap, string target, Func<int, long> checkExtension)
    {
        long rc = kernel.Ioctl(fd, KvmIoctls.KVM_ENABLE_CAP, KvmCall.Bytes(ref cap));
        if (!KvmCall.IsError(rc)) return;
        string name = KvmCaps.NameOf((int)cap.cap) ?? cap.cap.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string request = $"{target}cap={name} flags=0x{cap.flags:X} args=[0x{cap.args[0]:X}, 0x{cap.args[1]:X}, 0x{cap.args[2]:X}, 0x{cap.args[3]:X}]";
        if (rc == -(long)Errno.EINVAL && cap.cap <= int.MaxValue)
        {
            long reported = checkExtension((int)cap.cap);
            if (reported == 0) throw new KvmCapabilityException("KVM_ENABLE_CAP", (int)-rc, request, name, reported);
        }
        KvmCall.ThrowKvm(rc, "KVM_ENABLE_CAP", request);
    }
}
