// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Where the halt-polling state lives (KvmMain/HaltPolling.cs): kvm-&gt;max_halt_poll_ns and override_halt_poll_ns on
/// the emulator's VM (KvmMain/Kvm.cs), vcpu-&gt;halt_poll_ns on its vCPU (Vcpu/KvmVcpu.cs) — per VM and per vCPU, as
/// struct kvm and struct kvm_vcpu keep them.
/// </summary>
public sealed class HaltPollingStateTests
{
    private static byte[] Asm(ulong ip, Action<Assembler> program)
    {
        var a = new Assembler(16);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }

    [Fact]
    public void The_cap_sets_its_vm_only_and_halts_grow_their_vcpus_poll_time_only()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        using var other = kvm.CreateVm();
        vm.CreateIrqchip();
        vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 1_000_000_000);
        var vms = kernel.InvariantView.Vms;
        Assert.Equal(2, vms.Count);
        var (k, o) = (vms[0], vms[1]);
        Assert.Equal((1_000_000_000u, true), (k.MaxHaltPollNs, k.OverrideHaltPollNs));
        // The other VM keeps the module's halt_poll_ns (kvm_vcpu_max_halt_poll_ns without the override).
        Assert.Equal((0u, false), (o.MaxHaltPollNs, o.OverrideHaltPollNs));

        // vCPU 0 halts 10 times on a 50 µs APIC timer; vCPU 1 never runs.
        using var mem = vm.AllocateMemory(0x10000);
        vm.AddMemorySlot(0, 0, mem);
        mem.Write(0x1000, Asm(0x1000, a =>
        {
            var loop = a.CreateLabel();
            a.mov(__dword_ptr[0xF0], 0x1ff);
            a.mov(__dword_ptr[0x3E0], 0xb);
            a.mov(__dword_ptr[0x320], 0x40);
            a.Label(ref loop);
            a.cli();
            a.mov(__dword_ptr[0x380], 50_000);
            a.sti();
            a.hlt();
            a.cmp(__dword_ptr.es[0x3100], 10);
            a.jb(loop);
            a.@out(0x10, al);
        }));
        mem.Write(0x1200, Asm(0x1200, a =>
        {
            a.inc(__dword_ptr.es[0x3100]);
            a.mov(__dword_ptr[0xB0], 0);
            a.iret();
        }));
        mem.Write<uint>(0x40 * 4, 0x1200);
        using var v0 = vm.CreateVcpu(0);
        using var v1 = vm.CreateVcpu(1);
        var s = v0.GetSregs();
        s.cs.@base = 0;
        s.cs.selector = 0;
        s.ds.@base = 0xFEE00000;
        s.es.@base = 0;
        v0.SetSregs(s);
        v0.SetRegs(new kvm_regs { rip = 0x1000, rflags = 2, rsp = 0x7000 });
        Assert.Equal((0u, 0u), (k.Vcpus[0].HaltPollNs, k.Vcpus[1].HaltPollNs));
        Assert.Equal(KvmExitReason.KVM_EXIT_IO, v0.RunBounded().Reason);
        // grow_halt_poll_ns after the first halt (shorter than the 1 s maximum, so never shrunk): at least
        // halt_poll_ns_grow_start; the idle vCPU's stays 0.
        Assert.InRange(k.Vcpus[0].HaltPollNs, 10_000u, 1_000_000_000u);
        Assert.Equal(k.Vcpus[0].HaltPollNs, HaltPolling.VcpuHaltPollNs(k.Vcpus[0]));
        Assert.Equal(0u, k.Vcpus[1].HaltPollNs);
        // KVM_CAP_HALT_POLL 0 later: the VM's maximum is 0, the vCPU's value is cut at its next halt.
        vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 0);
        Assert.Equal((0u, true), (k.MaxHaltPollNs, k.OverrideHaltPollNs));
        Assert.Equal(0u, HaltPolling.MaxHaltPollNs(k.Vcpus[0]));
    }
}
