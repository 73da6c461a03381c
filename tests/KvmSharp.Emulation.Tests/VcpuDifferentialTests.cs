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
}
