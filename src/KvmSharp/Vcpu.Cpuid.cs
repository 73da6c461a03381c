// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// KVM_SET_CPUID2 (x86): replaces the CPUID table the guest's CPUID instruction reads, in the given order (the
    /// first entry that matches a leaf wins). Do it before the first KVM_RUN: afterwards the kernel accepts only the
    /// table it already has (as <see cref="GetCpuid"/> returns it) and answers anything else with EINVAL.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="entries"/> is null.</exception>
    /// <exception cref="KvmException">
    /// The ioctl failed: E2BIG (more than 256 entries), EINVAL (after KVM_RUN with a different table, a 0x80000008
    /// virtual-address width other than 0, 48 or 57, or not x86), EPERM (dynamic XSAVE features without permission).
    /// </exception>
    public void SetCpuid(IReadOnlyList<CpuidEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        byte[] buffer = CpuidEntry.ToBuffer(entries);
        KvmCall.Check(Kernel.Ioctl(Handle, KvmIoctls.KVM_SET_CPUID2, buffer), "KVM_SET_CPUID2",
            $"vcpu={Id} nent={entries.Count}");
    }

    /// <summary>
    /// KVM_GET_CPUID2 (x86): the vCPU's CPUID table as the kernel holds it (after its own adjustments, e.g. the APIC
    /// and OSXSAVE bits of leaf 1); empty before the first <see cref="SetCpuid"/>. The buffer grows on E2BIG.
    /// </summary>
    /// <exception cref="KvmException">The ioctl failed (EINVAL: not x86).</exception>
    public IReadOnlyList<CpuidEntry> GetCpuid()
    {
        for (int capacity = Kvm.InitialCpuidCapacity; ; capacity *= 2)
        {
            byte[] buffer = CpuidEntry.NewBuffer(capacity);
            long rc = Kernel.Ioctl(Handle, KvmIoctls.KVM_GET_CPUID2, buffer);
            // arch/x86/kvm/cpuid.c kvm_vcpu_ioctl_get_cpuid2: -E2BIG when nent is below the table's size, nent not
            // written back; KVM_SET_CPUID2 refuses more than KVM_MAX_CPUID_ENTRIES, so that many always fits.
            if (rc == -(long)Errno.E2BIG && capacity < Kvm.MaxCpuidEntries) continue;
            KvmCall.Check(rc, "KVM_GET_CPUID2", $"vcpu={Id} nent={capacity}");
            return CpuidEntry.FromBuffer(buffer);
        }
    }
}
