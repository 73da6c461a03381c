// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_CAP_DISABLE_QUIRKS and KVM_CAP_DISABLE_QUIRKS2 (arch/x86/kvm/x86.c kvm_vm_ioctl_check_extension and
/// kvm_vm_ioctl_enable_cap), and what turning a quirk off changes: the BSP's LVT LINT0 at APIC reset (lapic.c
/// kvm_lapic_reset) and the other vendor's hypercall instruction (x86.c emulator_fix_hypercall).
/// </summary>
public static class QuirkRules
{
    private const ulong Lint0 = KvmX86Quirks.KVM_X86_QUIRK_LINT0_REENABLED;

    [ConformanceCase("x86.c: KVM_CAP_DISABLE_QUIRKS answers 1 and KVM_CAP_DISABLE_QUIRKS2 kvm_caps.supported_quirks (at least bits 0-6, none above 11), the same on /dev/kvm and a VM; enabling: flags EINVAL, QUIRKS2 with an unsupported bit EINVAL (nothing disabled), QUIRKS (v1) takes any bits, both also after KVM_CREATE_VCPU")]
    public static void disable_quirks_capabilities_and_arguments(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_DISABLE_QUIRKS));
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_DISABLE_QUIRKS));
        long supported = kvm.CheckExtension(KvmCaps.KVM_CAP_DISABLE_QUIRKS2);
        Assert.Equal(supported, vm.CheckExtension(KvmCaps.KVM_CAP_DISABLE_QUIRKS2));
        Assert.Equal((long)vm.DisableableQuirks, supported);
        Assert.True((supported & 0x7f) == 0x7f && (supported & ~0xfffL) == 0, $"KVM_CAP_DISABLE_QUIRKS2 = 0x{supported:X}");

        var flags = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_DISABLE_QUIRKS2, flags = 1 };
        flags.args[0] = Lint0;
        AssertEinval(() => vm.EnableCapability(flags), "QUIRKS2 with flags 1");
        var v1Flags = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_DISABLE_QUIRKS, flags = 1 };
        v1Flags.args[0] = Lint0;
        AssertEinval(() => vm.EnableCapability(v1Flags), "QUIRKS with flags 1");
        // The typed call names the unknown bits; LINT0 in the same call is not disabled (vm2's vCPU below).
        var e = AssertEinval(() => vm.DisableQuirks(X86Quirks.Lint0Reenabled | (X86Quirks)(1UL << 40)), "QUIRKS2 with bit 40");
        Assert.Contains("0x10000000000", e.Message, StringComparison.Ordinal);

        vm.CreateIrqchip();
        using (var vcpu = vm.CreateVcpu(0))
            Assert.Equal(0x700u, vcpu.GetLapic()[LapicState.LvtLint0Offset]);
        vm.EnableCapability(KvmCaps.KVM_CAP_DISABLE_QUIRKS, ulong.MaxValue);
        vm.DisableQuirks(X86Quirks.Lint0Reenabled);
    }

    [ConformanceCase("lapic.c kvm_lapic_reset: the BSP's LVT LINT0 is ExtINT unmasked (0x700) while KVM_X86_QUIRK_LINT0_REENABLED is on, masked (0x10000) once disabled; an AP's is masked either way; a disabled quirk stays disabled where the kernel has 'do not allow re-enabling quirks' (disabled_quirks |= args[0])")]
    public static void lint0_reenabled_quirk(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        (uint Bsp, uint Ap) Lint0After(Action<Vm> disable)
        {
            using var vm = kvm.CreateVm();
            vm.CreateIrqchip();
            disable(vm);
            using var bsp = vm.CreateVcpu(0);
            using var ap = vm.CreateVcpu(1);
            return (bsp.GetLapic()[LapicState.LvtLint0Offset], ap.GetLapic()[LapicState.LvtLint0Offset]);
        }

        Assert.Equal((0x700u, 0x10000u), Lint0After(_ => { }));
        Assert.Equal((0x10000u, 0x10000u), Lint0After(vm => vm.DisableQuirks(X86Quirks.Lint0Reenabled)));
        Assert.Equal((0x10000u, 0x10000u), Lint0After(vm => vm.EnableCapability(KvmCaps.KVM_CAP_DISABLE_QUIRKS, Lint0)));
        // "KVM: x86: do not allow re-enabling quirks" (disabled_quirks |= args[0]) came to stable kernels as a dependency
        // of VMCS12_ALLOW_FREEZE_IN_SMM: where that quirk is offered, disabling nothing afterwards does not turn LINT0
        // back on, through either capability; before, each call replaced the set.
        bool sticky = (kvm.CheckExtension(KvmCaps.KVM_CAP_DISABLE_QUIRKS2) & (long)KvmX86Quirks.KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM) != 0;
        Assert.Equal(sticky ? (0x10000u, 0x10000u) : (0x700u, 0x10000u), Lint0After(vm =>
        {
            vm.DisableQuirks(X86Quirks.Lint0Reenabled);
            vm.DisableQuirks(X86Quirks.None);
            vm.EnableCapability(KvmCaps.KVM_CAP_DISABLE_QUIRKS, 0);
        }));

        // Disabled after the vCPU exists: the next APIC reset (KVM_SET_LAPIC does not reset; INIT does) applies it,
        // the current LINT0 stays.
        using var vm2 = kvm.CreateVm();
        vm2.CreateIrqchip();
        using var vcpu = vm2.CreateVcpu(0);
        vm2.DisableQuirks(X86Quirks.Lint0Reenabled);
        Assert.Equal(0x700u, vcpu.GetLapic()[LapicState.LvtLint0Offset]);
    }

    [ConformanceCase("x86.c emulator_fix_hypercall: with KVM_X86_QUIRK_FIX_HYPERCALL_INSN disabled the other vendor's hypercall instruction (VMCALL on an AMD host) is not rewritten but #UD with RIP on it (with the quirk on: HypercallExitRules)")]
    public static void fix_hypercall_insn_quirk(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        bool amd = CpuidVendor.IsAmdCompatible(kvm.GetSupportedCpuid());
        // The foreign instruction: VMCALL (0f 01 c1) on an AMD host, VMMCALL (0f 01 d9) on an Intel one.
        byte[] foreign = amd ? [0x0f, 0x01, 0xc1] : [0x0f, 0x01, 0xd9];
        const ulong HypercallRip = LongModeGuest.CodeGpa + 10; // after mov rax, imm64
        using (var g = IdtGuest.Create(kvm, a => { a.mov(rax, 0x1234L); Foreign(a, amd); a.hlt(); }, Halting,
            prepareVm: vm => vm.DisableQuirks(X86Quirks.FixHypercallInsn)))
        {
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"quirk off: {exit.ToString()}");
            var d = g.Single();
            Assert.True(d.Vector == 6 && d.Rip == HypercallRip, $"quirk off: vector {d.Vector} at 0x{d.Rip:X}; expected #UD at 0x{HypercallRip:X}");
            Assert.Equal(foreign, Bytes(g, HypercallRip));
        }
    }

    private static byte[] Bytes(IdtGuest g, ulong gpa)
    {
        var b = new byte[3];
        g.Guest.Memory.Read(gpa, b);
        return b;
    }

    private static IdtVector[] Halting => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v))];

    private static void Foreign(Iced.Intel.Assembler a, bool amd)
    {
        if (amd) a.vmcall();
        else a.vmmcall();
    }

    private static KvmException AssertEinval(Action call, string what)
    {
        var e = Assert.Throws<KvmException>(call);
        Assert.True(e.Errno == Errno.EINVAL, $"{what}: {e.ErrnoName}");
        return e;
    }
}
