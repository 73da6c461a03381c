// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Conformance.Guests.MsrStep;
using static KvmSharp.Conformance.Guests.MsrStepProgram;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// x2APIC mode and the TSC-deadline timer of the in-kernel local APIC (arch/x86/kvm/lapic.c): the APIC base MSR's EXTD
/// transitions (kvm_apic_set_base), the x2APIC MSRs 0x800–0x8ff (kvm_x2apic_msr_read / kvm_x2apic_msr_write), the ID
/// and LDR x2APIC mode derives from the vCPU id, KVM_GET/SET_LAPIC's ID format (kvm_apic_state_fixup), and
/// IA32_TSC_DEADLINE (kvm_get/set_lapic_tscdeadline_msr, start_sw_tscdeadline). A 64-bit guest with an in-kernel
/// irqchip runs a list of RDMSR/WRMSR steps; a refused access is a #GP whose handler skips the 2-byte instruction, and
/// every step stores EDX:EAX and the running #GP count. The guest never halts with IF clear (with an in-kernel APIC
/// HLT waits in the kernel).
/// </summary>
public static class X2Apic
{
    private const string Lapic = "arch/x86/kvm/lapic.c";
    private const uint ApicBaseMsr = 0x1b, TscDeadlineMsr = 0x6e0;
    private const uint XId = 0x802, XLvr = 0x803, XTpr = 0x808, XArbpri = 0x809, XPpr = 0x80a, XEoi = 0x80b, XLdr = 0x80d, XDfr = 0x80e,
        XSpiv = 0x80f, XEsr = 0x828, XIcr = 0x830, XIcr2 = 0x831, XLvtt = 0x832, XTmict = 0x838, XTmcct = 0x839, XSelfIpi = 0x83f;
    private const ulong Bsp = 1UL << 8, Extd = 1UL << 10, Enable = 1UL << 11, Base = 0xfee0_0000;
    /// <summary>The free page of the call-data area below <see cref="MsrStepProgram.Results"/>: the xAPIC page's page directory.</summary>
    private const ulong ApicPd = 0x8_9000;

    /// <summary>A guest with an in-kernel irqchip, the supported CPUID, the xAPIC page mapped, #GP skipping RDMSR/WRMSR, and <paramref name="vectors"/> returning.</summary>
    private static IdtGuest Guest(Kvm kvm, IReadOnlyList<MsrStep> steps, params int[] vectors)
    {
        var g = IdtGuest.Create(kvm, a => Emit(a, steps),
            [new IdtVector(13, ResumeSkip: 2), .. vectors.Select(v => new IdtVector(v, ResumeSkip: 0))], idtLimit: 256 * 16 - 1,
            prepareVm: vm => vm.CreateIrqchip());
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        var mem = g.Guest.Memory;
        mem.Fill(Results, Layout.PageSize, 0);
        // The xAPIC page (GPA 0xFEE00000) with a 2 MiB uncached page: PDPT[3] → a page directory of its own.
        mem.Fill(ApicPd, Layout.PageSize, 0);
        mem.Write(Layout.Pdpt + 3 * 8, ApicPd | 0x3UL);
        mem.Write(ApicPd + ((0xFEE00000UL - 0xC0000000UL) >> 21) * 8, 0xFEE00000UL | 0x80 | 0x10 | 0x3);
        return g;
    }

    /// <summary>A guest read of the xAPIC page at <paramref name="offset"/> into RAX.</summary>
    private static MsrStep MmioRead(int offset) => Code(a =>
    {
        a.mov(rcx, 0xFEE00000UL + (ulong)offset);
        a.mov(eax, __dword_ptr[rcx]);
    });

    [ConformanceCase(Lapic + " kvm_apic_set_base / kvm_x2apic_msr_read / kvm_x2apic_msr_write from the guest: the x2APIC MSRs #GP outside x2APIC mode; EXTD (with the CPUID x2APIC bit) makes ID = vcpu_id and LDR = (id >> 4) << 16 | 1 << (id & 0xf) (kvm_apic_set_x2apic_id); ID, LDR, DFR, ICR2, LVR, TMCCT, a non-zero ESR, bits 63:32 and reserved registers #GP; EOI and SELF_IPI are write-only; ICR is one 64-bit MSR (reserved bits #GP, BUSY dropped, destination in 63:32); x2APIC → xAPIC, EXTD without enable and disabled → x2APIC #GP (x2APIC → disabled → xAPIC is allowed); LVT writes keep apic_lvt_mask's bits, no LVTCMCI; the xAPIC page reads all ones in x2APIC mode and hardware-disabled (KVM_X86_QUIRK_LAPIC_MMIO_HOLE)")]
    public static void x2apic_msrs_follow_extd(CaseContext ctx)
    {
        const ulong X2 = Base | Enable | Extd | Bsp, X1 = Base | Enable | Bsp;
        MsrStep[] steps =
        [
            Rd(XId), Wr(XTpr, 0), Rd(ApicBaseMsr), MmioRead(0x30),                                  // 0–3: xAPIC mode
            Wr(ApicBaseMsr, X2), Rd(ApicBaseMsr), Rd(XId), Rd(XLdr), Rd(XLvr),                      // 4–8
            Wr(XId, 0), Wr(XLdr, 1), Rd(XDfr), Wr(XDfr, 0xffffffff),                               // 9–12
            Wr(XTpr, 0x20), Rd(XTpr), Rd(XPpr), Wr(XTpr, 1UL << 32), Wr(XTpr, 0),                   // 13–17
            Rd(XEoi), Wr(XEoi, 0), Rd(XIcr2), Wr(XIcr2, 0), Rd(XSelfIpi), Wr(XSelfIpi, 0x100),     // 18–23
            Wr(XEsr, 1), Wr(XEsr, 0), Rd(XArbpri), Rd(0x840), Rd(0x8ff), Rd(0x804), Wr(XLvr, 0), Wr(XTmcct, 0), // 24–31
            Wr(XIcr, 0x1234_5678_0000_2030), Wr(XIcr, 0x1234_5678_0000_1030), Rd(XIcr),           // 32–34
            MmioRead(0x30), Rd(XSpiv),                                                               // 35–36
            Wr(0x833, 0xffffffff), Rd(0x833), Wr(0x835, 0xffffffff), Rd(0x835), Wr(0x837, 0xffffffff), Rd(0x837), Rd(0x82f), // 37–43
            Exit(),                                                                                  // 44
            Wr(ApicBaseMsr, X1), Wr(ApicBaseMsr, Base | Extd | Bsp), Wr(ApicBaseMsr, Base | Bsp),   // 45–47
            Wr(ApicBaseMsr, X2), Rd(XId), MmioRead(0x30), Wr(ApicBaseMsr, X1), Rd(ApicBaseMsr), MmioRead(0x30), // 48–53
        ];
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, steps);
        RunToDone(g, "x2APIC phase");
        Expect(g, steps,
        [
            (0, true, null), (1, true, null), (2, false, X1), (3, false, 0x0005_0014),
            (4, false, null), (5, false, X2), (6, false, 0), (7, false, 1), (8, false, 0x0005_0014),
            (9, true, null), (10, true, null), (11, true, null), (12, true, null),
            (13, false, null), (14, false, 0x20), (15, false, 0x20), (16, true, null), (17, false, null),
            (18, true, null), (19, false, null), (20, true, null), (21, true, null), (22, true, null), (23, true, null),
            (24, true, null), (25, false, null), (26, true, null), (27, true, null), (28, true, null), (29, true, null), (30, true, null), (31, true, null),
            (32, true, null), (33, false, null), (34, false, 0x1234_5678_0000_0030),
            (35, false, 0xffff_ffff), (36, false, 0xff),
            // apic_lvt_mask (software-disabled: APIC_LVT_MASKED forced): thermal 0x117FF, LINT0 0x1F7FF, error 0x110FF;
            // no LVTCMCI without MCG_CMCI_P (kvm_lapic_lvt_supported).
            (37, false, null), (38, false, 0x1_17ff), (39, false, null), (40, false, 0x1_f7ff), (41, false, null), (42, false, 0x1_10ff),
            (43, true, null),
        ]);
        // KVM_GET_LAPIC without KVM_CAP_X2APIC_API: the x2APIC ID as id << 24, LDR derived, ICR split into ICR / ICR2.
        var l = g.Vcpu.GetLapic();
        Assert.Equal((0u, 1u, 0x30u, 0x1234_5678u), (l[LapicState.IdOffset], l[LapicState.LdrOffset], l[0x300], l[0x310]));
        // Host accesses follow the same rules: x2APIC MSRs readable in x2APIC mode.
        Assert.Equal((ulong?)0, HostRead(g.Vcpu, XId));
        Assert.Equal((ulong?)1, HostRead(g.Vcpu, XLdr));
        Assert.Null(HostRead(g.Vcpu, XEoi));
        RunToDone(g, "transitions");
        Expect(g, steps,
        [
            (45, true, null), (46, true, null), (47, false, null), (48, true, null), (49, true, null), (50, false, 0xffff_ffff),
            (51, false, null), (52, false, X1), (53, false, 0x0005_0014),
        ]);
        Assert.Null(HostRead(g.Vcpu, XId));
    }

    [ConformanceCase(Lapic + " kvm_apic_set_base from the host (KVM_SET_MSRS, host_initiated): EXTD is a reserved bit without CPUID.1:ECX.x2APIC, EXTD without enable is invalid, but disabled → x2APIC is allowed; __kvm_apic_set_base gives vCPU 17 x2APIC ID 17 and LDR 0x10002 (cluster 1, bit 1) — KVM_GET_MSRS reads them; KVM_GET_LAPIC shows the ID as 17 << 24 and KVM_SET_LAPIC ignores a different ID and LDR (kvm_apic_state_fixup without x2apic_format); leaving x2APIC for xAPIC gives the xAPIC ID back; KVM_SET_SREGS's apic_base follows the same rules")]
    public static void x2apic_from_the_host(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var v0 = vm.CreateVcpu(0);
        using var v = vm.CreateVcpu(17);
        Assert.Equal((ulong?)(Base | Enable), HostRead(v, ApicBaseMsr));
        Assert.False(HostWrite(v, ApicBaseMsr, Base | Enable | Extd), "EXTD without CPUID x2APIC");
        Assert.Null(HostRead(v, XId));
        v.SetCpuid(kvm.GetSupportedCpuid());
        Assert.False(HostWrite(v, ApicBaseMsr, Base | Extd), "EXTD without enable");
        Assert.True(HostWrite(v, ApicBaseMsr, Base), "disable");
        Assert.True(HostWrite(v, ApicBaseMsr, Base | Enable | Extd), "disabled → x2APIC from the host");
        Assert.Equal(((ulong?)17, (ulong?)0x10002), (HostRead(v, XId), HostRead(v, XLdr)));
        var l = v.GetLapic();
        Assert.Equal((17u << 24, 0x10002u), (l[LapicState.IdOffset], l[LapicState.LdrOffset]));
        l[LapicState.IdOffset] = 5u << 24;
        l[LapicState.LdrOffset] = 0x80000000;
        v.SetLapic(l);
        l = v.GetLapic();
        Assert.Equal((17u << 24, 0x10002u), (l[LapicState.IdOffset], l[LapicState.LdrOffset]));
        // An INIT (kvm_apic_accept_events → kvm_lapic_reset(vcpu, true)) keeps the x2APIC ID and LDR: "if
        // (!apic_x2apic_mode(apic)) kvm_apic_set_ldr(apic, 0)".
        v.SetLapic(v.GetLapic());
        Assert.Equal(1, vm.SignalMsi(0xfee11000, 0x500));
        Assert.Equal(KvmMpState.KVM_MP_STATE_INIT_RECEIVED, v.GetMpState());
        l = v.GetLapic();
        Assert.Equal((17u << 24, 0x10002u, 0xffu), (l[LapicState.IdOffset], l[LapicState.LdrOffset], l[LapicState.SvrOffset]));
        Assert.True(HostWrite(v, ApicBaseMsr, Base | Enable), "x2APIC → xAPIC from the host");
        Assert.Equal(17u << 24, v.GetLapic()[LapicState.IdOffset]);
        Assert.Null(HostRead(v, XId));
        // KVM_SET_SREGS takes the same path: kvm_apic_set_base(vcpu, sregs->apic_base, true) != 0 → EINVAL.
        var sregs = v0.GetSregs();
        sregs.apic_base = Base | Enable | Extd | Bsp;
        AssertErrno(Errno.EINVAL, () => v0.SetSregs(sregs));
        v0.SetCpuid(kvm.GetSupportedCpuid());
        v0.SetSregs(sregs);
        Assert.Equal(Base | Enable | Extd | Bsp, v0.GetSregs().apic_base);
        Assert.Equal((ulong?)0, HostRead(v0, XId));
    }

    [ConformanceCase(Lapic + " kvm_recalculate_apic_map / __kvm_irq_delivery_to_apic with every APIC in x2APIC mode (set through KVM_SET_MSRS) and software-enabled: KVM_SIGNAL_MSI NMIs by physical x2APIC ID (an ID nobody has: 0), by logical x2APIC cluster 0 (LDR 1 << id: a mask of vCPUs 0–2), and the broadcast 0xFF, which kvm_apic_mda turns into the x2APIC broadcast for each x2APIC-mode target (KVM_X2APIC_API's broadcast quirk left on)")]
    public static void x2apic_msi_destinations(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        var v = new List<Vcpu>();
        try
        {
            foreach (int id in new[] { 0, 1, 2, 17 })
            {
                var vcpu = vm.CreateVcpu(id);
                v.Add(vcpu);
                vcpu.SetCpuid(kvm.GetSupportedCpuid());
            }
            foreach (var vcpu in v)
            {
                Assert.True(HostWrite(vcpu, ApicBaseMsr, Base | Enable | Extd | (vcpu.Id == 0 ? Bsp : 0)), $"vCPU {vcpu.Id} to x2APIC");
                var l = vcpu.GetLapic();
                l.SoftwareEnabled = true;
                vcpu.SetLapic(l);
            }
            long Nmi(uint address) => vm.SignalMsi(address, 0x400);
            long[] got = [Nmi(0xfee11000), Nmi(0xfee01000), Nmi(0xfee03000), Nmi(0xfee03004), Nmi(0xfee07004), Nmi(0xfee02004), Nmi(0xfeeff000), Nmi(0xfeeff004)];
            long[] expected = [1, 1, 0, 2, 3, 1, 4, 4];
            Assert.True(expected.SequenceEqual(got), $"expected [{string.Join(", ", expected)}], got [{string.Join(", ", got)}]");
        }
        finally
        {
            foreach (var vcpu in v) vcpu.Dispose();
        }
    }

    [ConformanceCase(Lapic + " kvm_apic_set_version (kvm_lapic_reset, KVM_SET_CPUID2's kvm_vcpu_after_set_cpuid, kvm_apic_set_state): APIC_LVR_DIRECTED_EOI (bit 24) for a guest whose CPUID has x2APIC — by default only without the in-kernel IOAPIC (a split irqchip), on a split irqchip also with KVM_CAP_X2APIC_API's KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST (4), never with KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST (8); ENABLE without a split irqchip and both at once are EINVAL (x86.c kvm_vm_ioctl_enable_cap, the suppress-EOI-broadcast series this host's kernel has); SPIV keeps its directed-EOI bit 12 only when LVR has it (kvm_lapic_reg_write APIC_SPIV)")]
    public static void lapic_version_has_directed_eoi_on_a_split_irqchip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (split, flags, directed) in new[] { (false, 0UL, false), (true, 0UL, true), (true, 4UL, true), (true, 8UL, false), (false, 8UL, false) })
        {
            string what = $"split {split}, KVM_CAP_X2APIC_API 0x{flags:X}";
            using var vm = kvm.CreateVm();
            if (split) vm.EnableSplitIrqchip(24);
            else vm.CreateIrqchip();
            AssertErrno(Errno.EINVAL, EnableX2apicApi(vm, 12), what + ": flags 12");
            if (!split) AssertErrno(Errno.EINVAL, EnableX2apicApi(vm, 4), what + ": flags 4 without a split irqchip");
            if (flags != 0) Assert.Equal(0, EnableX2apicApi(vm, flags));
            using var v = vm.CreateVcpu(0);
            Assert.Equal(0x0005_0014u, v.GetLapic()[LapicState.VersionOffset]);
            v.SetCpuid(kvm.GetSupportedCpuid());
            uint version = directed ? 0x0105_0014u : 0x0005_0014u;
            Assert.True(version == v.GetLapic()[LapicState.VersionOffset], $"{what}: LVR 0x{v.GetLapic()[LapicState.VersionOffset]:X}");
            Assert.True(HostWrite(v, ApicBaseMsr, Base | Enable | Extd | Bsp), "to x2APIC");
            Assert.Equal((ulong?)version, HostRead(v, XLvr));
            Assert.True(HostWrite(v, XSpiv, 0x11ff), "SPIV with directed EOI");
            Assert.True((ulong?)(directed ? 0x11ffUL : 0x1ffUL) == HostRead(v, XSpiv), $"{what}: SPIV 0x{HostRead(v, XSpiv):X}");
        }
    }

    private static long EnableX2apicApi(Vm vm, ulong flags)
    {
        var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X2APIC_API };
        cap.args[0] = flags;
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_ENABLE_CAP, Raw(ref cap));
    }

    private static long SignalMsi(Vm vm, uint addressLo, uint addressHi, uint data)
    {
        var msi = new kvm_msi { address_lo = addressLo, address_hi = addressHi, data = data };
        return vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SIGNAL_MSI, Raw(ref msi));
    }

    [ConformanceCase("arch/x86/kvm/x86.c kvm_vm_ioctl_enable_cap KVM_CAP_X2APIC_API (flags outside KVM_X2APIC_API_VALID_FLAGS, 15: EINVAL) + " + Lapic + " with both vCPUs in x2APIC mode, software-disabled: the broadcast quirk (kvm_apic_mda) makes an MSI NMI to 0xFF reach both, and after DISABLE_BROADCAST_QUIRK none (-1); USE_32BIT_IDS (x2apic_format): KVM_GET_LAPIC reports the 32-bit ID, KVM_SET_LAPIC refuses any other ID (kvm_apic_state_fixup: EINVAL), an MSI takes destination bits 31:8 from address_hi (x86_msi_msg_get_destid: vCPU 300 by physical ID 0x12C), address_hi bits 7:0 are EINVAL (kvm_msi_route_invalid), and 0xFFFFFFFF is the broadcast")]
    public static void x2apic_api_ids_and_broadcast_quirk(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        using var v0 = vm.CreateVcpu(0);
        using var v = vm.CreateVcpu(300);
        foreach (var vcpu in new[] { v0, v })
        {
            vcpu.SetCpuid(kvm.GetSupportedCpuid());
            Assert.True(HostWrite(vcpu, ApicBaseMsr, Base | Enable | Extd | (vcpu.Id == 0 ? Bsp : 0)), $"vCPU {vcpu.Id} to x2APIC");
        }
        Assert.Equal(300u << 24, v.GetLapic()[LapicState.IdOffset]);
        Assert.Equal(2, SignalMsi(vm, 0xfeeff000, 0, 0x400));
        AssertErrno(Errno.EINVAL, EnableX2apicApi(vm, 16), "KVM_CAP_X2APIC_API flags 16");
        Assert.Equal(0, EnableX2apicApi(vm, 2));
        Assert.Equal(-1, SignalMsi(vm, 0xfeeff000, 0, 0x400));
        Assert.Equal(0, EnableX2apicApi(vm, 1));
        var l = v.GetLapic();
        Assert.Equal(300u, l[LapicState.IdOffset]);
        l[LapicState.IdOffset] = 300u << 24;
        AssertErrno(Errno.EINVAL, () => v.SetLapic(l));
        l[LapicState.IdOffset] = 300;
        v.SetLapic(l);
        Assert.Equal(300u, v.GetLapic()[LapicState.IdOffset]);
        AssertErrno(Errno.EINVAL, SignalMsi(vm, 0xfee2c000, 0x101, 0x400), "address_hi bits 7:0");
        // The same for a route: irq.c kvm_set_routing_entry → kvm_msi_route_invalid; bits 31:8 alone are a destination.
        AssertErrno(Errno.EINVAL, () => vm.SetGsiRouting([GsiRoute.ToMsi(5, 0x1_fee2_c000, 0x400)]));
        vm.SetGsiRouting([GsiRoute.ToMsi(5, 0x100_fee2_c000, 0x400)]);
        long[] got = [SignalMsi(vm, 0xfee2c000, 0x100, 0x400), SignalMsi(vm, 0xfee2c000, 0, 0x400), SignalMsi(vm, 0xfeeff000, 0xffffff00, 0x400)];
        long[] expected = [1, 0, 2];
        Assert.True(expected.SequenceEqual(got), $"expected [{string.Join(", ", expected)}], got [{string.Join(", ", got)}]");
    }

    [ConformanceCase(Lapic + " kvm_lapic_reg_write APIC_SELF_IPI and the 64-bit ICR in x2APIC mode: the guest software-enables its APIC through MSR 0x80F, a SELF_IPI write (0x83F) and a physical ICR write to its own x2APIC ID (0x830) each put the vector in IRR and it is delivered through the IDT once RFLAGS.IF allows (kvm_pvm: at the next KVM_RUN); an EOI through MSR 0x80B ends each")]
    public static void x2apic_self_ipi_delivers(CaseContext ctx)
    {
        const int V1 = 0x40, V2 = 0x51;
        MsrStep[] steps =
        [
            Wr(ApicBaseMsr, Base | Enable | Extd | Bsp), Wr(XSpiv, 0x1ff), Code(a => a.sti()),
            Wr(XSelfIpi, V1), Code(a => a.nop()), Exit(), Code(a => a.nop()), Wr(XEoi, 0), Exit(),
            Wr(XIcr, V2), Code(a => a.nop()), Exit(), Code(a => a.nop()), Wr(XEoi, 0), Exit(),
        ];
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, steps, V1, V2);
        var regs = g.Vcpu.GetRegs();
        regs.rflags &= ~0x200UL;
        g.Vcpu.SetRegs(regs);
        for (int i = 0; i < 4; i++) RunToDone(g, $"phase {i}");
        // No #GP (vector 13) among the deliveries: the MSR writes were all taken. (The running count of IdtGuest's
        // records also counts the IPIs, so the per-step #GP flags are not looked at here.)
        Assert.Equal([(ulong)V1, (ulong)V2], g.Deliveries.Select(d => d.Vector));
        var l = g.Vcpu.GetLapic();
        Assert.False(l.IsRequested(V1) || l.IsRequested(V2) || l.IsInService(V1) || l.IsInService(V2), "IRR and ISR clear after the EOIs");
    }

    [ConformanceCase(Lapic + " kvm_get/set_lapic_tscdeadline_msr (x86.c MSR_IA32_TSC_DEADLINE, never a #GP): writes are ignored and reads 0 outside TSC-deadline mode; in it (LVTT mode 2, allowed by KVM_SET_CPUID2's TSC-deadline bit) a write arms and reads back, 0 disarms; leaving TSC-deadline mode clears it (apic_update_lvtt); TMICT is ignored and TMCCT reads 0 in that mode; a deadline already passed expires at once — with LVTT masked it stays readable (no injection: apic_has_pending_timer), unmasked the expiry is injected into IRR and the MSR reads 0 (vcpu_run → kvm_inject_pending_timer_irqs → kvm_apic_inject_pending_timer_irqs; kvm_pvm: at the next KVM_RUN, HostDeviations.KvmPvmExpiredTimerInjectedAtNextRun)")]
    public static void tsc_deadline_msr_reads_back_and_clears(CaseContext ctx)
    {
        const ulong Far = 1UL << 62;
        MsrStep[] steps =
        [
            Wr(ApicBaseMsr, Base | Enable | Extd | Bsp), Wr(XSpiv, 0x1ff),
            Wr(TscDeadlineMsr, Far), Rd(TscDeadlineMsr),                                        // 2–3: one-shot mode
            Wr(XLvtt, 0x5_0050), Rd(XLvtt), Wr(TscDeadlineMsr, Far), Rd(TscDeadlineMsr),          // 4–7: deadline, masked
            Wr(XTmict, 1000), Rd(XTmict), Rd(XTmcct), Wr(TscDeadlineMsr, 0), Rd(TscDeadlineMsr),  // 8–12
            Wr(TscDeadlineMsr, Far), Wr(XLvtt, 0x1_0050), Wr(XLvtt, 0x5_0050), Rd(TscDeadlineMsr), // 13–16: mode change clears
            Wr(TscDeadlineMsr, 1), Rd(TscDeadlineMsr),                                            // 17–18: expired, masked
            Wr(XLvtt, 0x4_0050), Rd(TscDeadlineMsr), Exit(),                                      // 19–21: unmasked: injected
            Rd(TscDeadlineMsr), Exit(),
        ];
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, steps, 0x50);
        RunToDone(g, "deadline steps");
        bool pvm = HostDeviations.KvmPvmExpiredTimerInjectedAtNextRun(ctx.Target.IsReal);
        // Upstream the unmasked LVTT's write exit returns to vcpu_run, which injects the pending expiry at once.
        Assert.True(g.Vcpu.GetLapic().IsRequested(0x50) != pvm, "the expired deadline's vector waits in IRR (RFLAGS.IF clear)");
        Assert.Equal((ulong?)(pvm ? 1UL : 0UL), HostRead(g.Vcpu, TscDeadlineMsr));
        RunToDone(g, "the next KVM_RUN");
        // kvm_pvm injects the deferred expiry at a later KVM_RUN — under load not always the next one (a clean-clone CI
        // run here, session 13): then the expiry is still pending (the MSR reads 1), never lost. Upstream it is in IRR.
        bool injected = g.Vcpu.GetLapic().IsRequested(0x50);
        Assert.True(injected || pvm, "after the next KVM_RUN the vector is in IRR");
        Assert.Equal((ulong?)(injected ? 0UL : 1UL), HostRead(g.Vcpu, TscDeadlineMsr));
        Expect(g, steps,
        [
            (0, false, null), (1, false, null), (2, false, null), (3, false, 0), (4, false, null), (5, false, 0x5_0050),
            (6, false, null), (7, false, Far), (8, false, null), (9, false, 0), (10, false, 0), (11, false, null), (12, false, 0),
            (13, false, null), (14, false, null), (15, false, null), (16, false, 0), (17, false, null), (18, false, 1),
            (19, false, null), (20, false, pvm ? 1UL : 0UL), (22, false, injected ? 0UL : 1UL),
        ]);
    }

    [ConformanceCase(Lapic + " start_sw_tscdeadline → apic_timer_fn → apic_timer_expired: a guest in TSC-deadline mode arms IA32_TSC_DEADLINE a few million TSC cycles ahead and halts with RFLAGS.IF set; the expiry wakes the halted vCPU in KVM_RUN and delivers LVTT's vector, after which the MSR reads 0; only that the interrupt arrives is asserted, not when")]
    public static void tsc_deadline_timer_fires(CaseContext ctx)
    {
        const int Vector = 0x60;
        MsrStep[] steps =
        [
            Wr(ApicBaseMsr, Base | Enable | Extd | Bsp), Wr(XSpiv, 0x1ff), Wr(XLvtt, 0x4_0000 | Vector),
            Code(a =>
            {
                a.rdtsc();
                a.shl(rdx, 32);
                a.or(rax, rdx);
                a.add(rax, 20_000_000);
                a.mov(rdx, rax);
                a.shr(rdx, 32);
                a.mov(ecx, TscDeadlineMsr);
                a.wrmsr();
                a.sti();
                a.hlt();
                a.cli();
            }),
            Rd(TscDeadlineMsr), Exit(),
        ];
        using var kvm = ctx.OpenKvm();
        using var g = Guest(kvm, steps, Vector);
        Exception? error = null;
        int tid = 0;
        using var started = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            tid = ctx.Kernel.GetTid();
            started.Set();
            try
            {
                RunToDone(g, "deadline wait");
            }
            catch (Exception e)
            {
                error = e;
            }
        }) { IsBackground = true };
        thread.Start();
        started.Wait();
        if (!thread.Join(TimeSpan.FromSeconds(60)))
        {
            while (!thread.Join(10)) ctx.Kernel.KickThread(tid);
            Assert.Fail("the TSC deadline never woke the halted vCPU");
        }
        if (error is not null) throw new InvalidOperationException("vCPU thread failed", error);
        Assert.Equal([(ulong)Vector], g.Deliveries.Select(d => d.Vector));
        Expect(g, steps, [(0, false, null), (1, false, null), (2, false, null), (4, false, 0)]);
    }
}
