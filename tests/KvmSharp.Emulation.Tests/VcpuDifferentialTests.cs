// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>The vCPU side compared with this host's kernel: reset state, creation errnos, a real-mode guest's exits.</summary>
public sealed class VcpuDifferentialTests
{
    private const string NoKvm = "/dev/kvm cannot be opened here: there is no real kernel to compare with";

    [SkippableFact]
    public void A_fresh_vcpu_reports_the_same_regs_and_sregs_on_both_kernels()
    {
        Skip.IfNot(Raw.HostHasKvm, NoKvm);
        var (realRegs, realSregs) = Fresh(LinuxKernel.Instance);
        using var emu = new EmulatedKernel();
        var (emuRegs, emuSregs) = Fresh(emu);
        Assert.Equal(realRegs, emuRegs);
        Assert.Equal(Raw.Bytes(ref realSregs).ToArray(), Raw.Bytes(ref emuSregs).ToArray());
        Assert.Equal(0, emu.OpenFdCount);

        static (kvm_regs, kvm_sregs) Fresh(IKernel k)
        {
            using var g = new RawGuest(k, slot: false);
            return (g.Regs, g.Sregs);
        }
    }

    [SkippableFact]
    public void Creation_run_and_register_errnos_agree()
    {
        Skip.IfNot(Raw.HostHasKvm, NoKvm);
        using var emu = new EmulatedKernel();
        Assert.Equal(Scenario(LinuxKernel.Instance), Scenario(emu));
        Assert.Equal(0, emu.OpenFdCount);

        static List<long> Scenario(IKernel k)
        {
            var r = new List<long>();
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            using var v0 = k.Adopt((int)k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL));
            foreach (ulong id in new ulong[] { 0, 4096, ulong.MaxValue, 1UL << 32 }) r.Add(k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, id));
            // Before any memslot: KVM_RUN and KVM_PRE_FAULT_MEMORY (shadow MMU without pages).
            r.Add(k.Ioctl(v0, KvmIoctls.KVM_RUN, 0UL));
            var pf = new kvm_pre_fault_memory { gpa = 0x1_0000, size = 4096 };
            r.Add(k.Ioctl(v0, KvmIoctls.KVM_PRE_FAULT_MEMORY, Raw.Bytes(ref pf)));
            pf.flags = 1;
            r.Add(k.Ioctl(v0, KvmIoctls.KVM_PRE_FAULT_MEMORY, Raw.Bytes(ref pf)));
            r.Add(k.Ioctl(v0, KvmIoctls.KVM_RUN, 1UL));
            r.Add(k.Ioctl(v0, IoctlEncoding._IO(0xAE, 0x77), 0UL));
            r.Add(k.Ioctl(v0, 0x1234, 0UL));
            r.Add(k.Ioctl(v0, KvmIoctls.KVM_GET_REGS, 0UL));
            r.Add(k.Ioctl(v0, KvmIoctls.KVM_CHECK_EXTENSION, 0UL));
            var s = default(kvm_sregs);
            r.Add(k.Ioctl(v0, KvmIoctls.KVM_GET_SREGS, Raw.Bytes(ref s)));
            foreach (var bad in new[] { s with { cr0 = 0x8000_0000 }, s with { efer = 0x400 }, s with { cr4 = 1UL << 11 }, s with { cr4 = 1UL << 12 }, s with { apic_base = 0xfee0_0c00 } })
            {
                var b = bad;
                r.Add(k.Ioctl(v0, KvmIoctls.KVM_SET_SREGS, Raw.Bytes(ref b)));
            }
            return r;
        }
    }

    [SkippableFact]
    public void A_real_mode_guest_exits_identically_on_both_kernels()
    {
        Skip.IfNot(Raw.HostHasKvm, NoKvm);
        using var emu = new EmulatedKernel();
        Assert.Equal(Trace(LinuxKernel.Instance), Trace(emu));

        static List<string> Trace(IKernel k)
        {
            var t = new List<string>();
            // Memory only below 128 KiB: DS = 0x7000 (base 0x70000) has no memslot, so the data accesses are MMIO.
            using var g = new RawGuest(k, slot: false);
            Assert.Equal(0, Raw.Region1(k, g.Vm, 0, 0, 0, 0x2_0000, (ulong)g.Memory.Address));
            g.RealMode(a =>
            {
                a.mov(al, 0xaa);
                a.@out(0x10, al);
                a.@in(al, 0x10);
                a.mov(bx, 0x7000);
                a.mov(ds, bx);
                a.mov(__byte_ptr[0x1234], al);
                a.mov(cx, __word_ptr[0x1234]);
                a.hlt();
            }, baseGpa: 0x1_0000);
            for (int i = 0; i < 6; i++)
            {
                long rc = g.RunOnce();
                var r = g.Regs;
                t.Add($"rc={rc} exit={g.ExitReason} rip={r.rip:X} rax={r.rax:X} rcx={r.rcx:X}");
                if (g.ExitReason == KvmExitReason.KVM_EXIT_IO)
                {
                    t.Add($"io dir={g.Run[KvmRunLayout.io_direction]} size={g.Run[KvmRunLayout.io_size]} data={g.IoData[0]:X}");
                    g.IoData[0] = 0x5c;
                }
                if (g.ExitReason == KvmExitReason.KVM_EXIT_MMIO)
                {
                    t.Add($"mmio addr={g.U64(KvmRunLayout.mmio_phys_addr):X} len={g.U32(KvmRunLayout.mmio_len)} write={g.Run[KvmRunLayout.mmio_is_write]}");
                    g.Run.Slice(KvmRunLayout.mmio_data, 2).Fill(0x33);
                }
                if (rc != 0 || g.ExitReason == KvmExitReason.KVM_EXIT_HLT) break;
            }
            return t;
        }
    }
    [SkippableFact]
    public void Random_xsave_images_set_then_get_alike_on_both_kernels()
    {
        Skip.IfNot(Raw.HostHasKvm, NoKvm);
        using var emu = new EmulatedKernel();
        var real = XsaveScenario(LinuxKernel.Instance);
        var emulated = XsaveScenario(emu);
        Assert.Equal(real.Count, emulated.Count);
        for (int i = 0; i < real.Count; i++) Assert.True(real[i] == emulated[i], $"step {i}: real {real[i]}, emulated {emulated[i]}");
        Assert.Equal(0, emu.OpenFdCount);
    }

    /// <summary>
    /// 300 images (random xstate_bv from 0x207 and now and then a bit beyond it, xcomp_bv or a reserved header byte,
    /// MXCSR mostly valid, random registers) each SET then GET on a vCPU with and one without the supported CPUID; every
    /// byte of every GET and of KVM_GET_FPU is compared (the KVM_RUN side is in the conformance case xsave_after_kvm_run
    /// and the fuzzer).
    /// </summary>
    private static List<string> XsaveScenario(IKernel k)
    {
        var log = new List<string>();
        var rng = new Random(2026);
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var bare = k.Adopt((int)k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL));
        using var full = k.Adopt((int)k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 1UL));
        var cpuid = new byte[8 + 256 * 40];
        BitConverter.TryWriteBytes(cpuid, 256);
        Assert.Equal(0, k.Ioctl(sys, KvmIoctls.KVM_GET_SUPPORTED_CPUID, cpuid));
        Assert.Equal(0, k.Ioctl(full, KvmIoctls.KVM_SET_CPUID2, cpuid));
        for (int i = 0; i < 300; i++)
        {
            var fd = rng.Next(2) == 0 ? bare : full;
            var image = new byte[4096];
            if (rng.Next(4) != 0) rng.NextBytes(image);
            ulong bv = (uint)rng.Next(8) | (rng.Next(2) == 0 ? 0x200UL : 0UL);
            if (rng.Next(10) == 0) bv |= 1UL << rng.Next(64);
            image.AsSpan(512, 64).Clear();
            BitConverter.TryWriteBytes(image.AsSpan(512), bv);
            if (rng.Next(15) == 0) image[520 + rng.Next(56)] = (byte)rng.Next(1, 256);
            uint mxcsr = rng.Next(8) == 0 ? (uint)rng.Next() : 0x1f80u | (uint)rng.Next(0x40) | ((uint)rng.Next(4) << 13) | ((uint)rng.Next(2) << 15);
            BitConverter.TryWriteBytes(image.AsSpan(24), mxcsr);
            BitConverter.TryWriteBytes(image.AsSpan(0), (ushort)(0x37fu | ((uint)rng.Next(0x10000) & 0xf00u))); // x87 exceptions masked
            BitConverter.TryWriteBytes(image.AsSpan(2), (ushort)(rng.Next(0x10000) & 0x3f00)); // no pending x87 exception
            long rc = k.Ioctl(fd, KvmIoctls.KVM_SET_XSAVE, image);
            var back = new byte[4096];
            long get = k.Ioctl(fd, rng.Next(2) == 0 ? KvmIoctls.KVM_GET_XSAVE : KvmIoctls.KVM_GET_XSAVE2, back);
            var fpu = new byte[416];
            k.Ioctl(fd, KvmIoctls.KVM_GET_FPU, fpu);
            log.Add($"{i}: set 0x{bv:X} mxcsr 0x{mxcsr:X} -> {rc}; get {get} {Convert.ToHexString(back)} fpu {Convert.ToHexString(fpu)}");
        }
        return log;
    }
}
