// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_CAP_DISABLE_QUIRKS and KVM_CAP_DISABLE_QUIRKS2 (arch/x86/kvm/x86.c kvm_vm_ioctl_check_extension and
/// kvm_vm_ioctl_enable_cap), and what turning a quirk off changes: the BSP's LVT LINT0 at APIC reset (lapic.c
/// kvm_lapic_reset), the other vendor's hypercall instruction (x86.c emulator_fix_hypercall) and the xAPIC page of a
/// hardware-disabled or x2APIC-mode APIC (lapic.c apic_mmio_read / apic_mmio_write, KVM_X86_QUIRK_LAPIC_MMIO_HOLE) and a
/// new vCPU's MSR_PLATFORM_INFO (x86.c kvm_arch_vcpu_create, KVM_X86_QUIRK_STUFF_FEATURE_MSRS).
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

    [ConformanceCase("lapic.c apic_mmio_read / apic_mmio_write: with the APIC hardware-disabled or in x2APIC mode (set by the guest's WRMSR of IA32_APIC_BASE) the xAPIC page reads all ones and drops writes while KVM_X86_QUIRK_LAPIC_MMIO_HOLE is on; with it disabled the APIC does not claim the access (-EOPNOTSUPP) and every read and write there is a KVM_EXIT_MMIO; an enabled xAPIC-mode APIC claims its page either way")]
    public static void lapic_mmio_hole_quirk(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (mode, baseBits) in new[] { ("xAPIC", 0x800u), ("x2APIC", 0xc00u), ("hardware-disabled", 0u) })
        {
            bool claimed = mode == "xAPIC";
            foreach (bool quirk in new[] { true, false })
            {
                string what = $"{mode}, quirk {(quirk ? "on" : "off")}";
                var r = RunApicPageGuest(kvm, baseBits, quirk, what);
                if (claimed)
                {
                    // kvm_lapic_reg_read: ID 0, TPR as written, byte 1 of ID 0; no exit.
                    Assert.True(r.Exits.Count == 0, $"{what}: {string.Join("; ", r.Exits)}");
                    Assert.Equal((0x0u, 0x50u, 0x0u, 0x50u), (r.Id, r.Tpr, r.IdByte1, r.LapicTpr));
                }
                else if (quirk)
                {
                    // "memset(data, 0xff, len)" and the write dropped.
                    Assert.True(r.Exits.Count == 0, $"{what}: {string.Join("; ", r.Exits)}");
                    Assert.Equal((0xffff_ffffu, 0xffff_ffffu, 0xffu, 0x0u), (r.Id, r.Tpr, r.IdByte1, r.LapicTpr));
                }
                else
                {
                    string[] expected = ["read 0xFEE00020/4", "write 0xFEE00080/4 50000000", "read 0xFEE00080/4", "read 0xFEE00021/1"];
                    Assert.Equal(expected, r.Exits);
                    Assert.Equal((0x1111_1111u, 0x2222_2222u, 0x33u, 0x0u), (r.Id, r.Tpr, r.IdByte1, r.LapicTpr));
                }
            }
        }
    }

    [ConformanceCase("x86.c vcpu_mmio_write: the in-kernel APIC's device first, then kvm_io_bus_write(KVM_MMIO_BUS): with KVM_X86_QUIRK_LAPIC_MMIO_HOLE disabled an x2APIC-mode guest's write to the xAPIC page reaches an ioeventfd there (signalled, no KVM_EXIT_MMIO; the reads still exit); with the quirk on, or with the APIC in xAPIC mode, the APIC takes the write and the ioeventfd is not signalled")]
    public static void lapic_mmio_hole_quirk_reaches_the_mmio_bus(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (mode, baseBits, quirk) in new[] { ("x2APIC", 0xc00u, false), ("x2APIC", 0xc00u, true), ("xAPIC", 0x800u, false) })
        {
            string what = $"{mode}, quirk {(quirk ? "on" : "off")}, ioeventfd at 0xFEE00080";
            using var fd = kvm.CreateEventFd(options: EventFdOptions.NonBlocking);
            var r = RunApicPageGuest(kvm, baseBits, quirk, what, fd);
            bool bus = mode == "x2APIC" && !quirk;
            string[] expected = bus ? ["read 0xFEE00020/4", "read 0xFEE00080/4", "read 0xFEE00021/1"] : [];
            Assert.Equal(expected, r.Exits);
            bool signalled = fd.TryRead(out ulong count);
            Assert.True(signalled == bus && (!bus || count == 1), $"{what}: eventfd {(signalled ? $"signalled ({count})" : "not signalled")}");
            Assert.Equal(mode == "xAPIC" ? 0x50u : 0u, r.LapicTpr);
        }
    }

    [ConformanceCase("x86.c kvm_arch_vcpu_create: with KVM_X86_QUIRK_STUFF_FEATURE_MSRS on (default) a new vCPU's MSR_PLATFORM_INFO is MSR_PLATFORM_INFO_CPUID_FAULT (0x80000000), disabled before KVM_CREATE_VCPU it is 0 — to KVM_GET_MSRS and to the guest's RDMSR (guest_can_read_msr_platform_info); the host writes any value to a vCPU that has not run (kvm_set_msr_common MSR_PLATFORM_INFO, CPUID faulting off; the faulting rules: CpuidFaulting.cs), a guest WRMSR is a #GP; a vCPU created before the quirk is disabled keeps 0x80000000")]
    public static void stuff_feature_msrs_quirk(CaseContext ctx)
    {
        const uint PlatformInfo = 0xce;
        const ulong CpuidFault = 0x8000_0000;
        using var kvm = ctx.OpenKvm();
        if ((kvm.CheckExtension(KvmCaps.KVM_CAP_DISABLE_QUIRKS2) & (long)KvmX86Quirks.KVM_X86_QUIRK_STUFF_FEATURE_MSRS) == 0)
            CaseContext.Skip("KVM_X86_QUIRK_STUFF_FEATURE_MSRS is not offered (it came with Linux 6.12)");
        foreach (bool quirk in new[] { true, false })
        {
            string what = $"quirk {(quirk ? "on" : "off")}";
            // RDMSR 0xce into RBX; WRMSR 0xce (#GP: the handler skips the 2-byte WRMSR), then OUT 0x10.
            using var g = IdtGuest.Create(kvm, a =>
            {
                a.mov(ecx, PlatformInfo);
                a.rdmsr();
                a.shl(rdx, 32);
                a.mov(eax, eax);
                a.or(rax, rdx);
                a.mov(rbx, rax);
                a.xor(eax, eax);
                a.xor(edx, edx);
                a.wrmsr();
                a.mov(al, 0);
                a.@out(0x10, al);
                a.hlt();
            }, [new IdtVector(13, ResumeSkip: 2)], prepareVm: vm =>
            {
                if (!quirk) vm.DisableQuirks(X86Quirks.StuffFeatureMsrs);
            });
            ulong expected = quirk ? CpuidFault : 0;
            Assert.True(g.Vcpu.GetMsr(PlatformInfo) == expected, $"{what}: KVM_GET_MSRS 0x{g.Vcpu.GetMsr(PlatformInfo):X}");
            var exit = g.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == 0x10, $"{what}: {exit.ToString()}");
            Assert.True(g.Vcpu.GetRegs().rbx == expected, $"{what}: guest RDMSR 0x{g.Vcpu.GetRegs().rbx:X}");
            var d = g.Single();
            Assert.True(d.Vector == 13, $"{what}: guest WRMSR: vector {d.Vector}, expected #GP");
            Assert.Equal(expected, g.Vcpu.GetMsr(PlatformInfo));
        }

        using var vm2 = kvm.CreateVm();
        using var early = vm2.CreateVcpu(0);
        vm2.DisableQuirks(X86Quirks.StuffFeatureMsrs);
        using var late = vm2.CreateVcpu(1);
        Assert.Equal((CpuidFault, 0UL), (early.GetMsr(PlatformInfo), late.GetMsr(PlatformInfo)));
        // Host writes on vCPUs that never ran (once a vCPU has run, do_set_msr refuses any change of MSR_PLATFORM_INFO,
        // an immutable feature MSR: CpuidFaulting platform_info_is_immutable_after_run).
        foreach (var v in new[] { early, late })
        {
            foreach (ulong value in new ulong[] { 0, 0xff00, CpuidFault, 0 })
            {
                v.SetMsr(PlatformInfo, value);
                Assert.Equal(value, v.GetMsr(PlatformInfo));
            }
        }
    }

    private readonly record struct ApicPageResult(List<string> Exits, uint Id, uint Tpr, uint IdByte1, uint LapicTpr);

    /// <summary>
    /// A guest with an in-kernel irqchip and the supported CPUID (x2APIC included) that sets IA32_APIC_BASE's EN/EXTD to
    /// <paramref name="baseBits"/>, then reads xAPIC ID (0xFEE00020), writes 0x50 to TPR (0xFEE00080), reads TPR and
    /// the ID's byte 1, and does OUT 0x10; <paramref name="ioEventFd"/> (if any) is a 4-byte ioeventfd at 0xFEE00080. KVM_EXIT_MMIO reads are answered with 0x11…, 0x22…, 0x33 (one byte value per exit, in order).
    /// </summary>
    private static ApicPageResult RunApicPageGuest(Kvm kvm, uint baseBits, bool quirk, string what, EventFd? ioEventFd = null)
    {
        const ulong ApicPd = 0x8_9000;
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(ecx, 0x1b);
            a.rdmsr();
            a.and(eax, unchecked((int)~0xc00u));
            a.or(eax, (int)baseBits);
            a.wrmsr();
            a.mov(rdi, 0xFEE00000UL);
            a.mov(ebx, __dword_ptr[rdi + 0x20]);
            a.mov(__dword_ptr[rdi + 0x80], 0x50);
            a.mov(esi, __dword_ptr[rdi + 0x80]);
            a.movzx(edx, __byte_ptr[rdi + 0x21]);
            a.mov(al, 0);
            a.@out(0x10, al);
            a.hlt();
        }, [], prepareVm: vm =>
        {
            vm.CreateIrqchip();
            if (!quirk) vm.DisableQuirks(X86Quirks.LapicMmioHole);
        });
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        using var registration = ioEventFd is { } fd ? g.Guest.Vm.RegisterIoEventFd(fd, IoEventFdSpace.Mmio, 0xFEE00080, 4) : null;
        var mem = g.Guest.Memory;
        // The xAPIC page (GPA 0xFEE00000) with a 2 MiB uncached page: PDPT[3] → a page directory of its own.
        mem.Fill(ApicPd, Layout.PageSize, 0);
        mem.Write(Layout.Pdpt + 3 * 8, ApicPd | 0x3UL);
        mem.Write(ApicPd + ((0xFEE00000UL - 0xC0000000UL) >> 21) * 8, 0xFEE00000UL | 0x80 | 0x10 | 0x3);

        var exits = new List<string>();
        byte fill = 0x11;
        for (int i = 0; i < 8; i++)
        {
            var exit = g.Vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == 0x10)
            {
                var regs = g.Vcpu.GetRegs();
                return new ApicPageResult(exits, (uint)regs.rbx, (uint)regs.rsi, (uint)regs.rdx, g.Vcpu.GetLapic()[0x80]);
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO, $"{what}: {exit.ToString()} at RIP 0x{g.Vcpu.GetRegs().rip:X}");
            if (exit.MmioIsWrite)
            {
                exits.Add($"write 0x{exit.MmioAddress:X}/{exit.MmioData.Length} {Convert.ToHexString(exit.MmioData)}");
            }
            else
            {
                exits.Add($"read 0x{exit.MmioAddress:X}/{exit.MmioData.Length}");
                exit.MmioData.Fill(fill);
                fill += 0x11;
            }
        }
        throw new Xunit.Sdk.XunitException($"{what}: no OUT to 0x10 after {string.Join("; ", exits)}");
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
