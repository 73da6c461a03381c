// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// The SEV-SNP micro-VMs of the SNP tests (SnpVcTests, SnpConversionTests, SnpValidationTests, ConfidentialVcVeTests):
/// the emulated kernel with in-place conversion is the only kernel on this machine with SNP, so every one of them
/// starts the same way.
/// </summary>
public static class SnpMicroVm
{
    /// <summary>A page of the image area with a 4 KiB page-table entry, not the guest's code: the page the tests convert.</summary>
    public const ulong ConvertiblePage = 0x1F_0000;

    /// <summary>The emulated kernel with in-place conversion.</summary>
    public static TestKernel Kernel() => TestKernel.EmulatedWithInPlaceConversion();

    /// <summary>An SNP micro-VM of <paramref name="image"/> on <paramref name="k"/> (timeout 30 s unless given).</summary>
    public static MicroVm Create(TestKernel k, GuestImage image, HostFunctions? functions = null,
        ulong memorySize = MicroVmOptions.DefaultMemorySize, TimeSpan? timeout = null) =>
        MicroVm.Create(image, new MicroVmOptions
        {
            Kvm = k.Kvm, VmType = VmType.Snp, MemorySize = memorySize, HostFunctions = functions, Timeout = timeout ?? TimeSpan.FromSeconds(30),
        });
}
