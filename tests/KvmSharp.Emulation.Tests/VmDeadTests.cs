// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// kvm_vm_dead (KvmMain/Kvm.cs MarkDead, e.g. a TD's access to a PENDING page with SEPT_VE_DISABLE): KVM_REQ_VM_DEAD
/// reaches the vCPUs already inside KVM_RUN — one waiting in a halt and one running guest code both return EIO — and
/// every later VM ioctl answers EIO.
/// </summary>
public sealed class VmDeadTests
{
    private const ulong HaltAt = 0x1000, SpinAt = 0x2000;

    [Fact]
    public async Task A_dead_vm_ends_the_runs_of_a_halted_and_a_running_vcpu_with_eio()
    {
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var memory = AnonymousMemory.Allocate(k, 0x10000);
        using var slot = vm.AddMemorySlot(0, 0, memory);
        // vCPU 0 halts with interrupts off (it waits in KVM_RUN for good); vCPU 1 spins.
        memory.Write(HaltAt, RealMode(HaltAt, a => { a.cli(); a.hlt(); }));
        memory.Write(SpinAt, RealMode(SpinAt, a => a.inc(ax)));
        using var halted = vm.CreateVcpu(0);
        using var spinning = vm.CreateVcpu(1);
        StartAt(halted, HaltAt);
        StartAt(spinning, SpinAt);
        // An AP waits for INIT/SIPI (UNINITIALIZED: kvm_vcpu_block, then -EAGAIN when a request ends the wait): make it run.
        spinning.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        var runs = new[] { Task.Run(() => RunErrno(halted)), Task.Run(() => RunErrno(spinning)) };
        await Task.Delay(200);
        Assert.All(runs, r => Assert.False(r.IsCompleted));

        k.InvariantView.Vms.Single().MarkDead();

        var ended = await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal([Errno.EIO, Errno.EIO], ended);
        Assert.Equal(Errno.EIO, Assert.Throws<KvmException>(() => vm.CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY)).Errno);
    }

    private static Errno? RunErrno(KvmSharp.Vcpu vcpu)
    {
        try
        {
            vcpu.RunBounded();
            return null;
        }
        catch (KvmException e)
        {
            return e.Errno;
        }
    }

    /// <summary><paramref name="body"/> in an endless loop, 16-bit code at <paramref name="at"/>.</summary>
    private static byte[] RealMode(ulong at, Action<Assembler> body) => GuestCode.Assemble(a =>
    {
        var top = a.CreateLabel();
        a.Label(ref top);
        body(a);
        a.jmp(top);
    }, 16, at);

    private static void StartAt(KvmSharp.Vcpu vcpu, ulong rip)
    {
        var s = vcpu.GetSregs();
        (s.cs.@base, s.cs.selector) = (0, 0);
        vcpu.SetSregs(s);
        vcpu.SetRegs(new kvm_regs { rip = rip, rflags = 2 });
    }
}
