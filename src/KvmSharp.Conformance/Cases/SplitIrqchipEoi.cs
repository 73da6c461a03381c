// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// A split irqchip's EOI exit (KVM_CAP_SPLIT_IRQCHIP: in-kernel local APICs, the IOAPIC in userspace): the EOI of a
/// vector that a level-triggered MSI route of a reserved IOAPIC pin sends leaves KVM_RUN as KVM_EXIT_IOAPIC_EOI with
/// kvm_run.eoi.vector, so the userspace IOAPIC can clear the pin's remote IRR (irq.c kvm_scan_ioapic_routes builds
/// ioapic_handled_vectors; lapic.c kvm_ioapic_send_eoi makes KVM_REQ_IOAPIC_EOI_EXIT; x86.c vcpu_enter_guest exits).
/// A 64-bit guest in x2APIC mode takes the interrupt: its handler OUTs to 0x11, writes the EOI MSR (0x80B), OUTs to 0x12
/// and returns to a loop of OUTs to 0x13. kvm_pvm exits at the delivery instead of the EOI
/// (<see cref="HostDeviations.KvmPvmSplitIrqchipEoiExitAtDelivery"/>): the same sequence of exits, another RIP.
/// </summary>
public static class SplitIrqchipEoi
{
    private const string Scan = "arch/x86/kvm/irq.c kvm_scan_ioapic_routes";
    private const string SendEoi = "lapic.c kvm_ioapic_send_eoi + x86.c vcpu_enter_guest KVM_REQ_IOAPIC_EOI_EXIT";
    private const byte ReadyPort = 0x10, BeforeEoiPort = 0x11, AfterEoiPort = 0x12, LoopPort = 0x13;
    private const uint ApicBaseMsr = 0x1b, XSpiv = 0x80f, XEoi = 0x80b;
    private const ulong X2apicBase = 0xfee0_0000 | (1UL << 8) | (1UL << 10) | (1UL << 11);
    private const int ReservedPins = 24;
    /// <summary>One handler for every vector of <see cref="FirstVector"/> .. +15, in the IdtGuest's handler area.</summary>
    private const ulong HandlerGpa = IdtGuest.HandlersGpa;
    private const int FirstVector = 0x40;

    private static void Handler(Assembler a)
    {
        a.@out(BeforeEoiPort, al);
        a.mov(ecx, XEoi);
        a.xor(eax, eax);
        a.xor(edx, edx);
        a.wrmsr();
    }

    /// <summary>RIP after the handler's EOI WRMSR (upstream's exit) and after its first OUT (kvm_pvm's).</summary>
    private static ulong ExpectedEoiRip(CaseContext ctx) => HostDeviations.KvmPvmSplitIrqchipEoiExitAtDelivery(ctx.Target.IsReal)
        ? HandlerGpa + 2
        : HandlerGpa + (ulong)GuestCode.Assemble(Handler, 64, HandlerGpa).Length;

    /// <summary>MSI data: the vector, fixed delivery, and for a level-triggered message trigger (bit 15) and assert (14).</summary>
    private static uint MsiData(int vector, bool level) => (uint)vector | (level ? (1u << 15) | (1u << 14) : 0);

    private static GsiRoute Route(uint gsi, int vector, bool level) => GsiRoute.ToMsi(gsi, 0xfee0_0000, MsiData(vector, level));

    private static long EnableX2apicApi(Vm vm, ulong flags)
    {
        var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X2APIC_API };
        cap.args[0] = flags;
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_ENABLE_CAP, Raw(ref cap));
    }

    /// <summary>
    /// The guest on a split irqchip (24 reserved pins; <paramref name="x2apicApiFlags"/> through KVM_CAP_X2APIC_API),
    /// its vCPU in x2APIC mode with SPIV <paramref name="spiv"/>, run until it loops with RFLAGS.IF set.
    /// </summary>
    private static IdtGuest Create(Kvm kvm, ulong x2apicApiFlags = 0, uint spiv = 0x1ff)
    {
        var g = IdtGuest.Create(kvm, a =>
        {
            a.@out(ReadyPort, al);
            a.sti();
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.@out(LoopPort, al);
            a.jmp(loop);
        }, [], idtLimit: 256 * 16 - 1, prepareVm: vm =>
        {
            vm.EnableSplitIrqchip(ReservedPins);
            if (x2apicApiFlags != 0) Assert.Equal(0, EnableX2apicApi(vm, x2apicApiFlags));
        });
        try
        {
            var mem = g.Guest.Memory;
            mem.Write(HandlerGpa, GuestCode.Assemble(a =>
            {
                Handler(a);
                a.@out(AfterEoiPort, al);
                a.iretq();
            }, 64, HandlerGpa));
            for (int v = FirstVector; v < FirstVector + 16; v++)
            {
                (ulong low, ulong high) = IdtGuest.Gate(HandlerGpa, Gdt.CodeSelector, GateKind.Interrupt, present: true);
                mem.Write(IdtGuest.IdtGpa + (ulong)v * 16, low);
                mem.Write(IdtGuest.IdtGpa + (ulong)v * 16 + 8, high);
            }
            var vcpu = g.Vcpu;
            vcpu.SetCpuid(kvm.GetSupportedCpuid());
            Assert.True(vcpu.SetMsrs([new MsrEntry(ApicBaseMsr, X2apicBase)]) == 1, "APIC base to x2APIC");
            Assert.True(vcpu.SetMsrs([new MsrEntry(XSpiv, spiv)]) == 1, "SPIV");
            GuestProgrammedIrqchip.RunTo(g, ReadyPort);
            GuestProgrammedIrqchip.RunTo(g, LoopPort);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends an interrupt with <paramref name="fire"/> and runs until the handler has returned to the loop: the exits
    /// in between, "out 0x11", "eoi 0x40 rip 0x…", "out 0x12".
    /// </summary>
    private static List<string> Round(IdtGuest g, Action fire, string what)
    {
        fire();
        var seen = new List<string>();
        for (int i = 0; i < 32; i++)
        {
            var exit = g.Vcpu.Run();
            if (exit.IsIoapicEoi)
            {
                seen.Add($"eoi 0x{exit.IoapicEoiVector:X} rip 0x{g.Vcpu.GetRegs().rip:X}");
                continue;
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"{what}: {exit.ToString()} after [{string.Join(", ", seen)}]");
            if (exit.IoPort == LoopPort)
            {
                if (seen.Contains($"out 0x{AfterEoiPort:X}")) return seen;
                continue;
            }
            seen.Add($"out 0x{exit.IoPort:X}");
        }
        throw new Xunit.Sdk.XunitException($"{what}: the handler did not return to the loop: [{string.Join(", ", seen)}]");
    }

    private static void AssertRound(IdtGuest g, Action fire, int? eoiVector, ulong eoiRip, string what)
    {
        var got = Round(g, fire, what);
        List<string> expected = eoiVector is int v
            ? [$"out 0x{BeforeEoiPort:X}", $"eoi 0x{v:X} rip 0x{eoiRip:X}", $"out 0x{AfterEoiPort:X}"]
            : [$"out 0x{BeforeEoiPort:X}", $"out 0x{AfterEoiPort:X}"];
        Assert.True(expected.SequenceEqual(got), $"{what}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", got)}]");
    }

    [ConformanceCase(Scan + ": ioapic_handled_vectors holds the vector of every MSI route of a GSI below KVM_CAP_SPLIT_IRQCHIP's args[0] (nr_reserved_ioapic_pins) that is level-triggered (MSI data bit 15) and targets the vCPU; " + SendEoi + ": the guest's EOI of such a vector ends KVM_RUN with KVM_EXIT_IOAPIC_EOI (26), kvm_run.eoi.vector the vector, RIP after the EOI write — an edge route's vector and a level route at GSI 30 (≥ 24 reserved pins) make none; the filter is by vector, so the same vector sent by KVM_SIGNAL_MSI as edge exits too, a vector no route names does not (kvm_pvm: the exit comes at the delivery, HostDeviations.KvmPvmSplitIrqchipEoiExitAtDelivery)")]
    public static void split_irqchip_level_msi_route_eoi_exits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Create(kvm);
        var vm = g.Guest.Vm;
        vm.SetGsiRouting([Route(5, 0x40, level: true), Route(6, 0x41, level: false), Route(30, 0x42, level: true)]);
        ulong rip = ExpectedEoiRip(ctx);
        AssertRound(g, () => Assert.Equal(1, vm.SetIrqLine(5, true)), 0x40, rip, "GSI 5, level, vector 0x40");
        AssertRound(g, () => Assert.Equal(1, vm.SetIrqLine(6, true)), null, rip, "GSI 6, edge, vector 0x41");
        AssertRound(g, () => Assert.Equal(1, vm.SetIrqLine(30, true)), null, rip, "GSI 30 (not a reserved pin), level, vector 0x42");
        AssertRound(g, () => Assert.Equal(1, vm.SignalMsi(0xfee0_0000, MsiData(0x40, level: false))), 0x40, rip, "KVM_SIGNAL_MSI edge vector 0x40");
        AssertRound(g, () => Assert.Equal(1, vm.SignalMsi(0xfee0_0000, MsiData(0x44, level: false))), null, rip, "KVM_SIGNAL_MSI vector 0x44, no route");
    }

    [ConformanceCase("irq.c kvm_arch_irq_routing_update (irqchip_split: kvm_make_scan_ioapic_request) → x86.c vcpu_scan_ioapic → " + Scan + ": KVM_SET_GSI_ROUTING rescans ioapic_handled_vectors — GSI 5's route to vector 0x40 made edge-triggered ends its KVM_EXIT_IOAPIC_EOI, made level-triggered again brings it back; a level route added at GSI 6 for vector 0x41 adds its exit (" + SendEoi + ")")]
    public static void split_irqchip_eoi_exit_follows_gsi_routing(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = Create(kvm);
        var vm = g.Guest.Vm;
        ulong rip = ExpectedEoiRip(ctx);
        void Fire(uint gsi) => Assert.Equal(1, vm.SetIrqLine(gsi, true));
        vm.SetGsiRouting([Route(5, 0x40, level: true)]);
        AssertRound(g, () => Fire(5), 0x40, rip, "GSI 5 level");
        vm.SetGsiRouting([Route(5, 0x40, level: false)]);
        AssertRound(g, () => Fire(5), null, rip, "GSI 5 rerouted edge");
        vm.SetGsiRouting([Route(5, 0x40, level: true), Route(6, 0x41, level: true)]);
        AssertRound(g, () => Fire(5), 0x40, rip, "GSI 5 rerouted level");
        AssertRound(g, () => Fire(6), 0x41, rip, "GSI 6 added level");
    }

    [ConformanceCase("lapic.c kvm_ioapic_send_eoi → kvm_lapic_suppress_eoi_broadcast on a split irqchip: SPIV's directed-EOI bit 12 (kept because kvm_apic_set_version advertises APIC_LVR_DIRECTED_EOI without the in-kernel IOAPIC) is ignored by default (KVM_SUPPRESS_EOI_BROADCAST_QUIRKED: the level route's EOI still exits with KVM_EXIT_IOAPIC_EOI) and suppresses the exit with KVM_CAP_X2APIC_API's KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST (4), which without bit 12 leaves the exit (the suppress-EOI-broadcast series this host's kernel has)")]
    public static void split_irqchip_directed_eoi_suppresses_the_exit_when_enabled(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        ulong rip = ExpectedEoiRip(ctx);
        foreach (var (flags, spiv, exits) in new[] { (0UL, 0x11ffu, true), (4UL, 0x11ffu, false), (4UL, 0x1ffu, true) })
        {
            string what = $"KVM_CAP_X2APIC_API 0x{flags:X}, SPIV 0x{spiv:X}";
            using var g = Create(kvm, flags, spiv);
            var vm = g.Guest.Vm;
            vm.SetGsiRouting([Route(5, 0x40, level: true)]);
            AssertRound(g, () => Assert.Equal(1, vm.SetIrqLine(5, true)), exits ? 0x40 : null, rip, what);
        }
    }

    [ConformanceCase("x86.c vcpu_enter_guest: KVM_REQ_IOAPIC_EOI_EXIT is checked before KVM_REQ_SCAN_IOAPIC, and ioapic_handled_vectors is the last vcpu_scan_ioapic's (" + Scan + "): after the guest ran with GSI 5 routed level to vector 0x40, a host EOI (KVM_SET_LAPIC putting 0x40 in ISR and TMR, then KVM_SET_MSRS of the x2APIC EOI MSR 0x80B: kvm_x2apic_msr_write → apic_set_eoi → kvm_ioapic_send_eoi) makes the next KVM_RUN exit with KVM_EXIT_IOAPIC_EOI, eoi.vector 0x40, before the guest runs (RIP unchanged) — also when KVM_SET_GSI_ROUTING made the route edge-triggered in between, since no entry has rescanned; a host EOI with nothing in service makes none (apic_set_eoi: no ISR vector)")]
    public static void split_irqchip_host_eoi_exits_with_the_last_scan(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (reroute, inService) in new[] { (false, true), (true, true), (false, false) })
        {
            string what = $"rerouted edge {reroute}, 0x40 in service {inService}";
            using var g = Create(kvm);
            var vm = g.Guest.Vm;
            vm.SetGsiRouting([Route(5, 0x40, level: true)]);
            GuestProgrammedIrqchip.RunTo(g, LoopPort);
            ulong rip = g.Vcpu.GetRegs().rip;
            if (reroute) vm.SetGsiRouting([Route(5, 0x40, level: false)]);
            if (inService)
            {
                var l = g.Vcpu.GetLapic();
                l[LapicState.IsrOffset + 0x10 * (0x40 >> 5)] |= 1u << (0x40 & 31);
                l[LapicState.TmrOffset + 0x10 * (0x40 >> 5)] |= 1u << (0x40 & 31);
                g.Vcpu.SetLapic(l);
            }
            Assert.True(g.Vcpu.SetMsrs([new MsrEntry(XEoi, 0)]) == 1, what + ": host EOI");
            Assert.False(g.Vcpu.GetLapic().IsInService(0x40), what + ": ISR clear after the EOI");
            var exit = g.Vcpu.Run();
            string got = exit.IsIoapicEoi ? $"eoi 0x{exit.IoapicEoiVector:X}"
                : exit.Reason == KvmExitReason.KVM_EXIT_IO ? $"out 0x{exit.IoPort:X}" : exit.ToString();
            Assert.True((inService ? "eoi 0x40" : $"out 0x{LoopPort:X}") == got, $"{what}: {got}");
            if (inService) Assert.Equal(rip, g.Vcpu.GetRegs().rip);
        }
    }
}
