// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Arm64;

/// <summary>
/// SVE vCPUs (Documentation/virt/kvm/api.rst, KVM_ARM_VCPU_INIT "KVM_ARM_VCPU_SVE" and KVM_ARM_VCPU_FINALIZE): after
/// KVM_ARM_VCPU_INIT with KVM_ARM_VCPU_SVE the set of vector lengths (KVM_REG_ARM64_SVE_VLS) may be read and narrowed,
/// then <see cref="FinalizeSve"/> freezes it; only then may the vCPU run, list its registers and move the Z, P and FFR
/// registers (<see cref="GetOneRegBytes"/> / <see cref="SetOneRegBytes"/> with the KvmArm64Sve ids).
/// </summary>
public static class Arm64VcpuSve
{
    /// <summary>KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_SVE).</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">EINVAL (the vCPU has no SVE), EPERM (already finalized),
    /// ENOEXEC (not initialized).</exception>
    public static void FinalizeSve(this Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        int what = KvmArm64Constants.KVM_ARM_VCPU_SVE;
        long rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, KvmArm64Sve.KVM_ARM_VCPU_FINALIZE, KvmCall.Bytes(ref what));
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_ARM_VCPU_FINALIZE", $"vcpu={vcpu.Id} feature=KVM_ARM_VCPU_SVE");
    }

    /// <summary>
    /// KVM_GET_ONE_REG of KVM_REG_ARM64_SVE_VLS: KVM_ARM64_SVE_VLS_WORDS words, bit (vq - 1) set for each vector
    /// length of vq quadwords (128 bits) the vCPU may use.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">ENOENT (the vCPU has no SVE).</exception>
    public static ulong[] GetSveVectorLengths(this Vcpu vcpu) =>
        MemoryMarshal.Cast<byte, ulong>(vcpu.GetOneRegBytes(KvmArm64Sve.KVM_REG_ARM64_SVE_VLS)).ToArray();

    /// <summary>KVM_SET_ONE_REG of KVM_REG_ARM64_SVE_VLS (before <see cref="FinalizeSve"/>).</summary>
    /// <exception cref="ArgumentException"><paramref name="words"/> is not KVM_ARM64_SVE_VLS_WORDS long.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">EINVAL (a set the host cannot give), EPERM (finalized),
    /// ENOENT (no SVE).</exception>
    public static void SetSveVectorLengths(this Vcpu vcpu, ReadOnlySpan<ulong> words)
    {
        if (words.Length != KvmArm64Sve.KVM_ARM64_SVE_VLS_WORDS)
            throw new ArgumentException($"the bitmap has {KvmArm64Sve.KVM_ARM64_SVE_VLS_WORDS} words", nameof(words));
        vcpu.SetOneRegBytes(KvmArm64Sve.KVM_REG_ARM64_SVE_VLS, MemoryMarshal.AsBytes(words));
    }

    /// <summary>KVM_GET_ONE_REG of a register of any size: KVM_REG_SIZE(id) bytes.</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">KVM_GET_ONE_REG failed.</exception>
    public static byte[] GetOneRegBytes(this Vcpu vcpu, ulong id)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        byte[] value = GC.AllocateArray<byte>(KvmArm64Regs.KVM_REG_SIZE(id), pinned: true);
        var reg = new kvm_one_reg { id = id, addr = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(value, 0) };
        long rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, KvmArm64Ioctls.KVM_GET_ONE_REG, KvmCall.Bytes(ref reg));
        GC.KeepAlive(value);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_ONE_REG", $"vcpu={vcpu.Id} id=0x{id:X}");
        return value;
    }

    /// <summary>KVM_SET_ONE_REG of a register of any size from <paramref name="value"/> (KVM_REG_SIZE(id) bytes).</summary>
    /// <exception cref="ArgumentException"><paramref name="value"/> is not KVM_REG_SIZE(id) bytes.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">KVM_SET_ONE_REG failed.</exception>
    public static void SetOneRegBytes(this Vcpu vcpu, ulong id, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        if (value.Length != KvmArm64Regs.KVM_REG_SIZE(id))
            throw new ArgumentException($"register 0x{id:X} is {KvmArm64Regs.KVM_REG_SIZE(id)} bytes", nameof(value));
        byte[] buffer = GC.AllocateArray<byte>(value.Length, pinned: true);
        value.CopyTo(buffer);
        var reg = new kvm_one_reg { id = id, addr = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0) };
        long rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, KvmArm64Ioctls.KVM_SET_ONE_REG, KvmCall.Bytes(ref reg));
        GC.KeepAlive(buffer);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_SET_ONE_REG", $"vcpu={vcpu.Id} id=0x{id:X}");
    }
}
