// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;
using KvmSharp.X86;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Kvm.Mce.cs and Vcpu.Mce.cs (KVM_CAP_MCE, KVM_X86_GET_MCE_CAP_SUPPORTED, KVM_X86_SETUP_MCE) on every kernel: what the
/// SDK sends, what it returns, and its typed errors. The kernel's rules are conformance cases
/// (KvmSharp.Conformance/Cases/MceAndMtrrRules.cs).
/// </summary>
public class MceTests : KernelTest
{
    /// <summary>Keeps the argument bytes of every machine-check ioctl that passes through, with its request.</summary>
    private sealed class Recorder(IKernel inner) : DelegatingKernel(inner)
    {
        public List<(uint Request, byte[] Arg)> Calls { get; } = [];

        public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
        {
            long rc = base.Ioctl(fd, request, arg);
            if (request == KvmIoctls.KVM_X86_SETUP_MCE || request == KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED)
                Calls.Add((request, arg.ToArray()));
            return rc;
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Setup_mce_sends_the_mcg_cap_as_a_u64_and_one_bank_leaves_four_bank_msrs(string kernel)
    {
        using var inner = Open(kernel);
        var recorder = new Recorder(inner.Kernel);
        using var kvm = Kvm.Open(recorder);
        Assert.Equal(32, kvm.MaxMceBanks);
        ulong supported = kvm.GetSupportedMceCapabilities();
        Assert.Equal(McgCap.CtlP | McgCap.SerP, supported & (McgCap.CtlP | McgCap.SerP));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(32UL, vcpu.GetMsr(X86Msr.McgCap));

        vcpu.SetupMce(1);
        Assert.Equal(1UL, vcpu.GetMsr(X86Msr.McgCap));
        Assert.Equal(ulong.MaxValue, vcpu.GetMsr(X86Msr.Mc0Ctl));
        for (uint i = 1; i < 4; i++) Assert.Equal(0UL, vcpu.GetMsr(X86Msr.Mc0Ctl + i));
        Assert.Throws<MsrAccessException>(() => vcpu.GetMsr(X86Msr.Mc0Ctl + 4));

        // Both ioctls carry one little-endian __u64: the kernel wrote the supported bits, the SDK the MCG_CAP.
        Assert.Equal([KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED, KvmIoctls.KVM_X86_SETUP_MCE], recorder.Calls.Select(c => c.Request));
        Assert.All(recorder.Calls, c => Assert.Equal(8, c.Arg.Length));
        Assert.Equal(supported, BinaryPrimitives.ReadUInt64LittleEndian(recorder.Calls[0].Arg));
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(recorder.Calls[1].Arg));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_refused_setup_is_a_kvm_exception_with_the_errno_and_request_and_changes_nothing(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(3);
        foreach (ulong cap in new[] { 0UL, 33UL, McgCap.CmciP | 1 })
        {
            var e = Assert.Throws<KvmException>(() => vcpu.SetupMce(cap));
            Assert.IsNotType<KvmCapabilityException>(e);
            Assert.Equal((Errno.EINVAL, "KVM_X86_SETUP_MCE"), (e.Errno, e.Operation));
            Assert.Contains($"vcpu=3 mcg_cap=0x{cap:X}", e.Message, StringComparison.Ordinal);
            Assert.Equal(32UL, vcpu.GetMsr(X86Msr.McgCap));
        }
    }

    [Fact]
    public void On_arm64_machine_checks_are_a_capability_error()
    {
        // arch/arm64/kvm/arm.c: no KVM_CAP_MCE; kvm_arch_dev_ioctl and kvm_arch_vcpu_ioctl answer an unknown request EINVAL.
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        Assert.Equal(0, kvm.MaxMceBanks);
        var system = Assert.Throws<KvmCapabilityException>(() => kvm.GetSupportedMceCapabilities());
        Assert.Equal((Errno.EINVAL, "KVM_X86_GET_MCE_CAP_SUPPORTED", nameof(KvmCaps.KVM_CAP_MCE)), (system.Errno, system.Operation, system.Capability));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        var setup = Assert.Throws<KvmCapabilityException>(() => vcpu.SetupMce(1));
        Assert.Equal((Errno.EINVAL, "KVM_X86_SETUP_MCE"), (setup.Errno, setup.Operation));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Inject_machine_check_sends_a_kvm_x86_mce_and_a_refusal_carries_the_request(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(1);
        vcpu.InjectMachineCheck(3, (1UL << 63) | 0x17, 0x1234, 0x56);
        Assert.Equal((1UL << 63) | 0x17, vcpu.GetMsr(X86Msr.Mc0Ctl + 4 * 3 + 1));
        Assert.Equal(0x1234UL, vcpu.GetMsr(X86Msr.Mc0Ctl + 4 * 3 + 2));
        Assert.Equal(0x56UL, vcpu.GetMsr(X86Msr.Mc0Ctl + 4 * 3 + 3));
        var e = Assert.Throws<KvmException>(() => vcpu.InjectMachineCheck(32, 1UL << 63, mcgStatus: 5));
        Assert.IsNotType<KvmCapabilityException>(e);
        Assert.Equal((Errno.EINVAL, "KVM_X86_SET_MCE"), (e.Errno, e.Operation));
        Assert.Contains("vcpu=1 bank=32 status=0x8000000000000000 mcg_status=0x5", e.Message, StringComparison.Ordinal);
        AssertErrno(Errno.EINVAL, () => vcpu.InjectMachineCheck(0, 0x17));
    }

    [Fact]
    public void On_arm64_machine_check_injection_is_a_capability_error()
    {
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        var e = Assert.Throws<KvmCapabilityException>(() => vcpu.InjectMachineCheck(0, 1UL << 63));
        Assert.Equal((Errno.EINVAL, "KVM_X86_SET_MCE"), (e.Errno, e.Operation));
    }
}
