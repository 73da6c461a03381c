// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// What guest memory this machine's /dev/kvm gives a default-type micro-VM, asked once: guest_memfd when
/// KVM_CAP_GUEST_MEMFD_FLAGS has MMAP|INIT_SHARED, else host memory (e.g. a kernel built without
/// CONFIG_KVM_GUEST_MEMFD). <c>BackingTests.The_suite_runs_on_the_best_backing_the_real_kernel_offers</c> prints it.
/// </summary>
public static class RealKernel
{
    private static readonly Lazy<(GuestMemoryBacking Backing, string? NoGuestMemfd)> s_probe = new(Probe);

    /// <summary>The best backing of /dev/kvm (guest_memfd when there is no /dev/kvm: every real-kernel test is skipped then).</summary>
    public static GuestMemoryBacking Backing => s_probe.Value.Backing;

    /// <summary>Why /dev/kvm cannot give a micro-VM guest_memfd memory; null when it can.</summary>
    public static string? NoGuestMemfdReason => s_probe.Value.NoGuestMemfd;

    /// <summary>One line for test output: the backing the general tests use here, and why.</summary>
    public static string Describe() => NoGuestMemfdReason is string why
        ? $"{KvmHost.DevicePath}: micro-VMs run in host memory ({why})"
        : $"{KvmHost.DevicePath}: micro-VMs run in guest_memfd memory (MMAP|INIT_SHARED offered)";

    /// <summary>Skips the calling test, with the reason, when /dev/kvm cannot back a micro-VM with a guest_memfd.</summary>
    public static void SkipUnlessGuestMemfd() =>
        Skip.If(NoGuestMemfdReason is not null,
            $"{KvmHost.DevicePath} cannot back a micro-VM with guest_memfd: {NoGuestMemfdReason} (the emulated-kernel case covers guest_memfd)");

    private static (GuestMemoryBacking, string?) Probe()
    {
        if (KvmHost.UnavailableReason is string unavailable) return (GuestMemoryBacking.GuestMemfd, unavailable);
        using var kvm = Kvm.Open();
        using var vm = kvm.CreateVm();
        string? why = GuestMemory.GuestMemfdUnavailableReason(vm);
        return (why is null ? GuestMemoryBacking.GuestMemfd : GuestMemoryBacking.HostMemory, why);
    }
}
