// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM's paravirtual MSRs in a micro-VM (GUEST-ABI.md, "CPUID"): with the sandbox policy leaf 0x40000001 is all zero
/// and the VMM turns on KVM_CAP_ENFORCE_PV_FEATURE_CPUID, so a guest WRMSR/RDMSR of kvmclock, steal time or async PF
/// is a #GP on the real kernel and on the emulator built like this host, with the same body. Without the enforcement
/// KVM takes the write and keeps writing a pvclock structure at the guest-chosen address, which neither Reset() nor a
/// snapshot restore would stop (the isolation problem the enforcement closes).
/// </summary>
public sealed class MicroVmPvMsrTests
{
    private const uint MsrKvmWallClockNew = 0x4b56_4d00;
    private const uint MsrKvmSystemTimeNew = 0x4b56_4d01;
    private const uint MsrKvmAsyncPfEn = 0x4b56_4d02;
    private const uint MsrKvmStealTime = 0x4b56_4d03;
    private const uint MsrKvmWallClock = 0x11;
    private const uint MsrKvmSystemTime = 0x12;

    /// <summary>A page in the image area where the guest asks KVM to write its pvclock structure.</summary>
    private const ulong PvclockGpa = 0x1F_0000;

    private static readonly Lazy<GuestImage> Guest = new(MsrGuest);

    /// <summary><c>wrmsr(index, value)</c> → 0; <c>rdmsr(index)</c> → the value; <c>read64(address)</c>.</summary>
    private static GuestImage MsrGuest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start");
        Label read64 = p.Export("read64");
        p.Place(ref start);
        p.ExitWith(0);
        p.AddMsrFunctions();

        p.Place(ref read64);
        a.mov(rax, __qword_ptr[rdi]);
        a.ret();
        return p.Build(start);
    }

    private static T OnKernel<T>(bool real, Func<IKernel, EmulatorConfig?, T> body)
    {
        if (real) return body(LinuxKernel.Instance, null);
        EmulatorConfig config = HostMatching.LikeThisHostAsItIs();
        using var emulated = new EmulatedKernel(config);
        return body(emulated, config);
    }

    private static MicroVm Create(Kvm kvm, CpuidPolicy policy = CpuidPolicy.Sandbox) =>
        MicroVm.Create(Guest.Value, new MicroVmOptions { Kvm = kvm, Memory = null, Cpuid = policy, Timeout = TimeSpan.FromSeconds(10) });

    private static void AssertGp(CallResult r, string what)
    {
        Assert.True(r.Outcome == GuestOutcome.Exception, $"{what}: {r}");
        Assert.Equal(13, r.Exception!.Vector);
    }

    public static TheoryData<bool> BothKernels() => [true, false];

    [KvmTheory]
    [MemberData(nameof(BothKernels))]
    public void With_the_sandbox_policy_a_guest_wrmsr_to_kvmclock_is_a_general_protection_fault(bool real)
    {
        OnKernel(real, (kernel, config) =>
        {
            using var kvm = Kvm.Open(kernel, proposals: config?.Proposals);
            using var vm = Create(kvm);
            AssertGp(vm.Call("wrmsr", MsrKvmSystemTimeNew, PvclockGpa | 1), "WRMSR MSR_KVM_SYSTEM_TIME_NEW");
            // After an exception the micro-VM must be reset; the enforcement belongs to the vCPU and stays.
            vm.Reset();
            // The pvclock page stays untouched (without enforcement KVM writes version 2 and the time there).
            Assert.Equal(0UL, vm.Call("read64", PvclockGpa).Value);
            AssertGp(vm.Call("rdmsr", MsrKvmSystemTimeNew), "RDMSR MSR_KVM_SYSTEM_TIME_NEW after Reset");
            vm.Reset();
            // The supported policy announces the host's PV features and sets no enforcement (nothing to enforce).
            Assert.False(GuestCpuid.EnforcesPvFeatures(kvm, CpuidPolicy.Supported));
            Assert.True(GuestCpuid.EnforcesPvFeatures(kvm, CpuidPolicy.Sandbox));
            return 0;
        });
    }

    [KvmTheory]
    [MemberData(nameof(BothKernels))]
    public void With_the_sandbox_policy_every_kvm_pv_msr_faults_on_read_and_write(bool real)
    {
        OnKernel(real, (kernel, config) =>
        {
            using var kvm = Kvm.Open(kernel, proposals: config?.Proposals);
            using var vm = Create(kvm);
            foreach (uint msr in new[] { MsrKvmWallClockNew, MsrKvmSystemTimeNew, MsrKvmAsyncPfEn, MsrKvmStealTime, MsrKvmWallClock, MsrKvmSystemTime })
            {
                AssertGp(vm.Call("rdmsr", msr), $"RDMSR 0x{msr:X}");
                vm.Reset();
                AssertGp(vm.Call("wrmsr", msr, 0UL), $"WRMSR 0x{msr:X}, 0");
                vm.Reset();
            }
            return 0;
        });
    }
}
