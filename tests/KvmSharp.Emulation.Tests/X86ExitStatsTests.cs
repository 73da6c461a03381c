// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The <c>exits</c> vCPU statistic for HLTs the kernel handles itself (X86Emulator.Execute.cs, in-kernel LAPIC): x86.c
/// vcpu_enter_guest "++vcpu->stat.exits" after every VM exit, the HLT's included, though the vCPU then blocks inside
/// KVM_RUN instead of returning to userspace (observed on Linux 6.18 kvm_pvm: HaltPollingRules.every_hlt_counts_a_halt_exit).
/// </summary>
public sealed class X86ExitStatsTests
{
    [Fact]
    public void Each_in_kernel_hlt_counts_an_exit_and_a_halt_exit()
    {
        const int Halts = 3;
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var sdk = Kvm.Open(kernel);
        using var vm = sdk.CreateVm();
        vm.CreateIrqchip();
        vm.EnableCapability(KvmCaps.KVM_CAP_HALT_POLL, 0);
        using var mem = vm.AllocateMemory(HaltTimerGuest.MemSize);
        vm.AddMemorySlot(0, 0, mem);
        HaltTimerGuest.Load(mem, HaltTimerGuest.HaltLoop(Halts, HaltTimerGuest.TimerVector, HaltTimerGuest.OneShot(1000)));
        using var vcpu = vm.CreateVcpu(0);
        HaltTimerGuest.SetUp(vcpu);
        using var stats = vcpu.OpenStatistics();
        var exit = vcpu.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, (ushort)HaltTimerGuest.DonePort), (exit.Reason, exit.IoPort));
        var st = stats.Read();
        Assert.Equal((ulong)Halts, (ulong)mem.Read<uint>(HaltTimerGuest.Count));
        // Three in-kernel HLTs and the OUT that ended KVM_RUN.
        Assert.Equal(((ulong)Halts, (ulong)Halts + 1), (st["halt_exits"], st["exits"]));
    }

    /// <summary>The exits a TD counts running to its report, with or without a TDVMCALL&lt;Instruction.HLT&gt; first (woken by an MSI).</summary>
    private static ulong TdExits(bool halt)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(kernel);
        using var td = TdGuest.Create(kvm, a =>
        {
            if (halt) TdGuest.Vmcall(a, TdxGhci.EXIT_REASON_HLT, 0);
            TdGuest.Report(a, Iced.Intel.AssemblerRegisters.r10);
        }, enableApic: true);
        using var stats = td.Vcpu.OpenStatistics();
        var run = Task.Run(td.RunToReport);
        if (halt)
        {
            // Until the vCPU blocks in KVM_RUN, then the interrupt that wakes it.
            while (stats.Read()["blocking"] == 0) Thread.Sleep(1);
            Assert.Equal(1, td.Vm.SignalMsi(0xfee0_0000, 0x30));
        }
        Assert.True(run.Wait(TimeSpan.FromSeconds(30)), "the TD did not report");
        Assert.Equal(0UL, run.Result); // TDVMCALL_STATUS_SUCCESS
        var st = stats.Read();
        Assert.Equal(halt ? 1UL : 0UL, st["halt_exits"]);
        return st["exits"];
    }

    [Fact]
    public void A_td_halt_counts_one_exit()
    {
        // tdx.c tdx_emulate_hlt → kvm_emulate_halt_noskip after a TDCALL VM exit: vcpu_enter_guest "++vcpu->stat.exits".
        Assert.Equal(TdExits(halt: false) + 1, TdExits(halt: true));
    }
}
