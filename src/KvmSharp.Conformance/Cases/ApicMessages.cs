// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Where an interrupt message goes with an in-kernel irqchip, and what KVM_SIGNAL_MSI answers: arch/x86/kvm/lapic.c
/// __kvm_irq_delivery_to_apic (the fast path over kvm-&gt;arch.apic_map — kvm_recalculate_apic_map,
/// kvm_apic_map_get_dest_lapic — and the walk over every present APIC), __apic_accept_irq by delivery mode, irq.c
/// kvm_set_msi_irq (msi_redir_hint), and the latched INIT of KVM_GET/SET_VCPU_EVENTS (x86.c
/// kvm_vcpu_ioctl_x86_get/set_vcpu_events, kvm_lapic_latched_init) with lapic.c kvm_apic_accept_events. Probed in C on
/// Linux 6.18 kvm_pvm first (the differential fuzzer's divergences of session 11); it matches upstream on all of it.
/// </summary>
public static class ApicMessages
{
    private const string Lapic = "arch/x86/kvm/lapic.c";

    private static long SignalMsi(Vm vm, uint addressLo, uint data)
    {
        var msi = new kvm_msi { address_lo = addressLo, data = data };
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SIGNAL_MSI, Raw(ref msi));
    }

    /// <summary>NMIs to physical destinations 0–3 and to the broadcast 0xff: how many APICs took each.</summary>
    private static long[] Nmis(Vm vm) =>
        [SignalMsi(vm, 0xfee00000, 0x400), SignalMsi(vm, 0xfee01000, 0x400), SignalMsi(vm, 0xfee02000, 0x400),
         SignalMsi(vm, 0xfee03000, 0x400), SignalMsi(vm, 0xfeeff000, 0x400)];

    private static void Expect(long[] expected, long[] actual, string what) =>
        Assert.True(expected.SequenceEqual(actual), $"{what}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");

    /// <summary>KVM_GET_LAPIC, <paramref name="change"/>, KVM_SET_LAPIC (which also rebuilds the APIC map).</summary>
    internal static void SetLapic(Vcpu vcpu, Action<LapicState> change)
    {
        var l = vcpu.GetLapic();
        change(l);
        vcpu.SetLapic(l);
    }

    [ConformanceCase(Lapic + " kvm_recalculate_apic_map / __kvm_irq_delivery_to_apic_fast: kvm_vm_ioctl_create_vcpu resets the new APIC (kvm_lapic_reset → kvm_recalculate_apic_map) before the vCPU is online, so a physical message to the newest vCPU's ID reaches none (0) until something recalculates the map (KVM_SET_LAPIC, a hardware-enable toggle through KVM_SET_SREGS; not a moved APIC base (KVM_SET_SREGS or the MSR: __kvm_apic_set_base dirties the map only for ENABLE or EXTD), KVM_SET_REGS, _MP_STATE, _VCPU_EVENTS or an unchanged KVM_SET_SREGS); the broadcast 0xff takes the slow path over every present APIC; two APICs with one xAPIC ID disable the map (both take a message to it, an ID nobody has is -1)")]
    public static void msi_destinations_follow_the_apic_map(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        Expect([-1, -1, -1, -1, -1], Nmis(vm), "no vCPU: no map, no APIC");
        var v = new List<Vcpu>();
        try
        {
            v.Add(vm.CreateVcpu(0));
            Expect([0, 0, 0, 0, 1], Nmis(vm), "vCPU 0: an empty map");
            v.Add(vm.CreateVcpu(1));
            Expect([1, 0, 0, 0, 2], Nmis(vm), "vCPUs 0, 1: the map has vCPU 0");
            v.Add(vm.CreateVcpu(2));
            Expect([1, 1, 0, 0, 3], Nmis(vm), "vCPUs 0–2");
            var s = v[0].GetSregs();
            v[0].SetSregs(s);
            v[2].SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
            v[2].SetRegs(v[2].GetRegs());
            v[2].SetEvents(v[2].GetEvents());
            Expect([1, 1, 0, 0, 3], Nmis(vm), "after unchanged SREGS, MP_STATE, REGS, VCPU_EVENTS");
            s.apic_base &= ~(1UL << 11);
            v[0].SetSregs(s);
            Expect([0, 1, 1, 0, 2], Nmis(vm), "vCPU 0's APIC hardware-disabled");
            s.apic_base |= 1UL << 11;
            v[0].SetSregs(s);
            Expect([1, 1, 1, 0, 3], Nmis(vm), "enabled again");
            v.Add(vm.CreateVcpu(3));
            Expect([1, 1, 1, 0, 4], Nmis(vm), "vCPU 3 added");
            var s3 = v[3].GetSregs();
            ulong base3 = s3.apic_base;
            s3.apic_base = (base3 & 0xfffUL) | 0xfed00000;
            v[3].SetSregs(s3);
            v[3].SetMsr(0x1b, (base3 & 0xfffUL) | 0xfec00000);
            Expect([1, 1, 1, 0, 4], Nmis(vm), "vCPU 3's APIC base moved (SREGS, then the MSR): the map is not dirty");
            v[3].SetMsr(0x1b, base3);
            v[3].SetLapic(v[3].GetLapic());
            Expect([1, 1, 1, 1, 4], Nmis(vm), "after KVM_SET_LAPIC");
            SetLapic(v[1], l => l[LapicState.IdOffset] = 5u << 24);
            Expect([1, 0, 1, 1, 4], Nmis(vm), "vCPU 1 now has ID 5");
            Assert.Equal(1, SignalMsi(vm, 0xfee05000, 0x400));
            SetLapic(v[2], l => l[LapicState.IdOffset] = 0);
            Expect([2, -1, -1, 1, 4], Nmis(vm), "vCPUs 0 and 2 share ID 0: no map");
        }
        finally
        {
            foreach (var vcpu in v) vcpu.Dispose();
        }
    }

    [ConformanceCase(Lapic + " kvm_apic_map_get_dest_lapic (logical, flat) and kvm_lowest_prio_delivery: software-enabled APICs with one LDR bit each form the flat map (a software-disabled one is not in it); a lowest-priority message picks bit (vector % bits in the mask) of the mask — an empty slot there delivers to none; an MSI's redirect hint (address bit 3) makes any message lowest priority on the slow path (the physical broadcast becomes fixed, delivered to one software-enabled APIC) but not on the physical fast path; + irq.c kvm_set_msi_irq: address bits other than 19:12, 3 and 2 are not looked at")]
    public static void msi_logical_destinations_and_redirect_hint(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        var v = new List<Vcpu>();
        try
        {
            for (int i = 0; i < 4; i++) v.Add(vm.CreateVcpu(i));
            Expect([0, 0, 0, 0, -1], [SignalMsi(vm, 0xfee00000, 0x30), SignalMsi(vm, 0xfee01000, 0x30), SignalMsi(vm, 0xfee0000c, 0x30),
                SignalMsi(vm, 0xfee01008, 0x30), SignalMsi(vm, 0xfeeff008, 0x430)], "software-disabled: fixed 0, RH broadcast finds no one (-1)");
            for (int i = 0; i < 4; i++)
            {
                int id = i;
                SetLapic(v[i], l =>
                {
                    l[LapicState.IdOffset] = (uint)id << 24;
                    l[LapicState.LdrOffset] = (1u << id) << 24;
                    l[LapicState.SvrOffset] = id == 3 ? 0xffu : 0x1ffu;
                });
            }
            Expect([1, 2, 3, 0, 0], [SignalMsi(vm, 0xfee01004, 0x30), SignalMsi(vm, 0xfee03004, 0x30), SignalMsi(vm, 0xfee0f004, 0x30),
                SignalMsi(vm, 0xfee08004, 0x30), SignalMsi(vm, 0xfee10004, 0x30)], "logical flat, fixed");
            Expect([0, 3], [SignalMsi(vm, 0xfee08004, 0x430), SignalMsi(vm, 0xfee0f004, 0x430)], "logical flat, NMI");
            Expect([1, 1, 1, 0], [SignalMsi(vm, 0xfee0f004, 0x130), SignalMsi(vm, 0xfee0f004, 0x131), SignalMsi(vm, 0xfee0f004, 0x132),
                SignalMsi(vm, 0xfee0f004, 0x133)], "logical lowest priority over 0xf: vectors 0x30–0x33 pick bits 0–3 (3 is empty)");
            Expect([1, 1, 1], [SignalMsi(vm, 0xfee01008, 0x30), SignalMsi(vm, 0xfee01008, 0x430), SignalMsi(vm, 0xfeeff008, 0x430)],
                "redirect hint: physical 1 fixed and NMI (fast path), physical broadcast (one APIC)");
            Expect([0, 1, 3], [SignalMsi(vm, 0xfee03000, 0x130), SignalMsi(vm, 0xfee01000, 0x130), SignalMsi(vm, 0xfeeff000, 0x130)],
                "lowest priority physical: to a software-disabled APIC, to 1, broadcast (made fixed)");
            foreach (uint address in new uint[] { 0xfed00000, 0, 0xfef00000, 0x7ee00000, 0xfee00010, 0xfe000000 })
                Assert.True(SignalMsi(vm, address, 0x430) == 1, $"NMI to 0x{address:X}: destination 0");
            Assert.Equal(0, SignalMsi(vm, 0x12345678, 0x430)); // destination 0x45
        }
        finally
        {
            foreach (var vcpu in v) vcpu.Dispose();
        }
    }

    [ConformanceCase(Lapic + " __apic_accept_irq by delivery mode through KVM_SIGNAL_MSI to a software-disabled APIC: fixed and lowest priority 0 (apic_enabled), SMI 0 (no CONFIG_KVM_SMM), remote read, NMI, INIT and startup 1 whatever the trigger mode and level bits (kvm_set_msi_irq: level is always 1), ExtINT and 7: 0")]
    public static void msi_delivery_modes(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var v0 = vm.CreateVcpu(0);
        using var v1 = vm.CreateVcpu(1);
        long[] expected = [0, 0, 0, 1, 1, 1, 1, 0];
        foreach (uint bits in new uint[] { 0, 0x8000, 0x4000, 0xc000 })
        {
            var got = Enumerable.Range(0, 8).Select(dm => SignalMsi(vm, 0xfee00000, 0x30 | ((uint)dm << 8) | bits)).ToArray();
            Expect(expected, got, $"modes 0–7 with data bits 0x{bits:X}");
        }
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_get_mpstate: HALTED or AP_RESET_HOLD with pv_unhalted (a remote-read message, " + Lapic + " __apic_accept_irq APIC_DM_REMRD) is reported RUNNABLE, the state itself unchanged (a refused KVM_SET_MP_STATE leaves it); kvm_set_mp_state(RUNNABLE) clears pv_unhalted; __set_sregs_common: KVM_SET_SREGS on the BSP at RIP 0xfff0 with CS 0xf000 / 0xffff0000 outside protected mode makes it RUNNABLE (\"Older userspace won't unhalt the vcpu on reset\"), an AP's stays")]
    public static void mp_state_with_pv_unhalt_and_the_reset_vector(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var v0 = vm.CreateVcpu(0);
        using var v1 = vm.CreateVcpu(1);
        v1.SetLapic(v1.GetLapic());
        v1.SetMpState(KvmMpState.KVM_MP_STATE_AP_RESET_HOLD);
        Assert.Equal(KvmMpState.KVM_MP_STATE_AP_RESET_HOLD, v1.GetMpState());
        Assert.Equal(1, SignalMsi(vm, 0xfee01000, 0x300));
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v1.GetMpState());
        var bad = new kvm_mp_state { mp_state = 8 };
        AssertErrno(Errno.EINVAL, vm.Kernel.Ioctl(v1.Handle, KvmIoctls.KVM_SET_MP_STATE, Raw(ref bad)), "KVM_SET_MP_STATE 8");
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v1.GetMpState());
        v1.SetMpState(KvmMpState.KVM_MP_STATE_HALTED);
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v1.GetMpState());
        v1.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        v1.SetMpState(KvmMpState.KVM_MP_STATE_HALTED);
        Assert.Equal(KvmMpState.KVM_MP_STATE_HALTED, v1.GetMpState());
        v1.SetSregs(v1.GetSregs());
        Assert.Equal(KvmMpState.KVM_MP_STATE_HALTED, v1.GetMpState());
        v0.SetMpState(KvmMpState.KVM_MP_STATE_HALTED);
        v0.SetSregs(v0.GetSregs());
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v0.GetMpState());
        v0.SetMpState(KvmMpState.KVM_MP_STATE_HALTED);
        var r = v0.GetRegs();
        r.rip = 0xfff1;
        v0.SetRegs(r);
        v0.SetSregs(v0.GetSregs());
        Assert.Equal(KvmMpState.KVM_MP_STATE_HALTED, v0.GetMpState());
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_vcpu_ioctl_x86_set_vcpu_events / get_vcpu_events with an in-kernel APIC: KVM_VCPUEVENT_VALID_SMM's smi.latched_init sets or clears KVM_APIC_INIT even without CONFIG_KVM_SMM, and smi.latched_init reads kvm_lapic_latched_init — also after an INIT message; " + Lapic + " kvm_apic_accept_events (KVM_GET_MP_STATE) takes it: the BSP is reset (RIP 0xfff0, CS 0xf000) and stays RUNNABLE, the latch reads 0")]
    public static void latched_init(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var v0 = vm.CreateVcpu(0);
        using var v1 = vm.CreateVcpu(1);
        Assert.Equal(0, v1.GetEvents().smi_latched_init);
        var e = new kvm_vcpu_events { flags = KvmVcpuEvents.KVM_VCPUEVENT_VALID_SMM, smi_latched_init = 1 };
        v1.SetEvents(e);
        Assert.Equal(1, v1.GetEvents().smi_latched_init);
        Assert.Equal(1, v1.GetEvents().smi_latched_init);
        v1.SetEvents(new kvm_vcpu_events { flags = KvmVcpuEvents.KVM_VCPUEVENT_VALID_SIPI_VECTOR, sipi_vector = 0x42 });
        Assert.Equal(1, v1.GetEvents().smi_latched_init);
        v1.SetEvents(new kvm_vcpu_events { flags = KvmVcpuEvents.KVM_VCPUEVENT_VALID_SMM });
        Assert.Equal(0, v1.GetEvents().smi_latched_init);

        var r = v0.GetRegs();
        r.rip = 0x1234;
        r.rax = 7;
        v0.SetRegs(r);
        Assert.Equal(1, SignalMsi(vm, 0xfee00000, 0x500));
        Assert.Equal(1, v0.GetEvents().smi_latched_init);
        // An NMI message after the INIT: queued, and dropped by the reset (kvm_vcpu_reset: nmi_queued = 0,
        // nmi_pending = 0) — the differential fuzzer found the emulator keeping it.
        Assert.Equal(1, SignalMsi(vm, 0xfee00000, 0x400));
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v0.GetMpState());
        var afterInit = v0.GetEvents();
        Assert.Equal((0, 0, 0), (afterInit.smi_latched_init, afterInit.nmi_pending, afterInit.nmi_injected));
        var back = v0.GetRegs();
        var sregs = v0.GetSregs();
        Assert.Equal((0xfff0UL, 0UL, (ushort)0xf000, 0xffff0000UL), (back.rip, back.rax, sregs.cs.selector, sregs.cs.@base));
    }
}
