// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance;
using KvmSharp.Emulation.X86;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Runs alone: a conformance case checks for leaked descriptors by diffing /proc/self/fd, which other tests opening
/// KVM objects meanwhile would disturb.
/// </summary>
[CollectionDefinition(nameof(X2ApicCasesOnBothCpuModelsTests), DisableParallelization = true)]
public sealed class X2ApicCasesCollection;

/// <summary>
/// The x2APIC and TSC-deadline conformance cases (Conformance/Cases/X2Apic.cs, run on both kernels by
/// KvmSharp.Conformance.Tests) again on the emulator playing each CPU model this project has met, whichever machine
/// this is.
/// </summary>
[Collection(nameof(X2ApicCasesOnBothCpuModelsTests))]
public sealed class X2ApicCasesOnBothCpuModelsTests
{
    private static readonly Dictionary<string, X86CpuModel> s_models = new()
    {
        ["EpycMilan"] = X86CpuModel.EpycMilan,
        ["EpycGenoa"] = X86CpuModel.EpycGenoa,
    };

    public static TheoryData<string, string> CasesOnModels
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var @case in ConformanceSuite.Cases.Where(c => c.Group == "X2Apic"))
                foreach (string model in s_models.Keys) data.Add(@case.Name, model);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(CasesOnModels))]
    public void X2apic_case_passes_on_the_emulator_playing(string name, string model)
    {
        var target = KernelTarget.EmulatedHost($"emulated ({model})",
            profile => new EmulatedKernel(EmulatedKernels.Config(profile) with { X86Cpu = s_models[model] }));
        var result = ConformanceRunner.Run(ConformanceSuite.Find(name), target);
        Assert.True(result.Outcome == CaseOutcome.Passed, $"{result.Outcome}: {result.Reason}");
    }

    [Fact]
    public void The_x2apic_cases_exist()
    {
        // Without this the theory above could be empty.
        Assert.True(ConformanceSuite.Cases.Count(c => c.Group == "X2Apic") >= 8);
    }
}

/// <summary>
/// The emulator's x2APIC mode and TSC-deadline timer (X86/Irqchip/Lapic.cs) where the conformance cases cannot look:
/// the upstream rule kvm_pvm defers to the next KVM_RUN (HostDeviations.KvmPvmExpiredTimerInjectedAtNextRun).
/// </summary>
public sealed class X2ApicTests
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
    public void A_timer_that_expired_while_lvtt_was_masked_is_injected_when_the_guest_unmasks_it()
    {
        // lapic.c apic_timer_expired keeps the expiry pending; x86.c vcpu_run injects it ("if
        // (kvm_cpu_has_pending_timer(vcpu)) kvm_inject_pending_timer_irqs(vcpu)") only once apic_has_pending_timer
        // sees LVTT unmasked — right after the guest's unmasking write returns, upstream.
        using var kvm = Kvm.Open(new EmulatedKernel(EmulatorConfig.LikeThisHost()));
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var mem = vm.AllocateMemory(0x10000);
        vm.AddMemorySlot(0, 0, mem);
        mem.Write(0x1000UL, Asm(0x1000, a =>
        {
            var spin = a.CreateLabel();
            a.@out(0x10, al);
            a.mov(__dword_ptr[0x320], 0x30);
            a.@out(0x11, al);
            a.Label(ref spin);
            a.jmp(spin);
        }));
        using var v = vm.CreateVcpu(0);
        var s = v.GetSregs();
        s.cs.@base = 0;
        s.cs.selector = 0;
        s.ds.@base = 0xFEE00000;
        v.SetSregs(s);
        v.SetRegs(new kvm_regs { rip = 0x1000, rflags = 2 });
        var l = v.GetLapic();
        l.Svr = 0x1ff;
        l[LapicState.LvtTimerOffset] = 0x1_0030;
        l[0x380] = 1; // TMICT: one bus cycle × divide count 2 → 2 ns
        v.SetLapic(l);
        Thread.Sleep(2);
        var exit = v.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, (ushort)0x10), (exit.Reason, exit.IoPort));
        Assert.False(v.GetLapic().IsRequested(0x30), "masked: the expiry stays pending, not in IRR");
        exit = v.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_IO, (ushort)0x11), (exit.Reason, exit.IoPort));
        l = v.GetLapic();
        Assert.Equal(0x30u, l[LapicState.LvtTimerOffset]);
        Assert.True(l.IsRequested(0x30), "unmasked: injected into IRR (RFLAGS.IF clear, so not delivered)");
    }
}
