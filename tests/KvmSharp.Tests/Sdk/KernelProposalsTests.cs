// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel.Tracing;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Kvm.Open takes an emulated kernel's proposal numbers from the kernel itself (IKernel.Proposals), also through a
/// TracingKernel; numbers the caller passes still win; the real kernel has none and gets the defaults.
/// </summary>
public sealed class KernelProposalsTests
{
    private static EmulatorConfig WithFlagsHi() =>
        EmulatorConfig.X86_64() with { GuestMemfdFlagsHiCap = 251, ExtraGuestMemfdFlags = 1UL << 40 };

    [Fact]
    public void An_emulated_kernel_brings_its_own_proposal_numbers()
    {
        using var emulated = new EmulatedKernel(WithFlagsHi());
        using var kvm = Kvm.Open(emulated);
        Assert.Equal(251, kvm.Proposals.GuestMemfdFlagsHiCap);
        Assert.True(kvm.SupportedGuestMemfdFlags.HasFlag((GuestMemfdFlags)(1UL << 40)), kvm.SupportedGuestMemfdFlags.ToKernelString());

        using var traced = Kvm.Open(new TracingKernel(emulated, _ => { }));
        Assert.Equal(251, traced.Proposals.GuestMemfdFlagsHiCap);
    }

    [Fact]
    public void Numbers_the_caller_passes_win_and_the_real_kernel_has_none()
    {
        using var emulated = new EmulatedKernel(WithFlagsHi());
        using var kvm = Kvm.Open(emulated, proposals: KvmSharp.Abi.UapiProposals.Default);
        Assert.Null(kvm.Proposals.GuestMemfdFlagsHiCap);
        Assert.Null(((KvmSharp.Kernel.IKernel)KvmSharp.Kernel.LinuxKernel.Instance).Proposals);
    }
}
