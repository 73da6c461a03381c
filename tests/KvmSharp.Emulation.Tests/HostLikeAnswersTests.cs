// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.X86;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Answers in which the emulator built like this host (HostMatching.LikeThisHostAsItIs) follows this machine's kernel
/// (kvm_pvm, Linux 6.18, EPYC Genoa) where it used to differ (tests/KvmSharp.Preload.Tests/CPrograms/kvm_transcript.c
/// compared through kvmsharp exec): st_rdev of /dev/kvm, KVM_CAP_NR_VCPUS under a narrowed CPU affinity, the MSR
/// index lists and MSR_IA32_MISC_ENABLE of a new vCPU. The same body runs on the real kernel and on the emulator.
/// </summary>
public sealed class HostLikeAnswersTests
{
    private const uint MiscEnable = 0x1a0;

    public static TheoryData<bool> BothKernels() => [true, false];

    private static void OnKernel(bool real, Action<IKernel> body)
    {
        if (real)
        {
            body(LinuxKernel.Instance);
            return;
        }
        using var emulated = new EmulatedKernel(HostMatching.LikeThisHostAsItIs());
        body(emulated);
    }

    private static bool HostIsKvmPvm => Directory.Exists("/sys/module/kvm_pvm");

    [KvmTheory]
    [MemberData(nameof(BothKernels))]
    public void Fstat_of_dev_kvm_reports_the_misc_device_10_232(bool real)
    {
        OnKernel(real, kernel =>
        {
            Assert.True(kernel.Open("/dev/kvm", LinuxConstants.O_RDWR, out KernelFd? fd) >= 0);
            using (fd)
            {
                Assert.Equal(0, kernel.Fstat(fd!, out KernelStat stat));
                Assert.Equal(LinuxConstants.S_IFCHR, stat.Mode & LinuxConstants.S_IFMT);
                Assert.Equal(KernelStat.EncodeDevice(10, 232), stat.RDevice);
                Assert.Equal(0xae8UL, stat.RDevice);
            }
        });
    }

    [KvmTheory]
    [MemberData(nameof(BothKernels))]
    public void Nr_vcpus_counts_the_online_cpus_not_the_process_affinity(bool real)
    {
        int online = HostOnlineCpus.Parse(File.ReadAllText("/sys/devices/system/cpu/online"))
            ?? throw new InvalidOperationException("/sys/devices/system/cpu/online is no cpulist");
        OnKernel(real, kernel =>
        {
            using var kvm = Kvm.Open(kernel);
            Assert.Equal(Math.Min(online, 1024), kvm.CheckExtension(KvmCaps.KVM_CAP_NR_VCPUS));
        });
    }

    [Theory]
    [InlineData("0-1", 2)]
    [InlineData("0\n", 1)]
    [InlineData("0,2-5", 5)]
    [InlineData("0-3,8-11\n", 8)]
    [InlineData("", null)]
    [InlineData("3-1", null)]
    [InlineData("x", null)]
    public void A_cpulist_counts_its_cpus(string cpulist, int? count) => Assert.Equal(count, HostOnlineCpus.Parse(cpulist));

    [KvmTheory]
    [MemberData(nameof(BothKernels))]
    public void A_new_vcpu_reads_misc_enable_fast_string_on_kvm_pvm(bool real)
    {
        Skip.IfNot(HostIsKvmPvm, "the real kernel is not kvm_pvm: upstream kvm_vcpu_reset gives 0x1800 there");
        OnKernel(real, kernel =>
        {
            using var kvm = Kvm.Open(kernel);
            using var vm = kvm.CreateVm();
            using var vcpu = vm.CreateVcpu();
            Assert.Equal(1UL, vcpu.GetMsr(MiscEnable));
        });
    }

    [Fact]
    public void The_upstream_preset_keeps_kvm_vcpu_resets_misc_enable()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(0x1800UL, vcpu.GetMsr(MiscEnable));
        Assert.Equal(MsrLists.ToSaveAndEmulated, kvm.GetMsrIndexList());
        Assert.Equal(MsrLists.FeatureMsrs, kvm.GetMsrFeatureIndexList());
    }

    [KvmTheory]
    [MemberData(nameof(BothKernels))]
    public void Every_listed_msr_is_read_by_the_host_and_takes_back_what_it_read(bool real)
    {
        OnKernel(real, kernel =>
        {
            using var kvm = Kvm.Open(kernel);
            using var vm = kvm.CreateVm();
            using var vcpu = vm.CreateVcpu();
            var list = kvm.GetMsrIndexList();
            Assert.Contains(MiscEnable, list);
            foreach (uint msr in list)
            {
                ulong value = vcpu.GetMsr(msr);
                // MSR_KVM_ASYNC_PF_INT needs an in-kernel LAPIC even for 0 (x86.c kvm_pv_enable_async_pf_int).
                if (msr == 0x4b56_4d06) Assert.Throws<MsrAccessException>(() => vcpu.SetMsr(msr, value));
                else vcpu.SetMsr(msr, value); // IA32_TSC moved on meanwhile: any value is taken.
            }
        });
    }

    [KvmFact]
    public void The_emulated_msr_lists_are_the_real_kernels_on_the_genoa_kvm_pvm_host()
    {
        Skip.IfNot(HostIsKvmPvm && HostMatching.HostCpuModel == X86CpuModel.EpycGenoa,
            "the lists were probed on the EPYC Genoa kvm_pvm machine; this host is another");
        using var realKvm = Kvm.Open(LinuxKernel.Instance);
        using var emulated = new EmulatedKernel(HostMatching.LikeThisHostAsItIs());
        using var emulatedKvm = Kvm.Open(emulated);
        Assert.Equal(realKvm.GetMsrIndexList(), emulatedKvm.GetMsrIndexList());
        Assert.Equal(realKvm.GetMsrFeatureIndexList(), emulatedKvm.GetMsrFeatureIndexList());
    }
}
