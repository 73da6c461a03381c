// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// What the CoCo launch conformance cases cannot see from outside: the emulated firmware's measurement is
/// deterministic, the TD vCPU's initial state after KVM_TDX_INIT_VCPU (its registers are protected), /dev/sev's
/// presence per configuration, and pre-faulting allowed only after the launch ends (kvm->arch.pre_fault_allowed).
/// </summary>
public sealed class CocoLaunchTests
{
    private static byte[] MeasureOnce(byte fill)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = kvm.CreateVm(VmType.Sev);
        using var launch = SevLaunch.Open(vm);
        launch.Init();
        launch.Start(policy: 1);
        var image = new PinnedArray<byte>(8192, 64);
        image.Span.Fill(fill);
        launch.UpdateData((nint)image.Address, 8192);
        var m = launch.Measure();
        return [.. m.Measurement, .. m.Nonce];
    }

    [Fact]
    public void Sev_measurement_is_the_same_for_the_same_launch_and_differs_with_the_image()
    {
        byte[] a = MeasureOnce(0x5a), b = MeasureOnce(0x5a), c = MeasureOnce(0x5b);
        Assert.Equal(48, a.Length);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        // The nonce is derived from the handle (1 on a fresh kernel), not random: the same in every run.
        Assert.Equal(a[32..], c[32..]);
    }

    [Fact]
    public void Dev_sev_exists_only_where_an_sev_vm_type_does()
    {
        using (var k = new EmulatedKernel(EmulatorConfig.X86_64()))
        {
            Assert.True(k.Open("/dev/sev", LinuxConstants.O_RDWR, out var fd) >= 0);
            using (fd)
            {
                Assert.Equal(0, k.Fstat(fd!, out var st));
                Assert.Equal(LinuxConstants.S_IFCHR, st.Mode & 0xf000);
                // SEV_ISSUE_CMD SEV_FACTORY_RESET (cmd 0) is not modelled: ENOTTY, never an exception
                // (SEV_PLATFORM_STATUS is: QemuSevStartupTests).
                Assert.Equal(-(long)Errno.ENOTTY, k.Ioctl(fd!, 0xC010_5300, new byte[16]));
            }
        }
        using var host = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        Assert.Equal(-(long)Errno.ENOENT, host.Open("/dev/sev", LinuxConstants.O_RDWR, out _));
    }

    private static (EmulatedKernel K, Kvm Kvm, Vm Vm, TdxLaunch Launch) Td()
    {
        var k = new EmulatedKernel(EmulatorConfig.X86_64());
        var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        var vm = kvm.CreateVm(VmType.Tdx);
        vm.EnableSplitIrqchip(24);
        var launch = new TdxLaunch(vm);
        launch.InitVm(launch.GetCapabilities().CpuidWithGpaw(52));
        return (k, kvm, vm, launch);
    }

    [Theory]
    [InlineData(48, 47)]
    [InlineData(52, 51)]
    public void Td_guest_accesses_use_the_shared_bit_init_vm_chose(int gpaw, int sharedBit)
    {
        // kvm->arch.gfn_direct_bits (tdx_td_init) decides what the guest's accesses mean, as it does for
        // KVM_TDX_INIT_MEM_REGION's "private GPA" check: the bit set is a shared access, clear a private one.
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = kvm.CreateVm(VmType.Tdx);
        vm.EnableSplitIrqchip(24);
        var launch = new TdxLaunch(vm);
        launch.InitVm(launch.GetCapabilities().CpuidWithGpaw(gpaw));
        using var gmem = vm.CreateGuestMemfd(1 << 16);
        using var slot = vm.AddGuestMemfdSlot(0, 0x10_0000, 1 << 16, gmem);
        using var vcpu = vm.CreateVcpu();
        vm.SetMemoryAttributes(0x10_0000, 1 << 16, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        var memory = GuestMemoryPath.VmOf(k, vm.Handle)!.Vcpus[0].Memory;
        var bytes = new byte[8];
        // The page is private: a private access (bit clear) reads it, the shared alias is a shared access that
        // disagrees with the attributes (KVM_EXIT_MEMORY_FAULT, not private).
        Assert.Equal(GpaStatus.Done, memory.Read(0x10_0000, bytes).Status);
        var r = memory.Read(0x10_0000 | 1UL << sharedBit, bytes);
        Assert.Equal((GpaStatus.MemoryFault, false, 0x10_0000UL), (r.Status, r.Private, r.Gpa));
        // With GPAW 48, bit 51 is an ordinary address bit: a private access to a GPA that is not private (the
        // attributes cover 1 MiB only), a memory fault marked private.
        if (gpaw == 48)
        {
            r = memory.Read(0x10_0000 | 1UL << 51, bytes);
            Assert.Equal((GpaStatus.MemoryFault, true), (r.Status, r.Private));
        }
    }

    [Fact]
    public void Td_vcpu_starts_as_the_tdx_module_leaves_it_after_init_vcpu()
    {
        var (k, kvm, vm, launch) = Td();
        using (k)
        using (kvm)
        using (vm)
        {
            using var bsp = vm.CreateVcpu(0);
            using var ap = vm.CreateVcpu(1);
            foreach (var v in new[] { bsp, ap })
            {
                v.SetCpuid(kvm.GetSupportedCpuid());
                launch.InitVcpu(v, rcx: 0xfeed_0000UL + (ulong)v.Id);
            }
            var td = GuestMemoryPath.VmOf(k, vm.Handle)!;
            var cpu0 = td.Vcpus[0].Cpu;
            var cpu1 = td.Vcpus[1].Cpu;
            Assert.Equal(0xffff_fff0UL, cpu0.Rip);
            Assert.Equal(32, cpu0.Bitness);
            Assert.False(cpu0.Paging);
            Assert.Equal(0xfeed_0000UL, cpu0.Gpr[X86.X86Cpu.RCX]);
            Assert.Equal(0xfeed_0001UL, cpu1.Gpr[X86.X86Cpu.RCX]);
            Assert.Equal(52UL, cpu0.Gpr[X86.X86Cpu.RBX]); // GPAW 52: shared bit 51
            // APIC_DEFAULT_PHYS_BASE | LAPIC_MODE_X2APIC (EN | EXTD), BSP only on the reset BSP (vCPU 0).
            Assert.Equal(0xfee0_0d00UL, cpu0.Sregs.apic_base);
            Assert.Equal(0xfee0_0c00UL, cpu1.Sregs.apic_base);
            Assert.Equal(52u, launch.GetCpuid(bsp).Single(e => e.Function == 0x8000_0008).Eax >> 16 & 0xff);
        }
    }

    [Fact]
    public void Td_pre_fault_and_run_wait_for_finalize()
    {
        var (k, kvm, vm, launch) = Td();
        using (k)
        using (kvm)
        using (vm)
        {
            using var gmem = vm.CreateGuestMemfd(1 << 20);
            using var slot = vm.AddGuestMemfdSlot(0, 0xfff0_0000, 1 << 20, gmem);
            vm.SetMemoryAttributes(0xfff0_0000, 1 << 20, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            using var vcpu = vm.CreateVcpu();
            vcpu.SetCpuid(kvm.GetSupportedCpuid());
            launch.InitVcpu(vcpu);
            // kvm_arch_vcpu_pre_fault_memory: "if (!vcpu->kvm->arch.pre_fault_allowed) return -EOPNOTSUPP;".
            var e = Assert.Throws<KvmException>(() => vcpu.PreFaultMemory(0xfff0_0000, 4096));
            Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
            // A HLT at the reset vector, added as the TD's initial memory.
            var page = new PinnedArray<byte>(4096, 4096);
            page.Span[0xff0] = 0xf4;
            launch.InitMemRegion(vcpu, 0xffff_f000, (nint)page.Address, 1);
            e = Assert.Throws<KvmException>(() => { vcpu.RunBounded(); });
            Assert.Equal(Errno.EINVAL, e.Errno);
            launch.FinalizeVm();
            Assert.Equal(0UL, vcpu.PreFaultMemory(0xfff0_0000, 4096));
            // The TD runs: its HLT instruction is a #VE (a TD halts with TDG.VP.VMCALL, TdVmcallTests), whose delivery
            // reads the IDT at GPA 0 (the reset IDTR) — a private GPA no slot backs: KVM_EXIT_MEMORY_FAULT.
            var exit = vcpu.RunBounded();
            Assert.Equal((KvmExitReason.KVM_EXIT_MEMORY_FAULT, 0UL, true), (exit.Reason, exit.MemoryFaultGpa & ~0xfffUL, exit.MemoryFaultIsPrivate));
        }
    }

    [Fact]
    public void A_failed_launch_command_changes_nothing()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = kvm.CreateVm(VmType.SevEs);
        using var launch = SevLaunch.Open(vm);
        // INIT2 with a bad GHCB version leaves need_init set: a good INIT2 still works, a second one does not.
        Assert.Throws<SevCommandException>(() => launch.Init(ghcbVersion: 3));
        launch.Init();
        using var vcpu = vm.CreateVcpu();
        launch.Start(0x4);
        // LAUNCH_UPDATE_VMSA refused for a DR7 with breakpoints enabled (sev_es_sync_vmsa): nothing protected.
        var dr = vcpu.GetDebugRegs();
        dr.dr7 = 0x401;
        vcpu.SetDebugRegs(dr);
        var ex = Assert.Throws<SevCommandException>(() => launch.UpdateVmsa());
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(0x401UL, vcpu.GetDebugRegs().dr7);
        dr.dr7 = 0x400;
        vcpu.SetDebugRegs(dr);
        launch.UpdateVmsa();
        Assert.Throws<KvmException>(() => vcpu.GetDebugRegs());
    }

    [Theory]
    [InlineData(VmType.Sev)]
    [InlineData(VmType.SevEs)]
    [InlineData(VmType.Snp)]
    public void A_vcpu_of_an_sev_vm_does_not_run_before_sev_init2(VmType type)
    {
        // svm_vcpu_pre_run: "if (to_kvm_sev_info(vcpu->kvm)->need_init) return -EINVAL;" — INIT2 itself refuses a VM
        // that has vCPUs, so such a vCPU never runs.
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = kvm.CreateVm(type);
        using var vcpu = vm.CreateVcpu();
        var ex = Assert.Throws<KvmException>(() => vcpu.RunBounded());
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal("KVM_RUN", ex.Operation);
    }
}
