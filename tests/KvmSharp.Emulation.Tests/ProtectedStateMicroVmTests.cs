// SPDX-License-Identifier: MIT
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The sandbox on a VM type whose vCPU state KVM protects (X86/ProtectedState.cs): a TD's registers cannot be set, so
/// MicroVm refuses it up front, naming why, instead of failing in KVM_GET_SREGS; SNP's can (before LAUNCH_FINISH).
/// </summary>
public sealed class ProtectedStateMicroVmTests
{
    [Fact]
    public void A_td_is_refused_with_the_reason_and_leaves_nothing_open()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        {
            var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(),
                new MicroVmOptions { Kvm = kvm, VmType = VmType.Tdx, Timeout = TimeSpan.FromSeconds(20) }));
            Assert.Contains("KVM_SET_SREGS and KVM_SET_REGS are EINVAL", e.Message, StringComparison.Ordinal);
            Assert.Equal(0, k.LiveVmCount);
        }
        Assert.Equal(0, k.OpenFdCount);
    }
}
