// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Kernel.Tracing;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// <see cref="TracingKernel"/>: strace-style lines for every call, the same program giving the same lines on the real
/// kernel and on the emulator that plays this machine, and every descriptor it hands out closed through it.
/// </summary>
public class TracingKernelTests : KernelTest
{
    /// <summary>Real mode, CS:IP = 0:0: a HLT, run once.</summary>
    private static List<string> TraceHaltGuest(IKernel kernel)
    {
        var lines = new List<string>();
        using (var tracing = new TracingKernel(kernel, call => lines.Add(call.ToString()), comparable: true))
        using (var kvm = Kvm.Open(tracing))
        using (var vm = kvm.CreateVm())
        {
            _ = vm.CheckExtension(KvmSharp.Abi.KvmCaps.KVM_CAP_USER_MEMORY2);
            using var memory = vm.AllocateMemory(0x1000);
            memory.Write(0, RealMode.Assemble(0, asm => asm.hlt()));
            using var slot = vm.AddMemorySlot(slot: 0, guestPhysicalAddress: 0, memory);
            using var vcpu = vm.CreateVcpu();
            RealMode.StartAt(vcpu, 0);
            Assert.Equal(KvmSharp.Abi.KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);
        }
        return lines;
    }

    [KvmFact]
    public void The_same_program_traces_the_same_lines_on_the_real_kernel_and_on_the_emulator_of_this_machine()
    {
        var real = TraceHaltGuest(LinuxKernel.Instance);
        using var emulated = new EmulatedKernel(HostMatching.LikeThisHostAsItIs());
        var emulator = TraceHaltGuest(emulated);
        Assert.Equal(real, emulator);
        Assert.Equal(0, emulated.OpenFdCount);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Descriptors_are_named_by_what_created_them_and_kvm_run_shows_its_exit(string kernel)
    {
        var k = Kernels.Create(kernel);
        try
        {
            var lines = TraceHaltGuest(k);
            Assert.StartsWith("open(\"/dev/kvm\", 0x2) = ", lines[0], StringComparison.Ordinal);
            Assert.EndsWith(" kvm#1", lines[0], StringComparison.Ordinal);
            Assert.Contains(lines, l => l.StartsWith("ioctl(kvm#1, KVM_CREATE_VM, KVM_X86_DEFAULT_VM) = ", StringComparison.Ordinal) && l.EndsWith(" vm#1", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("ioctl(vm#1, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2) = ", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("ioctl(vm#1, KVM_CREATE_VCPU, 0) = ", StringComparison.Ordinal) && l.EndsWith(" vcpu#1", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("mmap(NULL, 0x", StringComparison.Ordinal) && l.Contains(", MAP_SHARED|0x0, vcpu#1, 0x0) = ", StringComparison.Ordinal));
            Assert.Contains("ioctl(vcpu#1, KVM_RUN, 0) = 0 KVM_EXIT_HLT", lines);
            // Every descriptor handed out was closed through the tracer, the VM's after its vCPU's.
            int vcpuClosed = lines.IndexOf("close(vcpu#1) = 0");
            Assert.True(vcpuClosed >= 0 && lines.IndexOf("close(vm#1) = 0") > vcpuClosed, string.Join('\n', lines));
            Assert.Equal("close(kvm#1) = 0", lines[^1]);
        }
        finally
        {
            (k as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void Guest_memfd_calls_decode_their_structs_and_failures_name_the_errno()
    {
        var lines = new List<string>();
        using var emulated = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using (var tracing = new TracingKernel(emulated, call => lines.Add(call.ToString()), comparable: true))
        using (var kvm = Kvm.Open(tracing, proposals: emulated.Config.Proposals))
        using (var vm = kvm.CreateVm(VmType.SwProtected))
        {
            using var gmem = vm.CreateGuestMemfd(0x200000, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
            using var slot = vm.AddGuestMemfdSlot(slot: 1, guestPhysicalAddress: 0x1_0000_0000, size: 0x200000, gmem);
            gmem.PunchHole(0, 0x1000);
            Assert.Throws<KvmException>(() => vm.CreateGuestMemfd(4095));
            Assert.ThrowsAny<KvmException>(() => gmem.SetAttributes(0x1000, 0x300000, KvmSharp.Abi.KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE));
        }
        Assert.Contains("ioctl(vm#1, KVM_CREATE_GUEST_MEMFD, {size=0x200000, flags=GUEST_MEMFD_FLAG_MMAP|GUEST_MEMFD_FLAG_INIT_SHARED}) = fd gmem#1", lines);
        Assert.Contains(lines, l => l.StartsWith("ioctl(vm#1, KVM_SET_USER_MEMORY_REGION2, {slot=1, flags=KVM_MEM_GUEST_MEMFD, guest_phys_addr=0x100000000, " +
            "memory_size=0x200000, userspace_addr=<addr>, guest_memfd_offset=0x0, guest_memfd=gmem#1}) = 0", StringComparison.Ordinal));
        Assert.Contains("fallocate(gmem#1, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0x0, 0x1000) = 0", lines);
        Assert.Contains("ioctl(vm#1, KVM_CREATE_GUEST_MEMFD, {size=0xfff, flags=0}) = -1 EINVAL (Invalid argument)", lines);
        Assert.Contains(lines, l => l.StartsWith("ioctl(gmem#1, KVM_SET_MEMORY_ATTRIBUTES2, {offset=0x1000, size=0x300000, attributes=KVM_MEMORY_ATTRIBUTE_PRIVATE, flags=0x0}) = -1 EINVAL", StringComparison.Ordinal)
            && l.Contains("{error_offset=0x", StringComparison.Ordinal));
        Assert.Equal(0, emulated.OpenFdCount);
    }
}
