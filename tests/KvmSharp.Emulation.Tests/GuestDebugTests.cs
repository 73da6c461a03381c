// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_SET_GUEST_DEBUG in the emulated kernel where the conformance cases (Cases/GuestDebug.cs) cannot reach: bad
/// user memory, garbage controls, arm64, and that a refused call changes nothing.
/// </summary>
public class GuestDebugTests
{
    private static KernelFd CreateVcpu(IKernel k, KernelFd vm, ulong id = 0)
    {
        long rc = k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, id);
        Assert.True(rc >= 0, $"KVM_CREATE_VCPU: {rc}");
        return k.Adopt((int)rc);
    }

    [Fact]
    public void A_short_or_missing_argument_is_efault()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var vcpu = CreateVcpu(k, vm);
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, KvmIoctls.KVM_SET_GUEST_DEBUG, new byte[71]));
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, KvmIoctls.KVM_SET_GUEST_DEBUG, 0UL));
    }

    [Fact]
    public void Random_controls_and_registers_are_an_errno_or_zero_never_an_exception()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        var rng = new Random(7);
        for (int n = 0; n < 50; n++)
        {
            using var vcpu = CreateVcpu(k, vm, (ulong)n);
            var bytes = new byte[72];
            rng.NextBytes(bytes);
            long rc = k.Ioctl(vcpu, KvmIoctls.KVM_SET_GUEST_DEBUG, bytes);
            Assert.Equal(0, rc); // x86 checks no bits, and nothing is queued yet
            // A second injection while the first is queued is EBUSY, anything else is accepted.
            uint control = BitConverter.ToUInt32(bytes);
            rc = k.Ioctl(vcpu, KvmIoctls.KVM_SET_GUEST_DEBUG, bytes);
            Assert.Equal((control & 0xc0000) != 0 ? -16 : 0, rc);
        }
    }

    [Fact]
    public void Arm64_answers_its_own_mask_and_checks_the_bits()
    {
        using var k = new EmulatedKernel(EmulatorConfig.Arm64());
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(1, Raw.Cap(k, sys, KvmCaps.KVM_CAP_SET_GUEST_DEBUG));
        Assert.Equal(0x30003, Raw.Cap(k, sys, KvmCaps.KVM_CAP_SET_GUEST_DEBUG2));
        using var vm = Raw.CreateVm(k, sys);
        using var vcpu = CreateVcpu(k, vm);
        uint arm64Request = IoctlEncoding._IOW(KvmIoctls.KVMIO, 0x9b, 520);
        var dbg = new byte[520];
        BitConverter.TryWriteBytes(dbg, 0x30003u);
        Assert.Equal(0, k.Ioctl(vcpu, arm64Request, dbg));
        BitConverter.TryWriteBytes(dbg, KvmConstants.KVM_GUESTDBG_INJECT_DB | KvmConstants.KVM_GUESTDBG_ENABLE);
        Assert.Equal(Raw.EINVAL, k.Ioctl(vcpu, arm64Request, dbg));
        Assert.Equal(Raw.EFAULT, k.Ioctl(vcpu, arm64Request, new byte[519]));
        // x86's 72-byte encoding is not an arm64 request.
        Assert.Equal(Raw.EINVAL, k.Ioctl(vcpu, KvmIoctls.KVM_SET_GUEST_DEBUG, new byte[72]));
    }
}
