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
    public void Cr8_with_an_in_kernel_apic_is_its_tpr_on_both_kernels() =>
        // Found by the irqchip stream (session 11): KVM_SET_SREGS's CR8 went to the emulator's CPU state, not to the local
        // APIC's TPR (kvm_set_cr8 → kvm_lapic_set_tpr), so kvm_run->cr8 read 0 after a KVM_RUN. Mutation 5 with seed
        // 22484732 sets CR8 = 0xC.
        AssertAgree([.. s_prefix, new(OpKind.EnableCap, Target: 1, A: KvmCaps.KVM_CAP_SPLIT_IRQCHIP, C: 24),
            new(OpKind.CreateVcpu, Target: 1, A: 0, Result: 2), new(OpKind.CreateVcpu, Target: 1, A: 2, Result: 3),
            new(OpKind.SregsRoundTrip, Target: 2, A: 22484732, E: 5), new(OpKind.RunVcpu, Target: 2, E: 1),
            new(OpKind.SregsRoundTrip, Target: 2, A: 1, E: 0), new(OpKind.RunVcpu, Target: 3, E: 1)]);

    [Fact]
    public void The_emulator_keeps_cr8_in_the_apic_and_an_ap_is_not_ready_for_pic_interrupts()
    {
        using var bsp = new RawVcpu(Emulated(), 0, beforeVcpu: (kernel, vm) =>
        {
            var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_SPLIT_IRQCHIP };
            cap.args[0] = 24;
            Assert.Equal(0, kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref cap, 1))));
        });
        using var ap = new RawVcpu(bsp.Kernel, 2, bsp);
        var sregs = bsp.GetSregs();
        sregs.cr8 = 0xC;
        Assert.Equal(0, bsp.Ioctl(KvmIoctls.KVM_SET_SREGS, ref sregs));
        Assert.Equal(0xCUL, bsp.GetSregs().cr8);
        var lapic = new kvm_lapic_state();
        Assert.Equal(0, bsp.Ioctl(KvmIoctls.KVM_GET_LAPIC, ref lapic));
        Assert.Equal(0xC0, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref lapic, 1))[0x80]);
        bsp.RunPage.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 1;
        Assert.Equal(-(long)Errno.EINTR, bsp.Run());
        Assert.Equal(0xCUL, MemoryMarshal.Read<ulong>(bsp.RunPage.GetSpan(KvmRunLayout.cr8, 8)));
        // kvm_cpu_accept_dm_intr: an AP's LVT0 is masked at reset, so with its APIC enabled it takes no PIC interrupt.
        var regs = new kvm_regs { rflags = 0x202 };
        Assert.Equal(0, ap.Ioctl(KvmIoctls.KVM_SET_REGS, ref regs));
        ap.RunPage.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 1;
        Assert.Equal(-(long)Errno.EINTR, ap.Run());
        Assert.Equal(0, ap.RunPage.GetSpan(KvmRunLayout.ready_for_interrupt_injection, 1)[0]);
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

        public RawVcpu(IKernel kernel, ulong id, RawVcpu? sameVm = null, Action<IKernel, KernelFd>? beforeVcpu = null)
        {
            Kernel = kernel;
            if (sameVm is null)
            {
                Assert.Equal(0, Math.Min(0, kernel.Open("/dev/kvm", LinuxConstants.O_RDWR, out _system)));
                long vm = kernel.Ioctl(_system!, KvmIoctls.KVM_CREATE_VM, 0UL);
                Assert.True(vm >= 0);
                _vm = kernel.Adopt((int)vm);
                beforeVcpu?.Invoke(kernel, _vm);
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
