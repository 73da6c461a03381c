// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// Divergences the differential fuzzer found once the vCPU calls were added, each fixed in the emulator: the reduced
/// sequence must agree on both kernels, and the emulator alone must show the kernel's value (so the fix stays tested
/// on a machine without /dev/kvm).
/// </summary>
public class FoundDivergenceTests
{
    private static IKernel Emulated() => KernelTarget.Emulated.CreateKernel(EmulatedProfile.LikeThisHost);

    private static void AssertAgree(params FuzzOp[] ops)
    {
        using var linux = new KernelSession(LinuxKernel.Instance);
        using var emulated = new KernelSession(Emulated());
        foreach (var op in ops) Assert.Equal(linux.Apply(op), emulated.Apply(op));
    }

    private static readonly FuzzOp[] s_prefix =
    [
        new(OpKind.OpenKvm, Result: 0),
        new(OpKind.CreateVm, Target: 0, Result: 1),
    ];

    [KvmFact]
    public void Only_vcpu_0_is_the_bsp_on_both_kernels() =>
        // Found: apic_base 0xFEE00900 on the emulator's vCPU 1 (the kernel: 0xFEE00800, no MSR_IA32_APICBASE_BSP).
        AssertAgree([.. s_prefix, new(OpKind.CreateVcpu, Target: 1, A: 1, Result: 2), new(OpKind.CreateVcpu, Target: 1, A: 0, Result: 3),
            new(OpKind.SregsRoundTrip, Target: 2, A: 1), new(OpKind.SregsRoundTrip, Target: 3, A: 1)]);

    [Fact]
    public void The_emulator_sets_the_bsp_bit_on_vcpu_0_only()
    {
        using var vcpu0 = new RawVcpu(Emulated(), 0);
        using var vcpu1 = new RawVcpu(vcpu0.Kernel, 1, vcpu0);
        Assert.Equal(0xFEE00900UL, vcpu0.GetSregs().apic_base);
        Assert.Equal(0xFEE00800UL, vcpu1.GetSregs().apic_base);
    }

    [KvmFact]
    public void Kvm_run_loads_cr8_from_the_run_page_on_both_kernels() =>
        // Found: CR8 set with KVM_SET_SREGS survived a KVM_RUN (immediate_exit) on the emulator; the kernel replaces it
        // with kvm_run->cr8 (0) first. Mutation 5 with seed 22484732 sets CR8 = 0xC.
        AssertAgree([.. s_prefix, new(OpKind.CreateVcpu, Target: 1, A: 0, Result: 2), new(OpKind.SregsRoundTrip, Target: 2, A: 22484732, E: 5),
            new(OpKind.RunVcpu, Target: 2, E: 1), new(OpKind.SregsRoundTrip, Target: 2, A: 1, E: 0)]);

    [Fact]
    public void The_emulator_loads_cr8_from_the_run_page_before_immediate_exit()
    {
        using var vcpu = new RawVcpu(Emulated(), 0);
        var sregs = vcpu.GetSregs();
        sregs.cr8 = 0xC;
        Assert.Equal(0, vcpu.Ioctl(KvmIoctls.KVM_SET_SREGS, ref sregs));
        vcpu.RunPage.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 1;
        Assert.Equal(-(long)Errno.EINTR, vcpu.Run());
        Assert.Equal(0UL, vcpu.GetSregs().cr8);

        MemoryMarshal.Write(vcpu.RunPage.GetSpan(KvmRunLayout.cr8, 8), 7UL);
        Assert.Equal(-(long)Errno.EINTR, vcpu.Run());
        Assert.Equal(7UL, vcpu.GetSregs().cr8);
        // post_kvm_run_save mirrors it back.
        Assert.Equal(7UL, MemoryMarshal.Read<ulong>(vcpu.RunPage.GetSpan(KvmRunLayout.cr8, 8)));

        // kvm_set_cr8 refuses reserved bits: EINVAL, CR8 unchanged.
        MemoryMarshal.Write(vcpu.RunPage.GetSpan(KvmRunLayout.cr8, 8), 0x10UL);
        Assert.Equal(-(long)Errno.EINVAL, vcpu.Run());
        Assert.Equal(7UL, vcpu.GetSregs().cr8);
    }

    [KvmFact]
    public void Pre_fault_with_guest_paging_and_no_memslot_agrees_on_both_kernels() =>
        // Found: the emulator answered ENOSPC, the kernel EOPNOTSUPP (the shadow MMU's dummy root for a CR3 outside
        // every memslot lets kvm_mmu_reload succeed). Mutation 6 is the micro-VM's long-mode state.
        AssertAgree([.. s_prefix, new(OpKind.CreateVcpu, Target: 1, A: 0, Result: 2),
            new(OpKind.PreFault, Target: 2, A: 0x107000, B: 0x4000),
            new(OpKind.SregsRoundTrip, Target: 2, A: 1340999838, E: 6),
            new(OpKind.PreFault, Target: 2, A: 0x107000, B: 0x4000)]);

    [Fact]
    public void The_emulator_pre_faults_to_eopnotsupp_once_guest_paging_is_on_without_memslots()
    {
        using var vcpu = new RawVcpu(Emulated(), 0);
        var range = new kvm_pre_fault_memory { gpa = 0x107000, size = 0x4000 };
        Assert.Equal(-(long)Errno.ENOSPC, vcpu.Ioctl(KvmIoctls.KVM_PRE_FAULT_MEMORY, ref range));
        var sregs = vcpu.GetSregs();
        SregsMutation.Apply(ref sregs, 6, new Random(1340999838));
        Assert.Equal(0, vcpu.Ioctl(KvmIoctls.KVM_SET_SREGS, ref sregs));
        range = new kvm_pre_fault_memory { gpa = 0x107000, size = 0x4000 };
        Assert.Equal(-(long)Errno.EOPNOTSUPP, vcpu.Ioctl(KvmIoctls.KVM_PRE_FAULT_MEMORY, ref range));
    }

    [Fact]
    public void The_same_seed_gives_the_same_session_seeds_in_every_process()
    {
        // Found while reproducing: session seeds came from HashCode.Combine, randomized per process.
        Assert.Equal(DifferentialFuzzer.SessionSeed(1, 0), DifferentialFuzzer.SessionSeed(1, 0));
        Assert.Equal(-1_551_761_096, DifferentialFuzzer.SessionSeed(1, 0));
        Assert.NotEqual(DifferentialFuzzer.SessionSeed(1, 0), DifferentialFuzzer.SessionSeed(1, 1));
    }

    /// <summary>A vCPU through raw ioctls, with its kvm_run page mapped.</summary>
    private sealed class RawVcpu : IDisposable
    {
        private readonly KernelFd? _system, _vm;
        private readonly KernelFd _vcpu;

        public RawVcpu(IKernel kernel, ulong id, RawVcpu? sameVm = null)
        {
            Kernel = kernel;
            if (sameVm is null)
            {
                Assert.Equal(0, Math.Min(0, kernel.Open("/dev/kvm", LinuxConstants.O_RDWR, out _system)));
                long vm = kernel.Ioctl(_system!, KvmIoctls.KVM_CREATE_VM, 0UL);
                Assert.True(vm >= 0);
                _vm = kernel.Adopt((int)vm);
            }
            long fd = kernel.Ioctl(sameVm?._vm ?? _vm!, KvmIoctls.KVM_CREATE_VCPU, id);
            Assert.True(fd >= 0, $"KVM_CREATE_VCPU: {fd}");
            _vcpu = kernel.Adopt((int)fd);
            Assert.Equal(0, MappedRegion.Map(kernel, _vcpu, (ulong)Environment.SystemPageSize, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED, 0, out var run));
            RunPage = run!;
        }

        public IKernel Kernel { get; }

        public MappedRegion RunPage { get; }

        public long Ioctl<T>(uint request, ref T arg) where T : unmanaged =>
            Kernel.Ioctl(_vcpu, request, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref arg, 1)));

        public kvm_sregs GetSregs()
        {
            var sregs = new kvm_sregs();
            Assert.Equal(0, Ioctl(KvmIoctls.KVM_GET_SREGS, ref sregs));
            return sregs;
        }

        public long Run() => Kernel.Ioctl(_vcpu, KvmIoctls.KVM_RUN, 0UL);

        public void Dispose()
        {
            RunPage.Dispose();
            _vcpu.Dispose();
            _vm?.Dispose();
            _system?.Dispose();
        }
    }
}
