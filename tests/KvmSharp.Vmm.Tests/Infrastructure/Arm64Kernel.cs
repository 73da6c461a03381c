// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// The arm64 micro-VM tests' kernel: an emulated arm64 kernel (<see cref="EmulatorConfig.Arm64()"/>: this x86 machine
/// has no arm64 KVM), opened for one test body and checked for leaked fds when the body is done.
/// </summary>
public static class Arm64Kernel
{
    /// <summary>Runs <paramref name="body"/> on a fresh emulated arm64 kernel; fails when it leaves an fd open.</summary>
    public static void Run(Action<Kvm> body)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using (var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals))
        {
            body(kvm);
        }
        Assert.Equal(0, kernel.OpenFdCount);
    }

    /// <summary>Options for a micro-VM on <paramref name="kvm"/>, with a timeout generous enough for a loaded machine.</summary>
    public static MicroVmOptions Options(Kvm kvm) => new() { Kvm = kvm, Timeout = TimeSpan.FromSeconds(30) };
}
