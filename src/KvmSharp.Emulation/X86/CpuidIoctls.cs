// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// The CPUID ioctls: KVM_GET_SUPPORTED_CPUID / KVM_GET_EMULATED_CPUID on /dev/kvm (arch/x86/kvm/x86.c
/// kvm_arch_dev_ioctl → cpuid.c kvm_dev_ioctl_get_cpuid) and KVM_SET_CPUID2 / KVM_GET_CPUID2 on a vCPU
/// (kvm_arch_vcpu_ioctl → kvm_vcpu_ioctl_set_cpuid2 / kvm_vcpu_ioctl_get_cpuid2). The argument is a
/// <c>struct kvm_cpuid2</c> header followed by its entries in the same user buffer.
/// </summary>
internal static class CpuidIoctls
{
    /// <summary>KVM_MAX_CPUID_ENTRIES (arch/x86/include/asm/kvm_host.h).</summary>
    public const int MaxCpuidEntries = 256;

    private const long E2BIG = -(long)Errno.E2BIG;
    private static readonly int HeaderSize = Marshal.SizeOf<kvm_cpuid2>();
    private static readonly int EntrySize = Marshal.SizeOf<kvm_cpuid_entry2>();

    /// <summary>True for the requests this class answers on /dev/kvm.</summary>
    public static bool IsDevRequest(uint request) =>
        request == KvmIoctls.KVM_GET_SUPPORTED_CPUID || request == KvmIoctls.KVM_GET_EMULATED_CPUID;

    /// <summary>
    /// kvm_arch_dev_ioctl KVM_GET_SUPPORTED_CPUID / KVM_GET_EMULATED_CPUID. The supported table is the configuration's:
    /// its CPU model's, with leaf 0x8000001F when it offers SEV VM types (<see cref="CpuidSupported.For"/>).
    /// </summary>
    public static long GetDevCpuid(EmulatorConfig config, uint request, IoctlArg arg)
    {
        // x86.c: "if (copy_from_user(&cpuid, cpuid_arg, sizeof(cpuid))) goto out" with r = -EFAULT.
        if (!arg.CopyFromUser(out kvm_cpuid2 cpuid)) return Err.EFAULT;
        // cpuid.c kvm_dev_ioctl_get_cpuid: "if (cpuid->nent < 1) return -E2BIG;", then clamp to KVM_MAX_CPUID_ENTRIES.
        if (cpuid.nent < 1) return E2BIG;
        if (cpuid.nent > MaxCpuidEntries) cpuid.nent = MaxCpuidEntries;
        bool emulated = request == KvmIoctls.KVM_GET_EMULATED_CPUID;
        // sanity_check_entries (KVM_GET_EMULATED_CPUID only): every entries[i].padding of the nent given must be zero,
        // and an unreadable one counts as dirty: -EINVAL (observed on this host: padding[1] of entry 3 → EINVAL).
        if (emulated && !PaddingIsClean(arg.Buffer, (int)cpuid.nent)) return Err.EINVAL;
        var table = emulated ? CpuidSupported.Emulated : CpuidSupported.For(config);
        // get_next_cpuid: "if (array->nent >= array->maxnent) return NULL" → -E2BIG, nent not written back (observed).
        if (table.Length > cpuid.nent) return E2BIG;
        cpuid.nent = (uint)table.Length;
        // copy_to_user(entries, …) → -EFAULT before the header is written back.
        if (!CopyEntriesToUser(arg.Buffer, table)) return Err.EFAULT;
        return arg.CopyToUser(cpuid) ? 0 : Err.EFAULT;
    }

    /// <summary>kvm_arch_vcpu_ioctl KVM_SET_CPUID2 → kvm_vcpu_ioctl_set_cpuid2 → kvm_set_cpuid.</summary>
    public static long SetCpuid2(KvmVcpu vcpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_cpuid2 cpuid)) return Err.EFAULT;
        // kvm_vcpu_ioctl_set_cpuid2: "if (cpuid->nent > KVM_MAX_CPUID_ENTRIES) return -E2BIG;" (observed: 257 → E2BIG).
        if (cpuid.nent > MaxCpuidEntries) return E2BIG;
        // vmemdup_array_user(entries, nent, sizeof(*e2)) → -EFAULT when the entries are not all readable.
        int bytes = (int)cpuid.nent * EntrySize;
        if (arg.Buffer.Length < HeaderSize + bytes) return Err.EFAULT;
        var entries = MemoryMarshal.Cast<byte, kvm_cpuid_entry2>(arg.Buffer.Slice(HeaderSize, bytes)).ToArray();
        return vcpu.Cpu.Cpuid.Set(entries, vcpu.Cpu);
    }

    /// <summary>kvm_arch_vcpu_ioctl KVM_GET_CPUID2 → kvm_vcpu_ioctl_get_cpuid2.</summary>
    public static long GetCpuid2(KvmVcpu vcpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out kvm_cpuid2 cpuid)) return Err.EFAULT;
        var table = vcpu.Cpu.Cpuid.Current(vcpu.Cpu);
        // "if (cpuid->nent < vcpu->arch.cpuid_nent) return -E2BIG;" — nent is not written back (observed: 3 of 8).
        if (cpuid.nent < table.Length) return E2BIG;
        if (!CopyEntriesToUser(arg.Buffer, table)) return Err.EFAULT;
        cpuid.nent = (uint)table.Length;
        return arg.CopyToUser(cpuid) ? 0 : Err.EFAULT;
    }

    private static bool PaddingIsClean(Span<byte> buffer, int nent)
    {
        for (int i = 0; i < nent; i++)
        {
            int at = HeaderSize + (i * EntrySize) + (int)Marshal.OffsetOf<kvm_cpuid_entry2>(nameof(kvm_cpuid_entry2.padding));
            if (buffer.Length < at + 12) return false;
            if (buffer.Slice(at, 12).ContainsAnyExcept((byte)0)) return false;
        }
        return true;
    }

    private static bool CopyEntriesToUser(Span<byte> buffer, ReadOnlySpan<kvm_cpuid_entry2> table)
    {
        int bytes = table.Length * EntrySize;
        if (buffer.Length < HeaderSize + bytes) return false;
        MemoryMarshal.AsBytes(table).CopyTo(buffer.Slice(HeaderSize, bytes));
        return true;
    }
}
