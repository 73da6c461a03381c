// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The set-up the arm64 emulator tests share: an emulated arm64 kernel (EmulatorConfig.Arm64() unless given), a VM with one memory slot holding a guest
/// program at <see cref="Arm64Guest.CodeGpa"/>, and vCPUs initialised as the selftests do (preferred target, PSCI 0.2)
/// and started there. A test's own set-up derives from it and disposes what it adds in <see cref="DisposeExtras"/>,
/// which runs after the vCPUs and before the slot, the VM and the kernel.
/// </summary>
internal class Arm64TestVm : IDisposable
{
    public Arm64TestVm(Action<A64Assembler> program, EmulatorConfig? config = null)
    {
        Kernel = new EmulatedKernel(config ?? EmulatorConfig.Arm64());
        Kvm = Kvm.Open(Kernel);
        Vm = Kvm.CreateVm();
        Host = Vm.AllocateMemory(Arm64Guest.Size);
        Host.Write(Arm64Guest.CodeGpa, Arm64Guest.Assemble(program));
        Slot = Vm.AddMemorySlot(0, 0, Host);
    }

    /// <summary>
    /// A VM on <paramref name="cpu"/> whose program is <paramref name="words"/> then a "done" ucall, with a "fail" ucall
    /// at VBAR_EL1 + 0x200 (VBAR_EL1 resets to 0): a synchronous exception at EL1 (an UNDEFINED instruction, a trap)
    /// ends the run without reaching "done", and ESR_EL1 / ELR_EL1 say which.
    /// </summary>
    public static Arm64TestVm RunningWords(Arm64CpuModel cpu, params uint[] words)
    {
        var s = new Arm64TestVm(a =>
        {
            foreach (uint w in words) a.Emit(w);
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = cpu });
        s.Host.Write(0x200, Arm64Guest.Assemble(a => Arm64Guest.Ucall(a, Arm64Guest.UcallFail)));
        return s;
    }

    /// <summary>
    /// <paramref name="insn"/> is UNDEFINED (EC 0x00 at the instruction, "done" not reached) on every preset
    /// (Neoverse N1, V1, V2), with FP enabled and with CPACR_EL1.FPEN trapping: the decode comes before
    /// CheckFPAdvSIMDEnabled64.
    /// </summary>
    public static void AssertUndefinedBeforeFpTrap(uint insn)
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            foreach (ulong cpacr in new[] { 0x30_0000UL, 0UL })
            {
                using var s = RunningWords(model, insn);
                var v = s.AddVcpu();
                v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, cpacr);
                Assert.Equal(Abi.KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
                Assert.NotEqual(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
                Assert.Equal(0x00UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
                Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
            }
        }
    }

    /// <summary>
    /// <paramref name="insn"/> on every preset (Neoverse N1, V1, V2), after <paramref name="prepare"/> set up the vCPU:
    /// with FP enabled it completes ("done"), and <paramref name="whenDone"/> checks its result; with CPACR_EL1.FPEN
    /// trapping it takes the FP access trap (EC 0x07) at the instruction, after <paramref name="whenTrapped"/>'s checks.
    /// </summary>
    public static void AssertRunsOnEveryPresetAndFollowsFpen(uint insn, Action<KvmSharp.Vcpu> prepare, Action<KvmSharp.Vcpu> whenDone, Action<KvmSharp.Vcpu>? whenTrapped = null)
    {
        foreach (var model in new[] { Arm64CpuModel.NeoverseN1, Arm64CpuModel.NeoverseV1, Arm64CpuModel.NeoverseV2 })
        {
            foreach (ulong cpacr in new[] { 0x30_0000UL, 0UL })
            {
                using var s = RunningWords(model, insn);
                var v = s.AddVcpu();
                prepare(v);
                v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, cpacr);
                Assert.Equal(Abi.KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
                bool done = v.GetOneReg(KvmArm64Regs.X(9)) == Arm64Guest.UcallDone;
                Assert.Equal(cpacr != 0, done);
                if (done)
                {
                    whenDone(v);
                    continue;
                }
                whenTrapped?.Invoke(v);
                Assert.Equal(0x07UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
                Assert.Equal(Arm64Guest.CodeGpa, v.GetOneReg(KvmArm64Regs.ElrEl1));
            }
        }
    }

    public EmulatedKernel Kernel { get; }

    public Kvm Kvm { get; }

    public Vm Vm { get; }

    public AnonymousMemory Host { get; }

    public MemorySlot Slot { get; }

    public List<KvmSharp.Vcpu> Vcpus { get; } = [];

    /// <summary>Creates the next vCPU with PSCI 0.2 and the extra KVM_ARM_VCPU_* feature bits given, PC at the program.</summary>
    public KvmSharp.Vcpu AddVcpu(uint extraFeatures = 0)
    {
        var vcpu = Vm.CreateVcpu(Vcpus.Count);
        var init = Vm.PreferredTarget();
        init.features[0] |= (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | extraFeatures;
        vcpu.Init(init);
        vcpu.SetPc(Arm64Guest.CodeGpa);
        Vcpus.Add(vcpu);
        return vcpu;
    }

    /// <summary>
    /// A new vCPU (<see cref="AddVcpu"/>), set up by <paramref name="prepare"/>, run until its first exit, which must be
    /// the ucall of a <see cref="RunningWords"/> program ("done", or "fail" from the vector): an MMIO exit.
    /// </summary>
    public KvmSharp.Vcpu RunToUcall(Action<KvmSharp.Vcpu>? prepare = null)
    {
        var v = AddVcpu();
        prepare?.Invoke(v);
        Assert.Equal(Abi.KvmExitReason.KVM_EXIT_MMIO, v.RunBounded().Reason);
        return v;
    }

    /// <summary>
    /// The <see cref="RunningWords"/> program of <paramref name="v"/> took an UNDEFINED-instruction exception (EC 0x00)
    /// at <paramref name="pc"/> and never reached "done".
    /// </summary>
    public static void AssertUndefinedAt(KvmSharp.Vcpu v, ulong pc)
    {
        Assert.NotEqual(Arm64Guest.UcallDone, v.GetOneReg(KvmArm64Regs.X(9)));
        Assert.Equal(0x00UL, v.GetOneReg(KvmArm64SysRegs.ESR_EL1) >> 26);
        Assert.Equal(pc, v.GetOneReg(KvmArm64Regs.ElrEl1));
    }

    /// <summary>Disposes what a derived set-up added (devices, more slots): after the vCPUs, before the VM.</summary>
    protected virtual void DisposeExtras()
    {
    }

    public void Dispose()
    {
        foreach (var v in Vcpus) v.Dispose();
        DisposeExtras();
        Slot.Dispose();
        Host.Dispose();
        Vm.Dispose();
        Kvm.Dispose();
    }
}
