// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.X86;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

/// <summary>
/// Picks the <see cref="EmulatorConfig.LikeThisHost"/> build that the machine running now is, by asking its
/// /dev/kvm: KVM_CAP_GUEST_MEMFD (built with or without CONFIG_KVM_GUEST_MEMFD) and the CPU
/// (<see cref="X86CpuModel"/>, from KVM_GET_SUPPORTED_CPUID) — the two ways this project's machines have been seen
/// to differ.
/// </summary>
public static class HostMatching
{
    private static readonly Lazy<bool?> s_hostHasGuestMemfd = new(Probe);
    private static readonly Lazy<X86CpuModel?> s_hostCpu = new(ProbeCpu);

    /// <summary>
    /// The <see cref="X86CpuModel"/> of this machine's /dev/kvm: one of <see cref="X86CpuModel.Known"/> when it is one
    /// of them, else a model made from its KVM_GET_SUPPORTED_CPUID (<see cref="X86CpuModel.FromSupportedCpuid"/>);
    /// null when /dev/kvm cannot be opened.
    /// </summary>
    public static X86CpuModel? HostCpuModel => s_hostCpu.Value;

    /// <summary><see cref="HostCpuModel"/>, or the default (<see cref="X86CpuModel.EpycMilan"/>) when there is none.</summary>
    public static X86CpuModel HostCpuOrDefault => HostCpuModel ?? X86CpuModel.EpycMilan;

    /// <summary>
    /// KVM_CAP_GUEST_MEMFD != 0 on this machine's /dev/kvm; null when /dev/kvm cannot be opened (there is no real
    /// kernel to match).
    /// </summary>
    public static bool? HostHasGuestMemfd => s_hostHasGuestMemfd.Value;

    /// <summary>
    /// <see cref="EmulatorConfig.LikeThisHost"/> with CONFIG_KVM_GUEST_MEMFD as this machine's kernel has it (with
    /// it when there is no /dev/kvm to ask).
    /// </summary>
    public static EmulatorConfig LikeThisHostAsItIs() => EmulatorConfig.LikeThisHost(guestMemfd: HostHasGuestMemfd ?? true);

    private static bool? Probe()
    {
        IKernel linux = LinuxKernel.Instance;
        long rc = linux.Open("/dev/kvm", LinuxConstants.O_RDWR, out KernelFd? fd);
        if (rc < 0 || fd is null) return null;
        using (fd)
        {
            return linux.Ioctl(fd, KvmIoctls.KVM_CHECK_EXTENSION, (ulong)KvmCaps.KVM_CAP_GUEST_MEMFD) > 0;
        }
    }

    private static X86CpuModel? ProbeCpu()
    {
        IKernel linux = LinuxKernel.Instance;
        long rc = linux.Open("/dev/kvm", LinuxConstants.O_RDWR, out KernelFd? fd);
        if (rc < 0 || fd is null) return null;
        using (fd)
        {
            // struct kvm_cpuid2 with room for KVM_MAX_CPUID_ENTRIES entries.
            int header = Marshal.SizeOf<kvm_cpuid2>(), entry = Marshal.SizeOf<kvm_cpuid_entry2>();
            var buffer = new byte[header + CpuidIoctls.MaxCpuidEntries * entry];
            MemoryMarshal.Write(buffer, new kvm_cpuid2 { nent = CpuidIoctls.MaxCpuidEntries });
            if (linux.Ioctl(fd, KvmIoctls.KVM_GET_SUPPORTED_CPUID, buffer) < 0) return null;
            int n = (int)MemoryMarshal.Read<kvm_cpuid2>(buffer).nent;
            var entries = MemoryMarshal.Cast<byte, kvm_cpuid_entry2>(buffer.AsSpan(header, n * entry));
            foreach (var model in X86CpuModel.Known)
                if (model.Matches(entries)) return model;
            return X86CpuModel.FromSupportedCpuid("this machine's CPU (read from KVM_GET_SUPPORTED_CPUID)", entries);
        }
    }
}
