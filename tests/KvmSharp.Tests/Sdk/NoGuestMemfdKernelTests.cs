// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// A kernel built without CONFIG_KVM_GUEST_MEMFD (this project's machines since Dec 2026): the SDK says so instead
/// of a bare ENOTTY, and everything that does not need guest_memfd keeps working. Runs on the real kernel when it
/// is such a kernel, and always on the emulator configured like it.
/// </summary>
public class NoGuestMemfdKernelTests : KernelTest
{
    public static TheoryData<string> Kernels => ["linux", "emulated-without-gmem"];

    private static Kvm OpenWithoutGuestMemfd(string kernel)
    {
        if (kernel == "linux")
        {
            var kvm = Open(kernel);
            if (kvm.SupportsGuestMemfd)
            {
                kvm.Dispose();
                Skip.If(true, "this kernel has guest_memfd (KVM_CAP_GUEST_MEMFD != 0): the emulated row covers the kernel without it");
            }
            return kvm;
        }
        return Kvm.Open(new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels))]
    public void Creating_a_guest_memfd_names_the_missing_capability(string kernel)
    {
        using var kvm = OpenWithoutGuestMemfd(kernel);
        Assert.False(kvm.SupportsGuestMemfd);
        Assert.Equal(GuestMemfdFlags.None, kvm.SupportedGuestMemfdFlags);
        using var vm = kvm.CreateVm();
        Assert.Equal(GuestMemfdFlags.None, vm.SupportedGuestMemfdFlags);
        var ex = AssertErrno(Errno.ENOTTY, () => vm.CreateGuestMemfd(2 << 20, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared).Dispose());
        Assert.Equal("KVM_CREATE_GUEST_MEMFD", ex.Operation);
        Assert.Contains("size=2097152", ex.Message, StringComparison.Ordinal);
        Assert.Contains("KVM_CAP_GUEST_MEMFD = 0", ex.Message, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels))]
    public void Plain_slots_still_serve_a_guest(string kernel)
    {
        using var kvm = OpenWithoutGuestMemfd(kernel);
        using var vm = kvm.CreateVm();
        using var memory = vm.AllocateMemory(2 << 20);
        memory.Write<ulong>(0x1000, 42);
        using var slot = vm.AddMemorySlot(0, 0, memory);
        using var vcpu = vm.CreateVcpu();
        var exit = vcpu.Run();
        Assert.Equal(42UL, memory.Read<ulong>(0x1000));
        // As in the README sample: the reset vector has no memory behind it, and KVM reports an emulation failure.
        Assert.False(exit.Interrupted);
        Assert.Equal(KvmSharp.Abi.KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit.Reason);
        Assert.Equal(1u, exit.InternalSuberror);
    }
}
