// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// x86 vCPU state round trips in the differential fuzzer (OpGenerator.VcpuState.cs): generated on a kernel without
/// guest_memfd, past the argument checks (SETs accepted and refused for each ioctl pair, GETs read back), never on a
/// kernel with guest_memfd, and a planted KVM_GET_FPU bug is found and reduced.
/// </summary>
public class VcpuStateFuzzingTests(ITestOutputHelper output)
{
    [KvmFact]
    public void The_vcpu_state_calls_get_past_the_argument_checks_on_the_real_kernel()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false, "the vCPU state calls are drawn on a kernel without guest_memfd");
        AssertStateCallsGetThrough(FuzzKernels.Real);
    }

    [Fact]
    public void The_vcpu_state_calls_get_past_the_argument_checks() =>
        AssertStateCallsGetThrough(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)));

    private void AssertStateCallsGetThrough(Func<IKernel> kernel)
    {
        var calls = FuzzSessions.Generate(kernel, sessions: 25);
        var ops = calls.Where(c => c.Op.Kind == OpKind.VcpuStateRoundTrip).ToList();
        Assert.InRange(ops.Count, calls.Count / 40, calls.Count / 6);
        for (int kind = 0; kind < VcpuStateOps.Names.Length; kind++)
        {
            var list = ops.Where(c => (c.Op.E & 7) == kind).Select(c => c.Outcome).ToList();
            output.WriteLine($"{VcpuStateOps.Names[kind],-12} {list.Count,5}: " + string.Join(", ", list.GroupBy(o => o.Length > 24 ? o[..24] : o).OrderByDescending(g => g.Count()).Take(8).Select(g => $"{g.Key} x{g.Count()}")));
            // Every pair: SETs accepted and refused, GETs that read the state back.
            Assert.Contains(list, o => o.StartsWith("set ok, get ok ", StringComparison.Ordinal));
            if (kind != 0) Assert.Contains(list, o => o.StartsWith("set EINVAL, get ok ", StringComparison.Ordinal));
            Assert.Contains(list, o => o.StartsWith("get ok ", StringComparison.Ordinal));
        }
        var outcomes = ops.Select(c => c.Outcome).ToList();
        Assert.Contains(outcomes, o => o.StartsWith("cpuid ok, set ok", StringComparison.Ordinal));
        Assert.Contains(outcomes, o => o.StartsWith("cpuid ok, set EINVAL", StringComparison.Ordinal));
        Assert.Contains(outcomes, o => o.Contains("get EBADF", StringComparison.Ordinal) || o.Contains("get ENOTTY", StringComparison.Ordinal));
    }

    [Fact]
    public void A_kernel_with_guest_memfd_gets_no_vcpu_state_calls()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var generator = new OpGenerator(DifferentialFuzzer.SessionSeed(seed, 0));
            for (int i = 0; i < 400; i++)
            {
                var op = generator.Next();
                Assert.NotEqual(OpKind.VcpuStateRoundTrip, op.Kind);
                generator.Observe(op, op.Kind is OpKind.OpenKvm or OpKind.CreateVm or OpKind.CreateGmem or OpKind.CreateVcpu ? "ok fd" : "ok");
            }
        }
    }

    [Fact]
    public void A_planted_get_fpu_bug_is_found_and_reduced()
    {
        Func<IKernel> kernel = () => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false));
        var fuzzer = new DifferentialFuzzer(kernel, () => new LyingKernel(kernel(), PlantedBug.FpuByteFlip)) { MaxDivergences = 1 };
        var divergence = Assert.Single(fuzzer.Run(ops: 20000, seed: 1).Divergences);
        output.WriteLine(divergence.Op + "\n  " + divergence.Reference + "\n  " + divergence.Candidate + "\n  " + string.Join("\n  ", divergence.Reproducer));
        // open, KVM_CREATE_VM, KVM_CREATE_VCPU, then the call.
        Assert.InRange(divergence.Reproducer.Count, 3, 5);
        Assert.Equal(divergence.Op, divergence.Reproducer[^1]);
        Assert.Contains("KVM_GET_FPU", divergence.Op, StringComparison.Ordinal);
    }

    /// <summary>
    /// Found with these ops: an injected hard interrupt (KVM_SET_VCPU_EVENTS) shows in KVM_GET_SREGS's interrupt_bitmap,
    /// and a bit given to KVM_SET_SREGS is queued as one (x86.c __get_sregs / __set_sregs). The emulator reported an
    /// empty bitmap and dropped the given bit.
    /// </summary>
    [KvmFact]
    public void An_injected_interrupt_is_in_the_sregs_bitmap_on_both_kernels()
    {
        string Run(IKernel kernel)
        {
            kernel.Open("/dev/kvm", LinuxConstants.O_RDWR, out var opened);
            using var sys = opened!;
            using var vm = kernel.Adopt((int)kernel.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, 0UL));
            using var vcpu = kernel.Adopt((int)kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL));
            var events = new kvm_vcpu_events { interrupt_injected = 1, interrupt_nr = 0x41 };
            Assert.Equal(0, kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_VCPU_EVENTS, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref events, 1))));
            var sregs = default(kvm_sregs);
            var bytes = MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref sregs, 1));
            Assert.Equal(0, kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, bytes));
            string text = $"{sregs.interrupt_bitmap[0]:X},{sregs.interrupt_bitmap[1]:X},{sregs.interrupt_bitmap[2]:X},{sregs.interrupt_bitmap[3]:X}";
            sregs.interrupt_bitmap = default;
            sregs.interrupt_bitmap[0] = 1UL << 0x22 | 1UL << 0x30;
            Assert.Equal(0, kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, bytes));
            Assert.Equal(0, kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, bytes));
            var read = default(kvm_vcpu_events);
            Assert.Equal(0, kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_VCPU_EVENTS, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref read, 1))));
            return text + $" | {sregs.interrupt_bitmap[0]:X},{sregs.interrupt_bitmap[1]:X} | injected={read.interrupt_injected} nr=0x{read.interrupt_nr:X}";
        }
        string linux = Run(FuzzKernels.Real());
        string emulated = Run(FuzzKernels.EmulatorLikeThisMachine());
        output.WriteLine($"linux:    {linux}\nemulated: {emulated}");
        Assert.Equal("0,2,0,0 | 400000000,0 | injected=1 nr=0x22", emulated);
        Assert.Equal(linux, emulated);
    }
}
