// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;
using KvmSharp.Vmm;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// The typed CPUID API: Kvm.GetSupportedCpuid / GetEmulatedCpuid (buffer growth on E2BIG), Vcpu.SetCpuid / GetCpuid
/// and their typed errors, on every kernel. The kernel rules themselves are conformance cases (CpuidRules).
/// </summary>
public class CpuidTests : KernelTest
{
    private static CpuidEntry[] Table(int count) =>
        [CpuidEntry.Leaf(0, 0xb, 0x756e_6547, 0x6c65_746e, 0x4965_6e69),
         .. Enumerable.Range(0, count - 1).Select(i => CpuidEntry.Subleaf(0x4000_0100, (uint)i, (uint)i, 2, 3, 4))];

    /// <summary>Records the nent of each CPUID request and its result; answers E2BIG below <see cref="MinimumNent"/>.</summary>
    private sealed class CpuidCalls(IKernel inner) : DelegatingKernel(inner)
    {
        public List<(string Request, uint Nent, long Rc)> Calls { get; } = [];

        public uint MinimumNent { get; set; }

        public override long Ioctl(KernelFd fd, uint request, Span<byte> arg)
        {
            bool cpuid = request == KvmIoctls.KVM_GET_SUPPORTED_CPUID || request == KvmIoctls.KVM_GET_EMULATED_CPUID ||
                request == KvmIoctls.KVM_GET_CPUID2 || request == KvmIoctls.KVM_SET_CPUID2;
            if (!cpuid) return Inner.Ioctl(fd, request, arg);
            uint nent = MemoryMarshal.Read<kvm_cpuid2>(arg).nent;
            long rc = nent < MinimumNent && request == KvmIoctls.KVM_GET_SUPPORTED_CPUID
                ? -(long)Errno.E2BIG
                : Inner.Ioctl(fd, request, arg);
            Calls.Add((KvmIoctls.NameOf(request), nent, rc));
            return rc;
        }
    }

    private static CpuidCalls OpenCounted(string kernel, out Kvm kvm)
    {
        using (Open(kernel)) { } // skips the test where the kernel cannot run
        var counter = new CpuidCalls(Kernels.Create(kernel));
        kvm = Kvm.Open(counter);
        return counter;
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Supported_cpuid_starts_at_64_entries_and_doubles_on_E2BIG(string kernel)
    {
        var calls = OpenCounted(kernel, out var kvm);
        using (kvm) AssertSupportedCpuidGrowth(kvm, calls);
    }

    /// <summary>The buffer growth on the emulator as each known CPU (Milan: at most 64 entries; Genoa: 75).</summary>
    [Theory]
    [MemberData(nameof(VcpuStateTests.CpuModels), MemberType = typeof(VcpuStateTests))]
    public void Supported_cpuid_starts_at_64_entries_and_doubles_on_E2BIG_on_every_cpu_model(string model)
    {
        var calls = new CpuidCalls(VcpuStateTests.EmulatedOn(model));
        using var kvm = Kvm.Open(calls);
        AssertSupportedCpuidGrowth(kvm, calls);
    }

    /// <summary>
    /// Kvm.GetSupportedCpuid asks with 64 entries and doubles while the kernel answers E2BIG (cpuid.c
    /// kvm_dev_ioctl_get_cpuid: the table needs more than nent), never past KVM_MAX_CPUID_ENTRIES (256).
    /// </summary>
    private static void AssertSupportedCpuidGrowth(Kvm kvm, CpuidCalls calls)
    {
        var plain = kvm.GetSupportedCpuid();
        Assert.Contains(plain, e => e.Function == 0x4000_0000 && e.Ebx == 0x4b4d_564b);
        Assert.InRange(plain.Count, 3, 256);
        // 64, 128, ... until the table fits: all but the last E2BIG. One call with 64 on Milan (<= 64 entries),
        // 64 (E2BIG) then 128 on Genoa (75).
        var expected = new List<(string, uint, long)>();
        uint nent = 64;
        for (; nent < plain.Count; nent *= 2) expected.Add(("KVM_GET_SUPPORTED_CPUID", nent, -(long)Errno.E2BIG));
        expected.Add(("KVM_GET_SUPPORTED_CPUID", nent, 0L));
        Assert.Equal(expected, calls.Calls);

        calls.Calls.Clear();
        calls.MinimumNent = 200; // a machine with a larger table
        Assert.Equal(plain, kvm.GetSupportedCpuid());
        Assert.Equal([64u, 128u, 256u], calls.Calls.Select(c => c.Nent));

        calls.MinimumNent = 1000; // more than KVM_MAX_CPUID_ENTRIES: no asking for more than the kernel can give
        var ex = AssertErrno(Errno.E2BIG, () => kvm.GetSupportedCpuid());
        Assert.Equal("KVM_GET_SUPPORTED_CPUID", ex.Operation);
        Assert.Contains("nent=256", ex.Request, StringComparison.Ordinal);

        Assert.Contains(kvm.GetEmulatedCpuid(), e => e.Function == 0);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Set_and_get_round_trip_and_get_grows_past_64(string kernel)
    {
        var calls = OpenCounted(kernel, out var kvm);
        using (kvm)
        {
            using var vm = kvm.CreateVm();
            using var vcpu = vm.CreateVcpu(0);
            Assert.Empty(vcpu.GetCpuid());
            var small = Table(5);
            vcpu.SetCpuid(small);
            Assert.Equal(small, vcpu.GetCpuid());

            var big = Table(100);
            vcpu.SetCpuid(big);
            calls.Calls.Clear();
            Assert.Equal(big, vcpu.GetCpuid());
            Assert.Equal([("KVM_GET_CPUID2", 64u, -(long)Errno.E2BIG), ("KVM_GET_CPUID2", 128u, 0L)], calls.Calls);

            var full = Table(256);
            vcpu.SetCpuid(full);
            Assert.Equal(full, vcpu.GetCpuid());
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Errors_are_typed_with_the_request(string kernel)
    {
        using var kvm = Open(kernel);
        using var g = RealModeGuest.Create(kvm, a => a.hlt(), backing: GuestMemoryBacking.HostMemory);
        Assert.Throws<ArgumentNullException>(() => g.Vcpu.SetCpuid(null!));
        var tooMany = AssertErrno(Errno.E2BIG, () => g.Vcpu.SetCpuid(Table(257)));
        Assert.Equal("KVM_SET_CPUID2", tooMany.Operation);
        Assert.Contains("vcpu=0 nent=257", tooMany.Request, StringComparison.Ordinal);

        var table = Table(4);
        g.Vcpu.SetCpuid(table);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        g.Vcpu.SetCpuid(g.Vcpu.GetCpuid());
        var frozen = AssertErrno(Errno.EINVAL, () => g.Vcpu.SetCpuid(Table(3)));
        Assert.Equal("KVM_SET_CPUID2", frozen.Operation);
        Assert.Contains("nent=3", frozen.Request, StringComparison.Ordinal);
    }

    /// <summary>CPUID; HLT with EAX/ECX/EBX/EDX preset, on one kernel: the registers after the HLT.</summary>
    private static kvm_regs RunCpuid(string kernel, IReadOnlyList<CpuidEntry>? table, uint eax, uint ecx)
    {
        using var kvm = Open(kernel);
        using var g = RealModeGuest.Create(kvm, a => { a.cpuid(); a.hlt(); }, backing: GuestMemoryBacking.HostMemory);
        if (table is not null) g.Vcpu.SetCpuid(table);
        var regs = g.Vcpu.GetRegs();
        (regs.rax, regs.rcx, regs.rbx, regs.rdx) = (0xffff_0000_0000_0000 | eax, ecx, 0x5555_5555, 0xaaaa_aaaa);
        g.Vcpu.SetRegs(regs);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        return g.Vcpu.GetRegs();
    }

    [KvmFact]
    public void Cpuid_instruction_registers_match_the_real_kernel()
    {
        CpuidEntry[] intel =
        [
            CpuidEntry.Leaf(0, 0xb, 0x756e_6547, 0x6c65_746e, 0x4965_6e69),
            CpuidEntry.Leaf(5, 0x1234, 0x5678, 0x9abc, 0xdef0),
            CpuidEntry.Subleaf(0xb, 1, 1, 0, 0, 0x77),
            CpuidEntry.Leaf(0x4000_0000, 0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d),
            CpuidEntry.Leaf(0x8000_0000, 0x8000_0008, 0, 0, 0),
            CpuidEntry.Leaf(0x8000_0008, 0x3030, 0, 0, 0),
        ];
        (CpuidEntry[]? Table, uint Eax, uint Ecx)[] runs =
        [
            (null, 0, 0), (null, 1, 0), (intel, 0, 0), (intel, 5, 3), (intel, 0xb, 0x1f5), (intel, 0xc, 7), (intel, 0x4000_0000, 0),
            (intel, 0x4000_0001, 0), (intel, 0x8000_0008, 0), (intel, 0x8000_0009, 0), (intel, 0xd000_0000, 1),
        ];
        foreach (var (table, eax, ecx) in runs)
        {
            var real = RunCpuid(KernelTarget.Linux.Name, table, eax, ecx);
            var emulated = RunCpuid(KernelTarget.Emulated.Name, table, eax, ecx);
            string what = $"CPUID(0x{eax:X}, 0x{ecx:X}) {(table is null ? "without a table" : "")}";
            Assert.True((real.rax, real.rbx, real.rcx, real.rdx, real.rip) == (emulated.rax, emulated.rbx, emulated.rcx, emulated.rdx, emulated.rip),
                $"{what}: real {real.rax:X}/{real.rbx:X}/{real.rcx:X}/{real.rdx:X} rip {real.rip:X}, emulated {emulated.rax:X}/{emulated.rbx:X}/{emulated.rcx:X}/{emulated.rdx:X} rip {emulated.rip:X}");
        }
    }

    [Fact]
    public void CpuidEntry_helpers()
    {
        var leaf = CpuidEntry.Leaf(0x4000_0000, 1, 2, 3, 4);
        Assert.False(leaf.HasSignificantIndex);
        var sub = CpuidEntry.Subleaf(7, 1, 5, 6, 7, 8);
        Assert.True(sub.HasSignificantIndex);
        Assert.Equal(KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX, sub.Flags);
        Assert.Equal(sub, CpuidEntry.FromNative(sub.ToNative()));
        Assert.Equal(40, Marshal.SizeOf<kvm_cpuid_entry2>());
        Assert.Equal(8, Marshal.SizeOf<kvm_cpuid2>());
        Assert.Contains("0x40000000.0", leaf.ToString(), StringComparison.Ordinal);
        Assert.Equal("KVM_SET_CPUID2", KvmIoctls.NameOf(KvmIoctls.KVM_SET_CPUID2));
        Assert.Equal("KVM_GET_CPUID2", KvmIoctls.NameOf(KvmIoctls.KVM_GET_CPUID2));
        Assert.Equal("KVM_GET_SUPPORTED_CPUID", KvmIoctls.NameOf(KvmIoctls.KVM_GET_SUPPORTED_CPUID));
        Assert.Equal("KVM_GET_EMULATED_CPUID", KvmIoctls.NameOf(KvmIoctls.KVM_GET_EMULATED_CPUID));
    }

    [Fact]
    public void Arm64_answers_EINVAL_like_an_unknown_ioctl()
    {
        // arch/arm64/kvm/arm.c kvm_arch_dev_ioctl and kvm_arch_vcpu_ioctl: default -EINVAL.
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.Arm64()));
        Assert.Equal(Errno.EINVAL, Assert.ThrowsAny<KvmException>(() => kvm.GetSupportedCpuid()).Errno);
        Assert.Equal(Errno.EINVAL, Assert.ThrowsAny<KvmException>(() => kvm.GetEmulatedCpuid()).Errno);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        Assert.Equal(Errno.EINVAL, Assert.ThrowsAny<KvmException>(() => vcpu.SetCpuid(Table(1))).Errno);
        Assert.Equal(Errno.EINVAL, Assert.ThrowsAny<KvmException>(() => vcpu.GetCpuid()).Errno);
    }

    [Theory]
    [MemberData(nameof(VcpuStateTests.CpuModels), MemberType = typeof(VcpuStateTests))]
    public void Emulator_survives_short_and_garbage_buffers(string model)
    {
        using var kvm = VcpuStateTests.OpenEmulated(model);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        var k = kvm.Kernel;
        int count = kvm.GetSupportedCpuid().Count;
        // copy_from_user of the header fails: EFAULT. A header whose entries are not there: the table is built first
        // (E2BIG when nent is below its count — cpuid.c kvm_dev_ioctl_get_cpuid), then copy_to_user of the entries
        // fails: EFAULT; either way nothing is written back (probed on the Genoa host: nent 74 E2BIG, 75 EFAULT).
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, new byte[4]));
        byte[] headerOnly = new byte[8];
        headerOnly[0] = 64;
        // Milan's table fits in 64 entries, Genoa's (75) does not.
        long expected = count > 64 ? -(long)Errno.E2BIG : -(long)Errno.EFAULT;
        Assert.Equal(expected, k.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, headerOnly));
        Assert.Equal(64, headerOnly[0]);
        headerOnly[0] = (byte)(count - 1);
        Assert.Equal(-(long)Errno.E2BIG, k.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, headerOnly));
        headerOnly[0] = (byte)count;
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, headerOnly));
        Assert.Equal(count, headerOnly[0]);
        headerOnly[0] = 200;
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, headerOnly));
        Assert.Equal(200, headerOnly[0]);
        Assert.Equal(-(long)Errno.EINVAL, k.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_EMULATED_CPUID, headerOnly)); // padding unreadable
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_CPUID2, headerOnly));
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_CPUID2, new byte[7]));
        vcpu.SetCpuid(Table(3));
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_CPUID2, headerOnly));
        var rng = new Random(1);
        for (int i = 0; i < 2000; i++)
        {
            byte[] b = new byte[rng.Next(0, 200)];
            rng.NextBytes(b);
            if (b.Length >= 4 && rng.Next(2) == 0) b[1] = b[2] = b[3] = 0;
            foreach (uint r in new[] { KvmIoctls.KVM_SET_CPUID2, KvmIoctls.KVM_GET_CPUID2 })
                Assert.True(k.Ioctl(vcpu.Handle, r, b) <= 0);
            foreach (uint r in new[] { KvmIoctls.KVM_GET_SUPPORTED_CPUID, KvmIoctls.KVM_GET_EMULATED_CPUID })
                Assert.True(k.Ioctl(kvm.Handle, r, b) <= 0);
        }
    }
}
