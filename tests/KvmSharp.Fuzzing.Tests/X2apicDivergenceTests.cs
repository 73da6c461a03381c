// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// Divergences the irqchip stream's x2APIC / KVM_CAP_X2APIC_API / resampling-irqfd calls (KernelSession.X2apic.cs)
/// found, each fixed in the emulator. Every scenario runs through raw ioctls on a kernel and returns what it observed:
/// on a machine with /dev/kvm both kernels must observe the same, and the emulator alone must observe the kernel's
/// values (so the fix stays tested without /dev/kvm).
/// </summary>
public class X2apicDivergenceTests
{
    private const int LvrOffset = 0x30, PprOffset = 0xa0, IsrOffset = 0x100, IdOffset = 0x20;
    private const uint X2apicBit = 1u << 21, LvrDirectedEoi = 1u << 24;

    private static IKernel Emulated() => KernelTarget.Emulated.CreateKernel(EmulatedProfile.LikeThisHost);

    /// <summary>
    /// KVM_SET_LAPIC with vector 0x40 in ISR while ISR was empty: kvm_apic_set_state's apic_update_ppr runs before
    /// kvm_apic_update_apicv recounts isr_count, so PPR stays 0; a second KVM_SET_LAPIC (isr_count now 1) gives 0x40.
    /// </summary>
    private static (uint First, uint Second) PprAfterSetLapic(IKernel kernel)
    {
        using var vm = new ApicVm(kernel, full: true, [0]);
        var regs = vm.GetLapic(0);
        regs[IsrOffset + 0x20] |= 1; // vector 0x40: ISR word 2, bit 0
        Assert.Equal(0, vm.SetLapic(0, regs));
        uint first = BinaryPrimitives.ReadUInt32LittleEndian(vm.GetLapic(0).AsSpan(PprOffset));
        Assert.Equal(0, vm.SetLapic(0, regs));
        uint second = BinaryPrimitives.ReadUInt32LittleEndian(vm.GetLapic(0).AsSpan(PprOffset));
        return (first, second);
    }

    [KvmFact]
    public void Ppr_after_kvm_set_lapic_agrees_on_both_kernels() =>
        Assert.Equal(PprAfterSetLapic(LinuxKernel.Instance), PprAfterSetLapic(Emulated()));

    [Fact]
    public void The_emulator_computes_ppr_in_kvm_set_lapic_with_the_old_isr_count() =>
        Assert.Equal((0u, 0x40u), PprAfterSetLapic(Emulated()));

    /// <summary>
    /// A split irqchip and a CPUID with x2APIC: LVR advertises directed EOI; KVM_CAP_X2APIC_API with
    /// KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST (8) leaves LVR alone until the next kvm_apic_set_version (KVM_SET_LAPIC).
    /// </summary>
    private static (uint AfterCpuid, uint AfterCap, uint AfterSetLapic) LvrAcrossTheCap(IKernel kernel)
    {
        using var vm = new ApicVm(kernel, full: false, [0]);
        Assert.Equal(0, vm.SetCpuidLeaf1(0, eax: 0, ecx: X2apicBit));
        uint afterCpuid = BinaryPrimitives.ReadUInt32LittleEndian(vm.GetLapic(0).AsSpan(LvrOffset));
        Assert.Equal(0, vm.EnableX2apicApi(8));
        var regs = vm.GetLapic(0);
        uint afterCap = BinaryPrimitives.ReadUInt32LittleEndian(regs.AsSpan(LvrOffset));
        Assert.Equal(0, vm.SetLapic(0, regs));
        uint afterSet = BinaryPrimitives.ReadUInt32LittleEndian(vm.GetLapic(0).AsSpan(LvrOffset));
        return (afterCpuid, afterCap, afterSet);
    }

    [KvmFact]
    public void Lvr_across_kvm_cap_x2apic_api_agrees_on_both_kernels()
    {
        using (var probe = new ApicVm(LinuxKernel.Instance, full: false, [0]))
        {
            if (probe.EnableX2apicApi(8) != 0)
            {
                Console.WriteLine("skipped: this kernel has no KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST (KVM_CAP_X2APIC_API flag 8)");
                return;
            }
        }
        Assert.Equal(LvrAcrossTheCap(LinuxKernel.Instance), LvrAcrossTheCap(Emulated()));
    }

    [Fact]
    public void The_emulator_sets_lvr_only_at_kvm_apic_set_version()
    {
        var (afterCpuid, afterCap, afterSet) = LvrAcrossTheCap(Emulated());
        Assert.Equal(LvrDirectedEoi, afterCpuid & LvrDirectedEoi);
        Assert.Equal(afterCpuid, afterCap);
        Assert.Equal(0u, afterSet & LvrDirectedEoi);
    }

    /// <summary>The same one-leaf CPUID again after the cap: kvm_vcpu_after_set_cpuid runs kvm_apic_set_version again.</summary>
    private static uint LvrAfterTheSameCpuid(IKernel kernel)
    {
        using var vm = new ApicVm(kernel, full: false, [0]);
        Assert.Equal(0, vm.SetCpuidLeaf1(0, eax: 0, ecx: X2apicBit));
        Assert.Equal(0, vm.EnableX2apicApi(8));
        Assert.Equal(0, vm.SetCpuidLeaf1(0, eax: 0, ecx: X2apicBit));
        return BinaryPrimitives.ReadUInt32LittleEndian(vm.GetLapic(0).AsSpan(LvrOffset));
    }

    [KvmFact]
    public void Lvr_after_the_same_cpuid_agrees_on_both_kernels()
    {
        using (var probe = new ApicVm(LinuxKernel.Instance, full: false, [0]))
        {
            if (probe.EnableX2apicApi(8) != 0)
            {
                Console.WriteLine("skipped: this kernel has no KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST (KVM_CAP_X2APIC_API flag 8)");
                return;
            }
        }
        Assert.Equal(LvrAfterTheSameCpuid(LinuxKernel.Instance), LvrAfterTheSameCpuid(Emulated()));
    }

    [Fact]
    public void The_emulator_sets_lvr_again_at_an_identical_kvm_set_cpuid2() =>
        Assert.Equal(0u, LvrAfterTheSameCpuid(Emulated()) & LvrDirectedEoi);

    /// <summary>
    /// The x2APIC ICR as one 64-bit register (x2apic_icr_is_split false on this host): a host WRMSR 0x830, then
    /// KVM_GET_LAPIC's 0x300, 0x304 and 0x310; then a KVM_SET_LAPIC of that page with 0x304 cleared and ICR2 = 0x55,
    /// and the page and RDMSR 0x830 again.
    /// </summary>
    private static (uint, uint, uint, uint, uint, ulong) IcrInX2apicMode(IKernel kernel)
    {
        using var vm = new ApicVm(kernel, full: true, [0, 2]);
        Assert.Equal(0, vm.SetCpuidLeaf1(2, eax: 0, ecx: X2apicBit));
        Assert.Equal(1, vm.Msrs(2, KvmIoctls.KVM_SET_MSRS, 0x1b, 0xFEE0_0C00));
        Assert.Equal(1, vm.Msrs(2, KvmIoctls.KVM_SET_MSRS, 0x830, 0x2_000C_4A5C));
        var page = vm.GetLapic(2);
        uint low = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(0x300)), high = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(0x304));
        uint icr2 = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(0x310));
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(0x304), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(0x310), 0x55);
        Assert.Equal(0, vm.SetLapic(2, page));
        var after = vm.GetLapic(2);
        Assert.Equal(1, vm.Msrs(2, KvmIoctls.KVM_GET_MSRS, 0x830, 0, out ulong icr));
        return (low, high, icr2, BinaryPrimitives.ReadUInt32LittleEndian(after.AsSpan(0x304)), BinaryPrimitives.ReadUInt32LittleEndian(after.AsSpan(0x310)), icr);
    }

    [KvmFact]
    public void Icr_in_x2apic_mode_agrees_on_both_kernels() =>
        Assert.Equal(IcrInX2apicMode(LinuxKernel.Instance), IcrInX2apicMode(Emulated()));

    [Fact]
    public void The_emulator_keeps_the_x2apic_icr_as_one_64_bit_register() =>
        Assert.Equal((0xC4A5Cu, 2u, 2u, 0x55u, 0x55u, 0x55_000C_4A5CUL), IcrInX2apicMode(Emulated()));

    /// <summary>
    /// IOAPIC pin 20 level-triggered to vector 0x40 on APIC 0 (x2APIC mode, software-enabled), a resampling irqfd on GSI
    /// 20 signalled, 0x40 put in ISR and TMR by KVM_SET_LAPIC, a host EOI (KVM_SET_MSRS of MSR 0x80b) — no KVM_RUN ever:
    /// the resamplefd's read, and the pin's IOAPIC irr bit and redirection entry.
    /// </summary>
    private static (long Resample, uint Irr, ulong Entry) HostEoiBeforeAnyRun(IKernel kernel)
    {
        using var vm = new ApicVm(kernel, full: true, [0]);
        Assert.Equal(0, vm.SetCpuidLeaf1(0, eax: 0, ecx: X2apicBit));
        Assert.Equal(1, vm.Msrs(0, KvmIoctls.KVM_SET_MSRS, 0x1b, 0xFEE0_0D00));
        Assert.Equal(1, vm.Msrs(0, KvmIoctls.KVM_SET_MSRS, 0x80f, 0x1ff));
        var chip = new kvm_irqchip { chip_id = 2 };
        Assert.Equal(0, vm.VmIoctl(KvmIoctls.KVM_GET_IRQCHIP, ref chip));
        var chipBytes = MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref chip, 1));
        BinaryPrimitives.WriteUInt64LittleEndian(chipBytes[(8 + 24 + 8 * 20)..], 0x40UL | 1UL << 15);
        Assert.Equal(0, vm.VmIoctl(KvmIoctls.KVM_SET_IRQCHIP, ref chip));
        Assert.Equal(0, Math.Min(0, kernel.EventFd(0, LinuxConstants.EFD_NONBLOCK, out var irq)));
        Assert.Equal(0, Math.Min(0, kernel.EventFd(0, LinuxConstants.EFD_NONBLOCK, out var resample)));
        using (irq)
        using (resample)
        {
            using (var l0 = irq!.Borrow())
            using (var l1 = resample!.Borrow())
            {
                var irqfd = new kvm_irqfd { fd = (uint)l0.Number, gsi = 20, flags = KvmConstants.KVM_IRQFD_FLAG_RESAMPLE, resamplefd = (uint)l1.Number };
                Assert.Equal(0, vm.VmIoctl(KvmIoctls.KVM_IRQFD, ref irqfd));
            }
            Assert.Equal(8, kernel.Write(irq!, BitConverter.GetBytes(1UL)));
            // irqfd_inject is a work item on Linux: wait until the line is high.
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                var state = new kvm_irqchip { chip_id = 2 };
                Assert.Equal(0, vm.VmIoctl(KvmIoctls.KVM_GET_IRQCHIP, ref state));
                if ((BinaryPrimitives.ReadUInt32LittleEndian(MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref state, 1))[(8 + 16)..]) & (1u << 20)) != 0) break;
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), "pin 20 went high after the signal");
                Thread.Sleep(1);
            }
            var regs = vm.GetLapic(0);
            regs[IsrOffset + 0x20] |= 1;
            regs[0x180 + 0x20] |= 1;
            Assert.Equal(0, vm.SetLapic(0, regs));
            Assert.Equal(1, vm.Msrs(0, KvmIoctls.KVM_SET_MSRS, 0x80b, 0));
            var counter = new byte[8];
            long read = kernel.Read(resample!, counter);
            var after = new kvm_irqchip { chip_id = 2 };
            Assert.Equal(0, vm.VmIoctl(KvmIoctls.KVM_GET_IRQCHIP, ref after));
            var afterBytes = MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref after, 1));
            return (read, BinaryPrimitives.ReadUInt32LittleEndian(afterBytes[(8 + 16)..]), BinaryPrimitives.ReadUInt64LittleEndian(afterBytes[(8 + 24 + 8 * 20)..]));
        }
    }

    [KvmFact]
    public void A_host_eoi_before_any_run_agrees_on_both_kernels() =>
        Assert.Equal(HostEoiBeforeAnyRun(LinuxKernel.Instance), HostEoiBeforeAnyRun(Emulated()));

    [Fact]
    public void The_emulator_tells_the_ioapic_nothing_of_a_host_eoi_before_any_run() =>
        Assert.Equal((-(long)Errno.EAGAIN, 1u << 20, 0xC040UL), HostEoiBeforeAnyRun(Emulated()));

    /// <summary>An INIT (the latched one, taken by KVM_GET_MP_STATE) after a one-leaf CPUID: RDX is that leaf's EAX.</summary>
    private static ulong RdxAfterInit(IKernel kernel, uint eax)
    {
        using var vm = new ApicVm(kernel, full: true, [0]);
        Assert.Equal(0, vm.SetCpuidLeaf1(0, eax, ecx: 0));
        var ev = new kvm_vcpu_events { flags = KvmVcpuEvents.KVM_VCPUEVENT_VALID_SMM, smi_latched_init = 1 };
        Assert.Equal(0, vm.VcpuIoctl(0, KvmIoctls.KVM_SET_VCPU_EVENTS, ref ev));
        var mp = new kvm_mp_state();
        Assert.Equal(0, vm.VcpuIoctl(0, KvmIoctls.KVM_GET_MP_STATE, ref mp));
        var regs = new kvm_regs();
        Assert.Equal(0, vm.VcpuIoctl(0, KvmIoctls.KVM_GET_REGS, ref regs));
        return regs.rdx;
    }

    [KvmFact]
    public void Rdx_after_init_agrees_on_both_kernels()
    {
        Assert.Equal(RdxAfterInit(LinuxKernel.Instance, 0), RdxAfterInit(Emulated(), 0));
        Assert.Equal(RdxAfterInit(LinuxKernel.Instance, 0xa10f11), RdxAfterInit(Emulated(), 0xa10f11));
    }

    [Fact]
    public void The_emulator_resets_rdx_to_cpuid_leaf_1_eax_at_init()
    {
        Assert.Equal(0UL, RdxAfterInit(Emulated(), 0));
        Assert.Equal(0xa10f11UL, RdxAfterInit(Emulated(), 0xa10f11));
    }

    /// <summary>
    /// vCPUs 0 and 3 both with xAPIC ID 3 (no APIC map), then KVM_CAP_X2APIC_API with 32-bit IDs, then an MSI to ID 1:
    /// the map is not rebuilt by the cap, so no destination (-1, EPERM) rather than a map's "none accepted" (0).
    /// </summary>
    private static long MsiAfterCap(IKernel kernel)
    {
        using var vm = new ApicVm(kernel, full: true, [0, 3]);
        var regs = vm.GetLapic(0);
        BinaryPrimitives.WriteUInt32LittleEndian(regs.AsSpan(IdOffset), 3u << 24);
        Assert.Equal(0, vm.SetLapic(0, regs));
        Assert.Equal(0, vm.EnableX2apicApi(1));
        var msi = new kvm_msi { address_lo = 0xFEE0_1000, data = 0x40 };
        return vm.VmIoctl(KvmIoctls.KVM_SIGNAL_MSI, ref msi);
    }

    [KvmFact]
    public void Msi_after_kvm_cap_x2apic_api_agrees_on_both_kernels() =>
        Assert.Equal(MsiAfterCap(LinuxKernel.Instance), MsiAfterCap(Emulated()));

    [Fact]
    public void The_emulator_keeps_the_apic_map_across_kvm_cap_x2apic_api() =>
        Assert.Equal(-(long)Errno.EPERM, MsiAfterCap(Emulated()));

    /// <summary>A VM with an irqchip (full, or split with 24 pins) and vCPUs, through raw ioctls.</summary>
    private sealed class ApicVm : IDisposable
    {
        private readonly IKernel _kernel;
        private readonly KernelFd? _system;
        private readonly KernelFd _vm;
        private readonly Dictionary<int, KernelFd> _vcpus = [];

        public ApicVm(IKernel kernel, bool full, int[] ids)
        {
            _kernel = kernel;
            Assert.Equal(0, Math.Min(0, kernel.Open("/dev/kvm", LinuxConstants.O_RDWR, out _system)));
            long vm = kernel.Ioctl(_system!, KvmIoctls.KVM_CREATE_VM, 0UL);
            Assert.True(vm >= 0, $"KVM_CREATE_VM: {vm}");
            _vm = kernel.Adopt((int)vm);
            if (full)
            {
                Assert.Equal(0, kernel.Ioctl(_vm, KvmIoctls.KVM_CREATE_IRQCHIP, 0UL));
            }
            else
            {
                var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_SPLIT_IRQCHIP };
                cap.args[0] = 24;
                Assert.Equal(0, VmIoctl(KvmIoctls.KVM_ENABLE_CAP, ref cap));
            }
            foreach (int id in ids)
            {
                long fd = kernel.Ioctl(_vm, KvmIoctls.KVM_CREATE_VCPU, (ulong)id);
                Assert.True(fd >= 0, $"KVM_CREATE_VCPU {id}: {fd}");
                _vcpus[id] = kernel.Adopt((int)fd);
            }
        }

        public long VmIoctl<T>(uint request, ref T arg) where T : unmanaged =>
            _kernel.Ioctl(_vm, request, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref arg, 1)));

        public long VcpuIoctl<T>(int id, uint request, ref T arg) where T : unmanaged =>
            _kernel.Ioctl(_vcpus[id], request, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref arg, 1)));

        public long EnableX2apicApi(ulong flags)
        {
            var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X2APIC_API };
            cap.args[0] = flags;
            return VmIoctl(KvmIoctls.KVM_ENABLE_CAP, ref cap);
        }

        public byte[] GetLapic(int id)
        {
            var lapic = new kvm_lapic_state();
            Assert.Equal(0, VcpuIoctl(id, KvmIoctls.KVM_GET_LAPIC, ref lapic));
            return MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref lapic, 1)).ToArray();
        }

        /// <summary>KVM_SET_MSRS or KVM_GET_MSRS of one MSR: the count processed.</summary>
        public long Msrs(int id, uint request, uint index, ulong data) => Msrs(id, request, index, data, out _);

        public long Msrs(int id, uint request, uint index, ulong data, out ulong read)
        {
            int header = Marshal.SizeOf<kvm_msrs>();
            var buffer = new byte[header + Marshal.SizeOf<kvm_msr_entry>()];
            var head = new kvm_msrs { nmsrs = 1 };
            MemoryMarshal.Write(buffer, in head);
            var entry = new kvm_msr_entry { index = index, data = data };
            MemoryMarshal.Write(buffer.AsSpan(header), in entry);
            long rc = _kernel.Ioctl(_vcpus[id], request, buffer);
            read = MemoryMarshal.Read<kvm_msr_entry>(buffer.AsSpan(header)).data;
            return rc;
        }

        public long SetLapic(int id, byte[] regs) => _kernel.Ioctl(_vcpus[id], KvmIoctls.KVM_SET_LAPIC, regs);

        /// <summary>KVM_SET_CPUID2 of one entry: leaf 1 with <paramref name="eax"/> and <paramref name="ecx"/>.</summary>
        public long SetCpuidLeaf1(int id, uint eax, uint ecx)
        {
            int header = Marshal.SizeOf<kvm_cpuid2>();
            var buffer = new byte[header + Marshal.SizeOf<kvm_cpuid_entry2>()];
            var head = new kvm_cpuid2 { nent = 1 };
            MemoryMarshal.Write(buffer, in head);
            var entry = new kvm_cpuid_entry2 { function = 1, eax = eax, ecx = ecx };
            MemoryMarshal.Write(buffer.AsSpan(header), in entry);
            return _kernel.Ioctl(_vcpus[id], KvmIoctls.KVM_SET_CPUID2, buffer);
        }

        public void Dispose()
        {
            foreach (var fd in _vcpus.Values) fd.Dispose();
            _vm.Dispose();
            _system?.Dispose();
        }
    }
}
