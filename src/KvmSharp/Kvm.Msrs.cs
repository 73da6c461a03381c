// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Kvm
{
    /// <summary>
    /// KVM_GET_MSR_INDEX_LIST (x86): the MSRs a VMM saves and restores with <see cref="Vcpu.GetMsrs"/> /
    /// <see cref="Vcpu.SetMsrs"/>, in the kernel's order. EFER, FS/GS base and APIC base are not in it (they travel
    /// in KVM_GET/SET_SREGS). Asks with room for none first: the kernel answers E2BIG and writes the count it needs
    /// back, as QEMU's kvm_get_supported_msrs relies on; the buffer then grows while E2BIG repeats.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed (EINVAL: not x86).</exception>
    public IReadOnlyList<uint> GetMsrIndexList() => GetMsrList(KvmIoctls.KVM_GET_MSR_INDEX_LIST, "KVM_GET_MSR_INDEX_LIST");

    /// <summary>
    /// KVM_GET_MSR_FEATURE_INDEX_LIST (x86): the feature MSRs (e.g. IA32_ARCH_CAPABILITIES) KVM_GET_MSRS on /dev/kvm
    /// reports. Grows its buffer like <see cref="GetMsrIndexList"/>.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed (EINVAL: not x86).</exception>
    public IReadOnlyList<uint> GetMsrFeatureIndexList() =>
        GetMsrList(KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST, "KVM_GET_MSR_FEATURE_INDEX_LIST");

    private uint[] GetMsrList(uint request, string name)
    {
        uint capacity = 0;
        for (int attempt = 0; ; attempt++)
        {
            var buffer = new byte[sizeof(uint) * (1 + (int)capacity)];
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, capacity);
            long rc = Kernel.Ioctl(Handle, request, buffer);
            uint needed = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
            if (rc == -(long)Errno.E2BIG && needed > capacity && attempt < 8)
            {
                capacity = needed; // the kernel wrote back how many it has
                continue;
            }
            KvmCall.Check(rc, name, $"nmsrs={capacity}");
            var list = new uint[Math.Min(needed, capacity)];
            for (int i = 0; i < list.Length; i++)
                list[i] = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(sizeof(uint) * (1 + i)));
            return list;
        }
    }
}
