// SPDX-License-Identifier: MIT
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The sandbox on a VM type whose vCPU state KVM protects (X86/ProtectedState.cs): a TD's registers cannot be set, so
/// MicroVm boots it from its reset vector (tests/KvmSharp.Vmm.Tests/TdMicroVmTests.cs), which needs guest_memfd pages
/// it can write and convert in place: without them it is refused up front, naming why; SNP's registers can be set
/// (before LAUNCH_FINISH).
/// </summary>
public sealed class ProtectedStateMicroVmTests
{
    [Fact]
    public void A_td_is_refused_with_the_reason_and_leaves_nothing_open()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: false));
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        {
            var e = Assert.Throws<MicroVmException>(() => MicroVm.Create(Hello.Image(),
                new MicroVmOptions { Kvm = kvm, VmType = VmType.Tdx, Timeout = TimeSpan.FromSeconds(20) }));
            Assert.Contains("MMAP|INIT_SHARED", e.Message, StringComparison.Ordinal);
            Assert.Equal(0, k.LiveVmCount);
        }
        Assert.Equal(0, k.OpenFdCount);
    }
}
