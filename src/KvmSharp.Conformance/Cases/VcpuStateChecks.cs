// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Abi.KvmVcpuEvents;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// What KVM_SET_SREGS, KVM_SET_REGS, KVM_SET_DEBUGREGS, KVM_SET_XCRS and KVM_SET_VCPU_EVENTS refuse and what they keep
/// (arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl), named one rule at a time: the rules a VMM's restore path meets. The
/// emulator's side is src/KvmSharp.Emulation/X86/SregsRules.cs and X86/VcpuStateRules.cs; until now only its unit
/// tests (tests/KvmSharp.Emulation.Tests/VcpuTests.cs) and the random differential fuzzer checked them.
/// </summary>
public static class VcpuStateChecks
{
    private const string X86 = "arch/x86/kvm/x86.c";
    private const ulong CR0_PE = 1, CR0_NW = 1UL << 29, CR0_CD = 1UL << 30, CR0_PG = 1UL << 31;
    private const ulong CR4_PAE = 1UL << 5;
    private const ulong EFER_LME = 1UL << 8, EFER_LMA = 1UL << 10;

    [ConformanceCase(X86 + " kvm_is_valid_sregs / kvm_is_valid_cr0: PG without PE, CR0 bits 63:32, NW without CD, EFER.LMA or CS.L outside " +
                     "64-bit mode, LME+PG without PAE or without LMA are EINVAL and change nothing; kvm_apic_set_base refuses x2APIC mode without x2APIC")]
    public static void set_sregs_refuses_inconsistent_modes(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var s = vcpu.GetSregs();
        var longMode = LongMode(s);
        var bad = new (string What, kvm_sregs Sregs)[]
        {
            ("CR0.PG without PE", s with { cr0 = (s.cr0 & ~CR0_PE) | CR0_PG }),
            ("CR0 bit 32", s with { cr0 = s.cr0 | (1UL << 32) }),
            ("CR0.NW without CD", s with { cr0 = (s.cr0 & ~CR0_CD) | CR0_NW }),
            ("EFER.LMA without LME and PG", s with { efer = EFER_LMA }),
            ("CS.L in real mode", s with { cs = s.cs with { l = 1 } }),
            ("LME+PG without CR4.PAE", longMode with { cr4 = 0 }),
            ("LME+PG without EFER.LMA", longMode with { efer = EFER_LME }),
            ("x2APIC mode without x2APIC", s with { apic_base = s.apic_base | (1UL << 10) }),
        };
        foreach (var (what, sregs) in bad)
        {
            var b = sregs;
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_SREGS, CaseContext.Raw(ref b)), what);
            var after = vcpu.GetSregs();
            Assert.True((after.cr0, after.cr4, after.efer, after.cs.l, after.apic_base) == (s.cr0, s.cr4, s.efer, s.cs.l, s.apic_base),
                $"{what}: a refused KVM_SET_SREGS changed the state");
        }
        // The consistent 64-bit state is taken, and EFER/CS.L come back as given.
        vcpu.SetSregs(longMode);
        var got = vcpu.GetSregs();
        Assert.Equal((longMode.cr0, longMode.cr4, longMode.efer, (byte)1), (got.cr0, got.cr4, got.efer, got.cs.l));
    }

    [ConformanceCase(X86 + " kvm_is_valid_sregs: in 64-bit mode CR3 must be a legal GPA (kvm_vcpu_is_legal_cr3: no bit of reserved_gpa_bits = " +
                     "rsvd_bits(MAXPHYADDR, 63), MAXPHYADDR 36 before KVM_SET_CPUID2, else CPUID.0x80000008 EAX[7:0]); outside 64-bit mode CR3 is not checked")]
    public static void set_sregs_checks_cr3_against_maxphyaddr_only_in_long_mode(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var s = vcpu.GetSregs();
        var longMode = LongMode(s);
        // cpuid_query_maxphyaddr falls back to 36 while the vCPU has no CPUID.
        AssertCr3(ctx, vcpu, longMode, 36);
        // Real mode: a CR3 with bits far above any MAXPHYADDR is stored as given.
        vcpu.SetSregs(s with { cr3 = 1UL << 62 });
        Assert.Equal(1UL << 62, vcpu.GetSregs().cr3);

        var supported = kvm.GetSupportedCpuid();
        vcpu.SetCpuid(supported);
        int maxPhyAddr = (int)(supported.First(e => e.Function == 0x8000_0008).Eax & 0xff);
        Assert.InRange(maxPhyAddr, 37, 52);
        AssertCr3(ctx, vcpu, longMode, maxPhyAddr);
    }

    private const string Cr4Rule = X86 + " kvm_is_valid_cr4 (KVM_SET_SREGS): x86.h __kvm_is_valid_cr4 tests vcpu->arch.cr4_guest_rsvd_bits, which cpuid.c " +
        "kvm_vcpu_after_set_cpuid sets to __cr4_reserved_bits(guest_cpu_cap_has) at vCPU creation (an empty CPUID) and at each KVM_SET_CPUID2: " +
        "CR4_RESERVED_BITS (VME..OSXMMEXCPT always valid; SMXE, bits 15, 19, 26, 27, 29-31 and 33-63 never) plus the bit of each of XSAVE, SMEP, SMAP, " +
        "FSGSBASE, PKU, LA57, UMIP, VMX, PCID, CET (SHSTK or IBT) and LAM the vCPU's CPUID lacks — so a vCPU without KVM_SET_CPUID2 takes only " +
        "VME..OSXMMEXCPT; a refused bit is EINVAL and changes nothing. kvm_pvm keeps 0x750FFF whatever the CPUID (KvmPvmKeepsCr4BitsTheGuestCpuidLacks)";

    [ConformanceCase(Cr4Rule)]
    public static void set_sregs_cr4_bits_follow_kvm_and_guest_cpuid(CaseContext ctx) => AssertCr4BitsFollowGuestCpuid(ctx);

    [ConformanceCase(Cr4Rule + "; on the emulator in the upstream x86 preset (EmulatorConfig.X86Cr4ReservedFromGuestCpuid)", Profile = EmulatedProfile.X86)]
    public static void set_sregs_cr4_bits_follow_guest_cpuid_upstream_preset(CaseContext ctx) => AssertCr4BitsFollowGuestCpuid(ctx);

    /// <summary>
    /// The CR4 bits KVM_SET_SREGS takes one at a time: without a CPUID, with KVM_GET_SUPPORTED_CPUID's table, and with
    /// that table less the features behind the conditional CR4 bits. A kernel following upstream (the real one unless it
    /// is kvm_pvm; the emulator with <c>X86Cr4ReservedFromGuestCpuid</c>) must take exactly VME..OSXMMEXCPT plus the bits
    /// of the features the held CPUID has; kvm_pvm (and the emulator built like it) takes the same bits each time.
    /// </summary>
    private static void AssertCr4BitsFollowGuestCpuid(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        bool upstreamRule = ctx.Target.IsReal
            ? !HostDeviations.KvmPvmKeepsCr4BitsTheGuestCpuidLacks(ctx.Target.IsReal)
            : ctx.Kernel is Emulation.EmulatedKernel { Config.X86Cr4ReservedFromGuestCpuid: true };
        ulong accepted = AcceptedCr4(ctx, vcpu);
        const ulong always = 0x7ff; // VME, PVI, TSD, DE, PSE, PAE, MCE, PGE, PCE, OSFXSR, OSXMMEXCPT
        const ulong never = (1UL << 14) | (1UL << 15) | (1UL << 19) | (1UL << 26) | (1UL << 27) | (7UL << 29) | ~((1UL << 33) - 1);
        Assert.True((accepted & always) == always, $"accepted CR4 bits 0x{accepted:X} lack some of 0x{always:X}");
        Assert.True((accepted & never) == 0, $"accepted CR4 bits 0x{accepted:X} include reserved ones 0x{accepted & never:X}");
        // Before 6.12 kvm_arch_vcpu_create did not run kvm_vcpu_after_set_cpuid: no guest CPUID rule until KVM_SET_CPUID2.
        bool emptyCpuidAtCreation = ctx.Kernel is not Emulation.EmulatedKernel { Config.Generation: < Emulation.KernelGeneration.Linux616 };
        if (upstreamRule && emptyCpuidAtCreation)
            Assert.True(accepted == always, $"without KVM_SET_CPUID2 (an empty guest CPUID) accepted CR4 bits 0x{accepted:X}, expected 0x{always:X}");

        // KVM's own table: each conditional bit whose feature it offers becomes valid.
        var supported = kvm.GetSupportedCpuid();
        vcpu.SetCpuid(supported);
        ulong full = AcceptedCr4(ctx, vcpu);
        ulong fullUpstream = always | GuestFeatureCr4(vcpu.GetCpuid());
        if (upstreamRule)
            Assert.True(full == fullUpstream, $"with KVM_GET_SUPPORTED_CPUID's table accepted CR4 bits 0x{full:X}, expected 0x{fullUpstream:X}");
        else
            Assert.True(full == accepted, $"with KVM_GET_SUPPORTED_CPUID's table accepted CR4 bits 0x{full:X}, this host keeps 0x{accepted:X} (upstream 0x{fullUpstream:X})");

        // The same table without the features behind the CR4 bits (before KVM_RUN a new table replaces the old).
        var without = supported.Select(e => (e.Function, e.Index) switch
        {
            (1, _) => e with { Ecx = e.Ecx & ~((1u << 5) | (1u << 17) | (1u << 26)) },                             // VMX, PCID, XSAVE
            (7, 0) => e with { Ebx = e.Ebx & ~((1u << 0) | (1u << 7) | (1u << 20)),                               // FSGSBASE, SMEP, SMAP
                               Ecx = e.Ecx & ~((1u << 2) | (1u << 3) | (1u << 7) | (1u << 16)),                  // UMIP, PKU, SHSTK, LA57
                               Edx = e.Edx & ~(1u << 20) },                                                       // IBT
            (7, 1) => e with { Eax = e.Eax & ~(1u << 26) },                                                       // LAM
            _ => e,
        }).ToList();
        vcpu.SetCpuid(without);
        // The table as the vCPU holds it (a kernel may add bits to what it was given: HostDeviations.KvmPvmSetCpuidRewritesLeaves).
        var held = vcpu.GetCpuid();
        ulong guest = AcceptedCr4(ctx, vcpu);
        ulong upstream = always | GuestFeatureCr4(held);
        if (upstreamRule)
            Assert.True(guest == upstream, $"with the CPUID held, accepted CR4 bits 0x{guest:X}, expected 0x{upstream:X}");
        else
            Assert.True(guest == accepted, $"with the CPUID held, accepted CR4 bits 0x{guest:X}, this host keeps 0x{accepted:X} (upstream 0x{upstream:X})");
    }

    /// <summary>
    /// The CR4 bits __cr4_reserved_bits(guest_cpu_cap_has) leaves valid for a vCPU holding <paramref name="cpuid"/>
    /// (arch/x86/kvm/x86.h): each feature bit with its CPUID feature.
    /// </summary>
    private static ulong GuestFeatureCr4(IReadOnlyList<CpuidEntry> cpuid)
    {
        uint Reg(uint function, uint index, Func<CpuidEntry, uint> reg) =>
            cpuid.Where(e => e.Function == function && (e.Index == index || !e.HasSignificantIndex)).Select(reg).FirstOrDefault();
        bool Has(uint function, uint index, Func<CpuidEntry, uint> reg, int bit) => (Reg(function, index, reg) & (1u << bit)) != 0;
        ulong valid = 0;
        if (Has(7, 0, e => e.Ecx, 2)) valid |= 1UL << 11;                              // UMIP
        if (Has(7, 0, e => e.Ecx, 16)) valid |= 1UL << 12;                             // LA57
        if (Has(1, 0, e => e.Ecx, 5)) valid |= 1UL << 13;                              // VMXE
        if (Has(7, 0, e => e.Ebx, 0)) valid |= 1UL << 16;                              // FSGSBASE
        if (Has(1, 0, e => e.Ecx, 17)) valid |= 1UL << 17;                             // PCIDE
        if (Has(1, 0, e => e.Ecx, 26)) valid |= 1UL << 18;                             // OSXSAVE
        if (Has(7, 0, e => e.Ebx, 7)) valid |= 1UL << 20;                              // SMEP
        if (Has(7, 0, e => e.Ebx, 20)) valid |= 1UL << 21;                             // SMAP
        if (Has(7, 0, e => e.Ecx, 3)) valid |= 1UL << 22;                              // PKE
        if (Has(7, 0, e => e.Ecx, 7) || Has(7, 0, e => e.Edx, 20)) valid |= 1UL << 23; // CET: SHSTK or IBT
        if (Has(7, 1, e => e.Eax, 26)) valid |= 1UL << 28;                             // LAM_SUP
        return valid;
    }

    /// <summary>Each CR4 bit alone through KVM_SET_SREGS: the mask of those taken (and read back), each refusal leaving CR4 alone.</summary>
    private static ulong AcceptedCr4(CaseContext ctx, Vcpu vcpu)
    {
        var s = vcpu.GetSregs();
        ulong mask = 0;
        for (int bit = 0; bit < 64; bit++)
        {
            var b = s with { cr4 = 1UL << bit };
            long rc = ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_SREGS, CaseContext.Raw(ref b));
            Assert.True(rc is 0 or -(long)Errno.EINVAL, $"CR4 bit {bit}: {rc}");
            if (rc == 0)
            {
                mask |= 1UL << bit;
                Assert.Equal(1UL << bit, vcpu.GetSregs().cr4);
                vcpu.SetSregs(s);
            }
            else
            {
                Assert.Equal(s.cr4, vcpu.GetSregs().cr4);
            }
        }
        return mask;
    }

    [ConformanceCase(X86 + " __set_sregs_common: kvm_set_cr8's result is ignored, so a CR8 above the 4-bit TPR keeps the old one; " +
                     "__set_sregs: the lowest vector in interrupt_bitmap is queued as an injected hard interrupt (KVM_GET_VCPU_EVENTS and KVM_GET_SREGS report it)")]
    public static void set_sregs_cr8_and_interrupt_bitmap(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var s = vcpu.GetSregs();
        vcpu.SetSregs(s with { cr8 = 5 });
        Assert.Equal(5UL, vcpu.GetSregs().cr8);
        vcpu.SetSregs(s with { cr8 = 0x15 });
        Assert.Equal(5UL, vcpu.GetSregs().cr8);

        var withBits = s;
        withBits.interrupt_bitmap[1] = (1UL << (0x42 - 64)) | (1UL << (0x7f - 64));
        withBits.interrupt_bitmap[3] = 1UL << 1;
        vcpu.SetSregs(withBits);
        var ev = vcpu.GetEvents();
        Assert.Equal(((byte)1, (byte)0x42, (byte)0), (ev.interrupt_injected, ev.interrupt_nr, ev.interrupt_soft));
        var back = vcpu.GetSregs();
        Assert.Equal((0UL, 1UL << (0x42 - 64), 0UL, 0UL), (back.interrupt_bitmap[0], back.interrupt_bitmap[1], back.interrupt_bitmap[2], back.interrupt_bitmap[3]));
        // An empty bitmap leaves the queued interrupt alone.
        vcpu.SetSregs(s);
        Assert.Equal(((byte)1, (byte)0x42), (vcpu.GetEvents().interrupt_injected, vcpu.GetEvents().interrupt_nr));
    }

    [ConformanceCase(X86 + " __set_regs / __get_regs: every GPR and RIP round-trip; kvm_set_rflags(regs->rflags | X86_EFLAGS_FIXED) forces bit 1")]
    public static void set_regs_round_trips_and_forces_the_fixed_flag(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var regs = new kvm_regs
        {
            rax = 0x1111, rbx = 0x2222_0000_0000, rcx = ulong.MaxValue, rdx = 4, rsi = 5, rdi = 6, rsp = 0x7000, rbp = 8,
            r8 = 9, r9 = 10, r10 = 11, r11 = 12, r12 = 13, r13 = 14, r14 = 15, r15 = 0x8000_0000_0000_0000, rip = 0xfff0, rflags = 0,
        };
        vcpu.SetRegs(regs);
        Assert.Equal(regs with { rflags = 2 }, vcpu.GetRegs());
        vcpu.SetRegs(regs with { rflags = 0x202 });
        Assert.Equal(0x202UL, vcpu.GetRegs().rflags);
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_set_debugregs: flags != 0 → EINVAL, kvm_dr6_valid / kvm_dr7_valid (bits 63:32 clear) → EINVAL, " +
                     "nothing changed; otherwise db[0..3], DR6 and DR7 are stored as given (no canonical check, no fixed bits added, reserved[] ignored)")]
    public static void set_debugregs_checks_flags_and_high_halves(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var before = vcpu.GetDebugRegs();
        var good = new kvm_debugregs { dr6 = 0, dr7 = 0xffff_ffff };
        good.db[0] = 0x1000;
        good.db[1] = 0x0000_8000_0000_0000; // not canonical
        good.db[2] = ulong.MaxValue;
        good.db[3] = 0x7fff_ffff_f000;
        good.reserved[0] = 0xdead;
        foreach (var (what, bad) in new (string, kvm_debugregs)[]
                 {
                     ("flags 1", good with { flags = 1 }),
                     ("flags 0x80000000", good with { flags = 0x8000_0000 }),
                     ("DR6 bit 32", good with { dr6 = 1UL << 32 }),
                     ("DR7 bit 63", good with { dr7 = 1UL << 63 }),
                 })
        {
            var b = bad;
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_DEBUGREGS, CaseContext.Raw(ref b)), what);
            var now = vcpu.GetDebugRegs();
            Assert.True((now.db[0], now.db[1], now.dr6, now.dr7) == (before.db[0], before.db[1], before.dr6, before.dr7), $"{what} changed the registers");
        }
        vcpu.SetDebugRegs(good);
        var got = vcpu.GetDebugRegs();
        for (int i = 0; i < 4; i++) Assert.Equal(good.db[i], got.db[i]);
        Assert.Equal((0UL, 0xffff_ffffUL, 0UL, 0UL), (got.dr6, got.dr7, got.flags, got.reserved[0]));
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_set_xcrs: nr_xcrs > KVM_MAX_XCRS or flags → EINVAL; the first entry naming XCR0 counts (others skipped, " +
                     "later XCR0 entries ignored, none at all is 0); __kvm_set_xcr: FP required, YMM needs SSE, nothing outside the vCPU's CPUID.0xD (only FP before KVM_SET_CPUID2)")]
    public static void set_xcrs_checks_the_header_and_xcr0(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(1UL, vcpu.GetXcr0());
        CaseContext.AssertErrno(Errno.EINVAL, SetXcrs(ctx, vcpu, 17, 0, (0, 1)), "nr_xcrs 17");
        CaseContext.AssertErrno(Errno.EINVAL, SetXcrs(ctx, vcpu, 1, 1, (0, 1)), "flags 1");
        CaseContext.AssertErrno(Errno.EINVAL, SetXcrs(ctx, vcpu, 1, 0, (0, 0)), "XCR0 without FP");
        CaseContext.AssertErrno(Errno.EINVAL, SetXcrs(ctx, vcpu, 1, 0, (0, 3)), "XCR0 SSE before KVM_SET_CPUID2");
        Assert.Equal(0, SetXcrs(ctx, vcpu, 0, 0, (0, 0)));
        Assert.Equal(0, SetXcrs(ctx, vcpu, 1, 0, (1, 0)));
        Assert.Equal(1UL, vcpu.GetXcr0());

        var supported = kvm.GetSupportedCpuid();
        vcpu.SetCpuid(supported);
        ulong guestXcr0 = supported.Where(e => e.Function == 0xd && e.Index == 0).Select(e => e.Eax | ((ulong)e.Edx << 32)).Single();
        Assert.True((guestXcr0 & 7) == 7, $"KVM_GET_SUPPORTED_CPUID 0xD.0 offers XCR0 0x{guestXcr0:X}: no AVX");
        CaseContext.AssertErrno(Errno.EINVAL, SetXcrs(ctx, vcpu, 1, 0, (0, 5)), "YMM without SSE");
        CaseContext.AssertErrno(Errno.EINVAL, SetXcrs(ctx, vcpu, 1, 0, (0, 7 | (1UL << 62))), "a bit outside CPUID.0xD");
        Assert.Equal(1UL, vcpu.GetXcr0());
        // The first XCR0 entry wins; an entry for another XCR before it is skipped.
        Assert.Equal(0, SetXcrs(ctx, vcpu, 3, 0, (1, 0x1234), (0, 3), (0, 7)));
        Assert.Equal(3UL, vcpu.GetXcr0());
        // Entries past nr_xcrs are not read.
        Assert.Equal(0, SetXcrs(ctx, vcpu, 1, 0, (0, 7), (0, 0)));
        Assert.Equal(7UL, vcpu.GetXcr0());
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_x86_set_vcpu_events: unknown flags → EINVAL; VALID_PAYLOAD without KVM_CAP_EXCEPTION_PAYLOAD → EINVAL; " +
                     "without it exception.pending is dropped before the check that an injected exception's vector is at most 31 and not NMI (EINVAL); a refused call changes nothing")]
    public static void set_vcpu_events_checks_flags_and_the_exception_vector(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var queued = new kvm_vcpu_events { exception_injected = 1, exception_nr = 13, exception_has_error_code = 1, exception_error_code = 0x18 };
        vcpu.SetEvents(queued);
        foreach (var (what, bad) in new (string, kvm_vcpu_events)[]
                 {
                     ("flags 0x40", new kvm_vcpu_events { flags = 0x40 }),
                     ("flags 1 << 31", new kvm_vcpu_events { flags = 1u << 31 }),
                     ("VALID_PAYLOAD without the cap", new kvm_vcpu_events { flags = KVM_VCPUEVENT_VALID_PAYLOAD }),
                     ("injected vector 32", new kvm_vcpu_events { exception_injected = 1, exception_nr = 32 }),
                     ("injected vector 255", new kvm_vcpu_events { exception_injected = 1, exception_nr = 255 }),
                     ("injected NMI vector", new kvm_vcpu_events { exception_injected = 1, exception_nr = 2 }),
                 })
        {
            var b = bad;
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_VCPU_EVENTS, CaseContext.Raw(ref b)), what);
            var now = vcpu.GetEvents();
            Assert.True((now.exception_injected, now.exception_nr, now.exception_error_code) == ((byte)1, (byte)13, 0x18u), $"{what} changed the queue");
        }
        // Only pending (no VALID_PAYLOAD): pending is cleared first, so vector 40 is not checked and nothing is queued.
        vcpu.SetEvents(new kvm_vcpu_events { exception_pending = 1, exception_nr = 40 });
        var ev = vcpu.GetEvents();
        Assert.Equal(((byte)0, (byte)0), (ev.exception_injected, ev.exception_pending));
        // Vector 31 is in range.
        vcpu.SetEvents(new kvm_vcpu_events { exception_injected = 1, exception_nr = 31 });
        ev = vcpu.GetEvents();
        Assert.Equal(((byte)1, (byte)31), (ev.exception_injected, ev.exception_nr));
    }

    [ConformanceCase(X86 + " kvm_arch_vcpu_ioctl: every vCPU state GET/SET copies its struct from or to the user pointer (EFAULT at an unmapped address); " +
                     "KVM_GET/SET_LAPIC check lapic_in_kernel first (EINVAL whatever the pointer)")]
    public static void vcpu_state_requests_at_a_bad_address_are_efault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var sregs = vcpu.GetSregs();
        var regs = vcpu.GetRegs();
        foreach (uint request in new[]
                 {
                     KvmIoctls.KVM_GET_REGS, KvmIoctls.KVM_SET_REGS, KvmIoctls.KVM_GET_SREGS, KvmIoctls.KVM_SET_SREGS,
                     KvmIoctls.KVM_GET_FPU, KvmIoctls.KVM_SET_FPU, KvmIoctls.KVM_GET_XCRS, KvmIoctls.KVM_SET_XCRS,
                     KvmIoctls.KVM_GET_VCPU_EVENTS, KvmIoctls.KVM_SET_VCPU_EVENTS, KvmIoctls.KVM_GET_MP_STATE, KvmIoctls.KVM_SET_MP_STATE,
                     KvmIoctls.KVM_GET_DEBUGREGS, KvmIoctls.KVM_SET_DEBUGREGS, KvmIoctls.KVM_GET_XSAVE, KvmIoctls.KVM_GET_XSAVE2,
                     KvmIoctls.KVM_SET_XSAVE, KvmIoctls.KVM_GET_MSRS, KvmIoctls.KVM_SET_MSRS, KvmIoctls.KVM_SET_GUEST_DEBUG,
                     KvmIoctls.KVM_ENABLE_CAP,
                 })
        {
            CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, request, 8UL), $"{KvmIoctls.NameOf(request)} at address 8");
            CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, request, 0UL), $"{KvmIoctls.NameOf(request)} at NULL");
        }
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_LAPIC, 8UL), "KVM_GET_LAPIC at address 8, no irqchip");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_LAPIC, 8UL), "KVM_SET_LAPIC at address 8, no irqchip");
        Assert.Equal(regs, vcpu.GetRegs());
        var after = vcpu.GetSregs();
        Assert.Equal((sregs.cr0, sregs.cs.@base, sregs.efer), (after.cr0, after.cs.@base, after.efer));
    }

    [ConformanceCase(X86 + " kvm_vcpu_ioctl_enable_cap: flags != 0 → EINVAL before the cap is looked at; a cap the vCPU does not know → EINVAL; " +
                     "virt/kvm/kvm_main.c kvm_vm_ioctl_enable_cap_generic → kvm_vm_ioctl_enable_cap: the same on the VM; /dev/kvm does not know the request (EINVAL)")]
    public static void enable_cap_refuses_flags_and_unknown_caps(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        foreach (var (what, fd) in new[] { ("VM", vm.Handle), ("vCPU", vcpu.Handle) })
        {
            var unknown = new kvm_enable_cap { cap = 0x7fff_ffff };
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(fd, KvmIoctls.KVM_ENABLE_CAP, CaseContext.Raw(ref unknown)), $"{what}: unknown cap");
            var none = new kvm_enable_cap { cap = 0 };
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(fd, KvmIoctls.KVM_ENABLE_CAP, CaseContext.Raw(ref none)), $"{what}: cap 0");
        }
        // KVM_CAP_EXCEPTION_PAYLOAD is a VM cap the vCPU does not take; with a flag the VM refuses it too.
        var payload = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_EXCEPTION_PAYLOAD, flags = 1 };
        payload.args[0] = 1;
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_ENABLE_CAP, CaseContext.Raw(ref payload)), "VM: flags 1");
        payload.flags = 0;
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_ENABLE_CAP, CaseContext.Raw(ref payload)), "vCPU: a VM cap");
        Assert.Equal(0, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_ENABLE_CAP, CaseContext.Raw(ref payload)));
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_ENABLE_CAP, CaseContext.Raw(ref payload)), "/dev/kvm");
    }

    /// <summary>The fresh vCPU's state put in 64-bit mode (LME|LMA, PE|PG, PAE, CS.L): what kvm_is_valid_sregs accepts.</summary>
    private static kvm_sregs LongMode(kvm_sregs s) => s with
    {
        cr0 = CR0_PE | CR0_PG | (1UL << 4), cr3 = 0x1000, cr4 = CR4_PAE, efer = EFER_LME | EFER_LMA,
        cs = s.cs with { l = 1, db = 0, @base = 0, selector = 8 },
    };

    /// <summary>CR3 with bit <paramref name="maxPhyAddr"/> - 1 is taken in 64-bit mode, with bit <paramref name="maxPhyAddr"/> or 63 EINVAL.</summary>
    private static void AssertCr3(CaseContext ctx, Vcpu vcpu, kvm_sregs longMode, int maxPhyAddr)
    {
        foreach (int bit in new[] { maxPhyAddr, 63 })
        {
            var bad = longMode with { cr3 = 0x1000 | (1UL << bit) };
            CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_SREGS, CaseContext.Raw(ref bad)), $"CR3 bit {bit} (MAXPHYADDR {maxPhyAddr})");
        }
        vcpu.SetSregs(longMode with { cr3 = 0x1000 | (1UL << (maxPhyAddr - 1)) });
        Assert.Equal(0x1000 | (1UL << (maxPhyAddr - 1)), vcpu.GetSregs().cr3);
    }

    /// <summary>Raw KVM_SET_XCRS with the given header and entries (xcr, value).</summary>
    private static long SetXcrs(CaseContext ctx, Vcpu vcpu, uint nr, uint flags, params (uint Xcr, ulong Value)[] entries)
    {
        var xcrs = new kvm_xcrs { nr_xcrs = nr, flags = flags };
        for (int i = 0; i < entries.Length; i++)
        {
            xcrs.xcrs[i].xcr = entries[i].Xcr;
            xcrs.xcrs[i].value = entries[i].Value;
        }
        return ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_XCRS, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref xcrs, 1)));
    }
}
