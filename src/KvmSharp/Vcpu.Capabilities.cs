// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_ENABLE_CAP on this vCPU with up to four arguments (kvm_enable_cap.args) and flags 0 — the vCPU-level
    /// capabilities (x86 kvm_vcpu_ioctl_enable_cap), e.g. <see cref="KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID"/>.
    /// Throws a <see cref="KvmException"/> naming the capability and arguments; EINVAL for a capability the VM reports
    /// as 0 becomes a <see cref="KvmCapabilityException"/>.
    /// </summary>
    /// <exception cref="ArgumentException">More than four arguments.</exception>
    /// <exception cref="KvmException">
    /// The ioctl failed: EINVAL (flags not 0, or a capability the vCPU cannot enable — every one on arm64 and most on
    /// x86, VM-level ones included).
    /// </exception>
    public void EnableCapability(int capability, params ReadOnlySpan<ulong> args)
    {
        if (args.Length > 4) throw new ArgumentException($"kvm_enable_cap has 4 arguments, {args.Length} given", nameof(args));
        var cap = new kvm_enable_cap { cap = (uint)capability };
        for (int i = 0; i < args.Length; i++) cap.args[i] = args[i];
        EnableCapability(cap);
    }

    /// <summary>
    /// Raw KVM_ENABLE_CAP on this vCPU with any field values (flags included), errors as in
    /// <see cref="EnableCapability(int, ReadOnlySpan{ulong})"/>.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed.</exception>
    public void EnableCapability(kvm_enable_cap cap)
    {
        long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_ENABLE_CAP, KvmCall.Bytes(ref cap));
        if (!KvmCall.IsError(rc)) return;
        string name = KvmCaps.NameOf((int)cap.cap) ?? cap.cap.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string request = $"vcpu={Id} cap={name} flags=0x{cap.flags:X} args=[0x{cap.args[0]:X}, 0x{cap.args[1]:X}, 0x{cap.args[2]:X}, 0x{cap.args[3]:X}]";
        if (rc == -(long)Errno.EINVAL && cap.cap <= int.MaxValue)
        {
            long reported = Vm.CheckExtension((int)cap.cap);
            if (reported == 0) throw new KvmCapabilityException("KVM_ENABLE_CAP", (int)-rc, request, name, reported);
        }
        KvmCall.ThrowKvm(rc, "KVM_ENABLE_CAP", request);
    }
}
