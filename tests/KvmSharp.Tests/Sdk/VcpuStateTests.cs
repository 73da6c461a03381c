// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Emulation.X86;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;
using static KvmSharp.Abi.KvmVcpuEvents;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// The vCPU state a VMM saves and restores besides regs, sregs, MSRs and CPUID (Vcpu.State.cs): FPU, XCRs, vCPU
/// events, MP state, debug registers. Every expectation was probed on this host's kernel (Linux 6.18 kvm_pvm) and
/// matches x86.c, except the interrupt shadow (HostDeviations.KvmPvmInterruptShadowStoredVerbatim), which the
/// emulator keeps as this host does. What depends on the CPU (which XCR0 bits are valid, the XSAVE sizes) is derived
/// from KVM_GET_SUPPORTED_CPUID's leaf 0xD, so the same rule is checked on EPYC Milan (XCR0 0x207) and Genoa (0xe7);
/// the <c>_on_every_cpu_model</c> rows run it on the emulator as both, whichever this machine is.
/// </summary>
public class VcpuStateTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void The_state_capabilities_are_offered(string kernel)
    {
        using var kvm = Open(kernel);
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_MP_STATE));
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_VCPU_EVENTS));
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_DEBUGREGS));
        Assert.Equal(1, kvm.CheckExtension(KvmCaps.KVM_CAP_XCRS));
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Fpu_reads_the_reset_state_round_trips_and_never_returns_mxcsr(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var fresh = vcpu.GetFpu();
        Assert.Equal(0x37f, fresh.fcw);
        Assert.Equal(0, fresh.fsw);
        Assert.Equal(0, fresh.ftwx);
        Assert.Equal(0u, fresh.mxcsr); // kvm_arch_vcpu_ioctl_get_fpu does not copy mxcsr (its reset value is 0x1f80)
        Assert.All(((ReadOnlySpan<byte>)fresh.xmm).ToArray(), b => Assert.Equal(0, b));

        var fpu = default(kvm_fpu);
        for (int i = 0; i < 128; i++) fpu.fpr[i] = (byte)(i + 1);
        for (int i = 0; i < 256; i++) fpu.xmm[i] = (byte)(0x80 + i);
        fpu.fcw = 0x27f;
        fpu.fsw = 0x1234;
        fpu.ftwx = 0x5a;
        fpu.pad1 = 0x77;
        fpu.last_opcode = 0x7ab;
        fpu.last_ip = 0x1122_3344_5566_7788;
        fpu.last_dp = 0x99aa_bbcc_ddee_ff00;
        fpu.mxcsr = 0xffff_ffff; // reserved bits: not checked
        fpu.pad2 = 0xdead;
        vcpu.SetFpu(fpu);
        var back = vcpu.GetFpu();
        Assert.True(((ReadOnlySpan<byte>)back.fpr).SequenceEqual(fpu.fpr));
        Assert.True(((ReadOnlySpan<byte>)back.xmm).SequenceEqual(fpu.xmm));
        Assert.Equal((0x27f, 0x1234, 0x5a, 0x7ab), (back.fcw, back.fsw, back.ftwx, back.last_opcode));
        Assert.Equal((0x1122_3344_5566_7788UL, 0x99aa_bbcc_ddee_ff00UL), (back.last_ip, back.last_dp));
        Assert.Equal((0, 0u, 0u), (back.pad1, back.mxcsr, back.pad2));
    }

    /// <summary>The <see cref="X86CpuModel"/>s this project has met, by name: theory data for the emulator alone.</summary>
    public static TheoryData<string> CpuModels => [.. X86CpuModel.Known.Select(m => m.Name)];

    /// <summary>An emulated kernel like this host's but on CPU <paramref name="model"/> (one of <see cref="CpuModels"/>).</summary>
    internal static EmulatedKernel EmulatedOn(string model) =>
        new(EmulatorConfig.LikeThisHost() with { X86Cpu = X86CpuModel.Known.Single(m => m.Name == model) });

    /// <summary>/dev/kvm of <see cref="EmulatedOn"/>.</summary>
    internal static Kvm OpenEmulated(string model) => Kvm.Open(EmulatedOn(model));

    private const ulong Avx512 = 0xe0, Pkru = 0x200;

    /// <summary>kvm_caps.supported_xcr0 as KVM_GET_SUPPORTED_CPUID shows it: CPUID.0xD.0 EDX:EAX.</summary>
    internal static ulong SupportedXcr0(IReadOnlyList<CpuidEntry> supported)
    {
        var d = supported.First(e => e.Function == 0xd && e.Index == 0);
        return d.Eax | ((ulong)d.Edx << 32);
    }

    /// <summary>
    /// xstate_required_size(xcr0, false) (arch/x86/kvm/cpuid.c): 0x240 (legacy area and header), or the end of the
    /// furthest enabled component past SSE, each at CPUID.0xD.i EBX with size CPUID.0xD.i EAX — read from the
    /// supported table (KVM copies the host's leaf 0xD subleaves there).
    /// </summary>
    internal static uint StandardXsaveSize(IReadOnlyList<CpuidEntry> supported, ulong xcr0)
    {
        uint size = 0x240;
        for (int bit = 2; bit < 64; bit++)
        {
            if ((xcr0 & (1UL << bit)) == 0) continue;
            var c = supported.First(e => e.Function == 0xd && e.Index == (uint)bit);
            size = Math.Max(size, c.Ebx + c.Eax);
        }
        return size;
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Xcr0_follows_kvm_set_xcr_and_the_guest_cpuid(string kernel)
    {
        using var kvm = Open(kernel);
        AssertXcr0Rules(kvm);
    }

    /// <summary>The XCR0 rules on the emulator as each known CPU, whichever this machine is.</summary>
    [Theory]
    [MemberData(nameof(CpuModels))]
    public void Xcr0_follows_kvm_set_xcr_and_the_guest_cpuid_on_every_cpu_model(string model)
    {
        using var kvm = OpenEmulated(model);
        AssertXcr0Rules(kvm);
    }

    /// <summary>
    /// x86.c __kvm_set_xcr: FP always; YMM needs SSE; nothing outside guest_supported_xcr0 (the guest CPUID's 0xD.0
    /// masked by kvm_caps.supported_xcr0; 0 before KVM_SET_CPUID2) | FP; AVX-512 needs YMM and all three of its bits.
    /// Then kvm_vcpu_ioctl_x86_set_xcrs' own checks.
    /// </summary>
    private static void AssertXcr0Rules(Kvm kvm)
    {
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var xcrs = vcpu.GetXcrs();
        Assert.Equal((1u, 0u, 0u, 1UL), (xcrs.nr_xcrs, xcrs.flags, xcrs.xcrs[0].xcr, xcrs.xcrs[0].value));
        Assert.Equal(0UL, xcrs.xcrs[1].value);

        // Without KVM_SET_CPUID2 guest_supported_xcr0 is 0: only FP is valid.
        vcpu.SetXcr0(1);
        var ex = AssertErrno(Errno.EINVAL, () => vcpu.SetXcr0(3));
        Assert.Equal("KVM_SET_XCRS", ex.Operation);
        AssertErrno(Errno.EINVAL, () => vcpu.SetXcr0(0));

        var supported = kvm.GetSupportedCpuid();
        ulong supportedXcr0 = SupportedXcr0(supported);
        Assert.Equal(7UL, supportedXcr0 & 7); // x87, SSE and AVX on every host met (Milan 0x207, Genoa 0xe7)
        vcpu.SetCpuid(supported);
        vcpu.SetXcr0(7);
        Assert.Equal(7UL, vcpu.GetXcr0());
        AssertErrno(Errno.EINVAL, () => vcpu.SetXcr0(0));      // FP clear
        AssertErrno(Errno.EINVAL, () => vcpu.SetXcr0(5));      // YMM without SSE
        // A bit the supported XCR0 lacks is EINVAL (e.g. XTILECFG, bit 17, on both; AVX-512 on Milan; PKRU on Genoa).
        for (int bit = 3; bit < 64; bit++)
        {
            if ((supportedXcr0 & (1UL << bit)) != 0) continue;
            var refused = Assert.ThrowsAny<KvmException>(() => vcpu.SetXcr0(7 | (1UL << bit)));
            Assert.True(refused.Errno == Errno.EINVAL, $"XCR0 bit {bit} (not in 0x{supportedXcr0:X}): {refused.ErrnoName}");
        }
        Assert.Equal(7UL, vcpu.GetXcr0());

        // Everything the host offers at once is valid.
        vcpu.SetXcr0(supportedXcr0);
        Assert.Equal(supportedXcr0, vcpu.GetXcr0());

        if ((supportedXcr0 & Avx512) == Avx512)
        {
            // Genoa: AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM) is offered; it needs all three bits and YMM.
            vcpu.SetXcr0(7 | Avx512);
            Assert.Equal(7 | Avx512, vcpu.GetXcr0());
            foreach (ulong part in new ulong[] { 0x20, 0x40, 0x80, 0x60, 0xa0, 0xc0 })
                AssertErrno(Errno.EINVAL, () => vcpu.SetXcr0(7 | part));
            AssertErrno(Errno.EINVAL, () => vcpu.SetXcr0(3 | Avx512)); // without YMM
        }
        else
        {
            AssertErrno(Errno.EINVAL, () => vcpu.SetXcr0(7 | Avx512)); // Milan: AVX-512 not offered
        }
        if ((supportedXcr0 & Pkru) != 0)
        {
            vcpu.SetXcr0(7 | Pkru); // Milan
            Assert.Equal(7 | Pkru, vcpu.GetXcr0());
        }
        vcpu.SetXcr0(7);
        Assert.Equal(7UL, vcpu.GetXcr0());

        // nr_xcrs > KVM_MAX_XCRS and flags are EINVAL; entries for other XCRs are skipped; the first XCR0 entry wins;
        // reserved and padding are not checked; nr_xcrs = 0 changes nothing.
        AssertErrno(Errno.EINVAL, () => vcpu.SetXcrs(new kvm_xcrs { nr_xcrs = 17 }));
        AssertErrno(Errno.EINVAL, () => vcpu.SetXcrs(WithXcr0(new kvm_xcrs { nr_xcrs = 1, flags = 2 }, 3)));
        var two = new kvm_xcrs { nr_xcrs = 3 };
        two.xcrs[0] = new kvm_xcr { xcr = 1, value = 0xffff };
        two.xcrs[1] = new kvm_xcr { xcr = 0, reserved = 5, value = 3 };
        two.xcrs[2] = new kvm_xcr { xcr = 0, value = 0 }; // invalid, but never looked at
        two.padding[0] = 1;
        vcpu.SetXcrs(two);
        Assert.Equal(3UL, vcpu.GetXcr0());
        vcpu.SetXcrs(new kvm_xcrs { nr_xcrs = 0 });
        Assert.Equal(3UL, vcpu.GetXcr0());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Xsave_size_in_cpuid_follows_xcr0(string kernel)
    {
        using var kvm = Open(kernel);
        AssertXsaveSizeFollowsXcr0(kvm);
    }

    /// <summary>CPUID.0xD.0 EBX on the emulator as each known CPU, whichever this machine is.</summary>
    [Theory]
    [MemberData(nameof(CpuModels))]
    public void Xsave_size_in_cpuid_follows_xcr0_on_every_cpu_model(string model)
    {
        using var kvm = OpenEmulated(model);
        AssertXsaveSizeFollowsXcr0(kvm);
    }

    /// <summary>
    /// cpuid.c kvm_update_cpuid_runtime: CPUID.0xD.0 EBX = xstate_required_size(xcr0, false), the end of the furthest
    /// enabled component; KVM_GET_SUPPORTED_CPUID's 0xD.0 EBX and ECX are that size for the whole supported XCR0
    /// (__do_cpuid_func, case 0xd).
    /// </summary>
    private static void AssertXsaveSizeFollowsXcr0(Kvm kvm)
    {
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var supported = kvm.GetSupportedCpuid();
        ulong supportedXcr0 = SupportedXcr0(supported);
        var leaf0 = supported.First(e => e.Function == 0xd && e.Index == 0);
        uint full = StandardXsaveSize(supported, supportedXcr0);
        Assert.Equal((full, full), (leaf0.Ebx, leaf0.Ecx));
        // The two machines met: PKRU's 4 bytes at 0x980 on Milan, Hi16_ZMM's 0x400 at 0x580 on Genoa.
        if (supportedXcr0 == 0x207) Assert.Equal(0x988u, full);
        if (supportedXcr0 == 0xe7) Assert.Equal(0x980u, full);

        vcpu.SetCpuid(supported);
        // Legacy area and header, then AVX at 0x240 (0x100 bytes) on every host met; then what this host offers.
        var cases = new List<(ulong Xcr0, uint Size)> { (1, 0x240), (3, 0x240), (7, 0x340) };
        if ((supportedXcr0 & Avx512) == Avx512) cases.Add((7 | Avx512, StandardXsaveSize(supported, 7 | Avx512)));
        if ((supportedXcr0 & Pkru) != 0) cases.Add((7 | Pkru, StandardXsaveSize(supported, 7 | Pkru)));
        cases.Add((supportedXcr0, full));
        foreach (var (xcr0, size) in cases)
        {
            vcpu.SetXcr0(xcr0);
            var leaf = vcpu.GetCpuid().First(e => e.Function == 0xd && e.Index == 0);
            Assert.True(leaf.Ebx == size, $"XCR0 0x{xcr0:X}: CPUID.0xD.0 EBX 0x{leaf.Ebx:X}, expected 0x{size:X}");
        }
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Events_validate_flags_and_vectors_and_round_trip(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var fresh = vcpu.GetEvents();
        Assert.Equal(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM, fresh.flags);
        fresh.flags = 0;
        Assert.All(System.Runtime.InteropServices.MemoryMarshal.AsBytes(new[] { fresh }.AsSpan()).ToArray(), b => Assert.Equal(0, b));

        AssertErrno(Errno.EINVAL, () => vcpu.SetEvents(new kvm_vcpu_events { flags = 0x40 }));
        AssertErrno(Errno.EINVAL, () => vcpu.SetEvents(new kvm_vcpu_events { flags = 0x8000_0000 }));
        // VALID_PAYLOAD / VALID_TRIPLE_FAULT without KVM_CAP_EXCEPTION_PAYLOAD / KVM_CAP_X86_TRIPLE_FAULT_EVENT.
        AssertErrno(Errno.EINVAL, () => vcpu.SetEvents(new kvm_vcpu_events { flags = KVM_VCPUEVENT_VALID_PAYLOAD }));
        AssertErrno(Errno.EINVAL, () => vcpu.SetEvents(new kvm_vcpu_events { exception_injected = 1, exception_nr = 32 }));
        AssertErrno(Errno.EINVAL, () => vcpu.SetEvents(new kvm_vcpu_events { exception_injected = 1, exception_nr = 2 }));

        // An injected #GP with an error code; the payload is kept though has_payload is cleared without the flag.
        vcpu.SetEvents(new kvm_vcpu_events
        {
            exception_injected = 1, exception_nr = 13, exception_has_error_code = 7, exception_error_code = 0x18,
            exception_pending = 1, exception_has_payload = 1, exception_payload = 0x1234, reserved = default,
        });
        var ev = vcpu.GetEvents();
        Assert.Equal((1, 13, 1, 0, 0x18u), (ev.exception_injected, ev.exception_nr, ev.exception_has_error_code, ev.exception_pending, ev.exception_error_code));
        Assert.Equal((0, 0x1234UL), (ev.exception_has_payload, ev.exception_payload));

        // A soft exception (#BP) is not reported as injected; a soft interrupt is not reported as injected.
        vcpu.SetEvents(new kvm_vcpu_events { exception_injected = 1, exception_nr = 3, interrupt_injected = 1, interrupt_nr = 0x80, interrupt_soft = 1 });
        ev = vcpu.GetEvents();
        Assert.Equal((0, 3, 0, 0x80, 0), (ev.exception_injected, ev.exception_nr, ev.interrupt_injected, ev.interrupt_nr, ev.interrupt_soft));
        vcpu.SetEvents(new kvm_vcpu_events { interrupt_injected = 1, interrupt_nr = 0x20 });
        Assert.Equal((1, 0x20), (vcpu.GetEvents().interrupt_injected, vcpu.GetEvents().interrupt_nr));

        // The shadow changes only with VALID_SHADOW (kept verbatim on this host and the emulator).
        vcpu.SetEvents(new kvm_vcpu_events { flags = KVM_VCPUEVENT_VALID_SHADOW, interrupt_shadow = KVM_X86_SHADOW_INT_MOV_SS });
        vcpu.SetEvents(new kvm_vcpu_events { interrupt_shadow = KVM_X86_SHADOW_INT_STI });
        Assert.Equal(KVM_X86_SHADOW_INT_MOV_SS, vcpu.GetEvents().interrupt_shadow);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Nmis_pending_are_capped_as_process_nmi_does(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        // Two may be pending while NMIs are not blocked…
        vcpu.SetEvents(new kvm_vcpu_events { flags = KVM_VCPUEVENT_VALID_NMI_PENDING, nmi_pending = 5 });
        var ev = vcpu.GetEvents();
        Assert.Equal((0, 2, 0), (ev.nmi_injected, ev.nmi_pending, ev.nmi_masked));
        // …one while an NMI is injected or NMIs are masked; without VALID_NMI_PENDING the pending count is kept.
        vcpu.SetEvents(new kvm_vcpu_events { nmi_injected = 2 });
        ev = vcpu.GetEvents();
        Assert.Equal((1, 1, 0), (ev.nmi_injected, ev.nmi_pending, ev.nmi_masked));
        vcpu.SetEvents(new kvm_vcpu_events { nmi_masked = 7 });
        ev = vcpu.GetEvents();
        Assert.Equal((0, 1, 1), (ev.nmi_injected, ev.nmi_pending, ev.nmi_masked));
        vcpu.SetEvents(new kvm_vcpu_events { flags = KVM_VCPUEVENT_VALID_NMI_PENDING });
        Assert.Equal(0, vcpu.GetEvents().nmi_pending);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Refused_smm_or_triple_fault_part_leaves_the_rest_applied(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        // No SMM on this host (KVM_CAP_X86_SMM 0): smm/pending are EINVAL, latched_init alone is ignored.
        vcpu.SetEvents(new kvm_vcpu_events { flags = KVM_VCPUEVENT_VALID_SMM, smi_latched_init = 1 });
        Assert.Equal(0, vcpu.GetEvents().smi_latched_init);
        AssertErrno(Errno.EINVAL, () => vcpu.SetEvents(new kvm_vcpu_events
        {
            flags = KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_SHADOW, smi_smm = 1, interrupt_shadow = 1,
            exception_injected = 1, exception_nr = 13,
        }));
        var ev = vcpu.GetEvents();
        Assert.Equal((1, 13, 1), (ev.exception_injected, ev.exception_nr, ev.interrupt_shadow));
        AssertErrno(Errno.EINVAL, () => vcpu.SetEvents(new kvm_vcpu_events
        {
            flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT, triple_fault_pending = 1, exception_injected = 1, exception_nr = 14,
        }));
        Assert.Equal(14, vcpu.GetEvents().exception_nr);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Mp_state_without_an_irqchip_is_runnable_only(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, vcpu.GetMpState());
        vcpu.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        foreach (uint state in new uint[] { 1, 2, 3, 4, 9, 10, 11, 0xffff_ffff })
        {
            var ex = AssertErrno(Errno.EINVAL, () => vcpu.SetMpState(state));
            Assert.Contains($"mp_state={state}", ex.Message, StringComparison.Ordinal);
        }
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, vcpu.GetMpState());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Debug_registers_reset_round_trip_and_refuse_high_bits(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var fresh = vcpu.GetDebugRegs();
        Assert.Equal(new ulong[4], ((ReadOnlySpan<ulong>)fresh.db).ToArray());
        Assert.Equal((0xffff0ff0UL, 0x400UL, 0UL), (fresh.dr6, fresh.dr7, fresh.flags));

        var d = default(kvm_debugregs);
        d.db[0] = 0x1000;
        d.db[1] = ulong.MaxValue;
        d.db[3] = 0x8000_0000_0000_0000;
        d.dr6 = 0x1234;
        d.dr7 = 0xffff_ffff;
        d.reserved[0] = 1; // not checked
        vcpu.SetDebugRegs(d);
        var back = vcpu.GetDebugRegs();
        Assert.Equal(new ulong[] { 0x1000, ulong.MaxValue, 0, 0x8000_0000_0000_0000 }, ((ReadOnlySpan<ulong>)back.db).ToArray());
        Assert.Equal((0x1234UL, 0xffff_ffffUL, 0UL), (back.dr6, back.dr7, back.reserved[0]));

        AssertErrno(Errno.EINVAL, () => vcpu.SetDebugRegs(d with { flags = 1 }));
        AssertErrno(Errno.EINVAL, () => vcpu.SetDebugRegs(d with { dr6 = 0x1_ffff_0ff0 }));
        var ex = AssertErrno(Errno.EINVAL, () => vcpu.SetDebugRegs(d with { dr7 = 0x1_0000_0400 }));
        Assert.Contains("dr7=0x100000400", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0xffff_ffffUL, vcpu.GetDebugRegs().dr7);
    }

    private static kvm_xcrs WithXcr0(kvm_xcrs xcrs, ulong value)
    {
        xcrs.xcrs[0].value = value;
        return xcrs;
    }
}
