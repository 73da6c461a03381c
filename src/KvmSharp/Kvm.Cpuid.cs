// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Kvm
{
    /// <summary>
    /// The first buffer size, in entries, for KVM_GET_SUPPORTED_CPUID / KVM_GET_EMULATED_CPUID: QEMU starts at 50
    /// (target/i386/kvm/kvm.c get_supported_cpuid), kvm-ioctls asks for 80 at once; a recent x86 host reports 60 to 70.
    /// </summary>
    internal const int InitialCpuidCapacity = 64;

    /// <summary>
    /// KVM_MAX_CPUID_ENTRIES (arch/x86/include/asm/kvm_host.h): the kernel clamps a larger nent to it, so a table that
    /// does not fit in this many entries cannot be read at all.
    /// </summary>
    internal const int MaxCpuidEntries = 256;

    /// <summary>
    /// KVM_GET_SUPPORTED_CPUID (x86): every CPUID leaf KVM and this host can offer a guest, in the kernel's order. The
    /// buffer starts at 64 entries and doubles while the kernel answers E2BIG (too small), as QEMU does.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed (EINVAL: not x86), or the table does not fit in 256 entries.</exception>
    public IReadOnlyList<CpuidEntry> GetSupportedCpuid() => GetCpuidTable(KvmIoctls.KVM_GET_SUPPORTED_CPUID, "KVM_GET_SUPPORTED_CPUID");

    /// <summary>
    /// KVM_GET_EMULATED_CPUID (x86): the CPUID features KVM emulates in software even when the host lacks them (e.g.
    /// MOVBE); they are not in <see cref="GetSupportedCpuid"/>. Grows its buffer like that method.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed (EINVAL: not x86), or the table does not fit in 256 entries.</exception>
    public IReadOnlyList<CpuidEntry> GetEmulatedCpuid() => GetCpuidTable(KvmIoctls.KVM_GET_EMULATED_CPUID, "KVM_GET_EMULATED_CPUID");

    private CpuidEntry[] GetCpuidTable(uint request, string name)
    {
        for (int capacity = InitialCpuidCapacity; ; capacity *= 2)
        {
            byte[] buffer = CpuidEntry.NewBuffer(capacity);
            long rc = Kernel.Ioctl(Handle, request, buffer);
            // arch/x86/kvm/cpuid.c kvm_dev_ioctl_get_cpuid: -E2BIG when the table needs more than nent entries (nent is
            // left as it was); a nent above KVM_MAX_CPUID_ENTRIES is clamped, so asking for more cannot help.
            if (rc == -(long)Errno.E2BIG && capacity < MaxCpuidEntries) continue;
            KvmCall.Check(rc, name, $"nent={capacity}");
            return CpuidEntry.FromBuffer(buffer);
        }
    }
}
