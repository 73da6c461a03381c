// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// KVM_MEMORY_ENCRYPT_REG_REGION: pins <paramref name="size"/> bytes of this process's memory at
    /// <paramref name="address"/> (guest RAM of an SEV guest, usually a whole memslot's backing) until
    /// <see cref="UnregisterEncryptedRegion"/> or the VM's end. Registering the same range twice pins it twice.
    /// </summary>
    /// <exception cref="KvmException">
    /// ENOTTY: not an SEV / SEV-ES / SNP guest yet (before KVM_SEV_INIT2) or no SEV support; EINVAL: size 0, a range
    /// that wraps, or more than INT_MAX pages; ENOMEM: the range is not wholly mapped writable, or the VM's pinned pages
    /// would exceed RLIMIT_MEMLOCK without CAP_IPC_LOCK.
    /// </exception>
    public void RegisterEncryptedRegion(ulong address, ulong size)
    {
        var region = new kvm_enc_region { addr = address, size = size };
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_MEMORY_ENCRYPT_REG_REGION, KvmCall.Bytes(ref region)),
            "KVM_MEMORY_ENCRYPT_REG_REGION", $"addr=0x{address:X} size=0x{size:X}");
    }

    /// <summary>KVM_MEMORY_ENCRYPT_UNREG_REGION: unpins a range registered with exactly this address and size.</summary>
    /// <exception cref="KvmException">EINVAL: no registered range has this address and size; ENOTTY: not an SEV guest.</exception>
    public void UnregisterEncryptedRegion(ulong address, ulong size)
    {
        var region = new kvm_enc_region { addr = address, size = size };
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_MEMORY_ENCRYPT_UNREG_REGION, KvmCall.Bytes(ref region)),
            "KVM_MEMORY_ENCRYPT_UNREG_REGION", $"addr=0x{address:X} size=0x{size:X}");
    }
}
