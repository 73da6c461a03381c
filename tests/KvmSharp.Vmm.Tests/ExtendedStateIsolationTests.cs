// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// What a guest leaves in the vCPU besides memory and the registers a call reloads — XMM/YMM, MXCSR, XCR0, DR0–DR7,
/// queued events — must not reach the next user of a reset (pooled) micro-VM, and must travel in a snapshot. On each
/// kernel: the guest leaves what it can (<see cref="ExtendedStateGuest"/>), the test plants the rest through the vCPU
/// (<see cref="Plant"/>: what a guest on a host that runs AVX and LDMXCSR natively would leave), and the state is
/// compared with a micro-VM that never ran — through KVM_GET_XSAVE/XCRS/DEBUGREGS/VCPU_EVENTS and through what the
/// guest reads. Each test first shows the marks are there, so it can fail.
/// </summary>
public sealed class ExtendedStateIsolationTests
{
    private const ulong Secret = 0x5EC2_E700_0000_0000;
    private const uint PlantedMxcsr = 0x7f80; // round toward zero, every exception masked

    // The standard-format XSAVE area (SDM Vol. 1 13.4): MXCSR in the legacy region, XSTATE_BV in the header, the
    // upper YMM halves (component 2) at their architectural offset.
    private const int XsaveMxcsr = 24, XsaveXmm = 160, XsaveXstateBv = 512, XsaveYmmHigh = 576;

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Reset_returns_vector_registers_mxcsr_xcr0_debug_registers_and_events_to_their_creation_values(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        bool avx = ExtendedStateGuest.HostOffersAvx(k.Kvm);
        MicroVmOptions options = k.Options(null);
        (string freshState, byte[] freshProbe) = Fresh(options);

        using var vm = MicroVm.Create(ExtendedStateGuest.Image(), options);
        Call(vm, "taint", Secret, avx ? 1UL : 0UL);
        Plant(vm.Vcpu, avx);
        // Control: every mark is there before the reset.
        ExtendedVcpuState tainted = ExtendedVcpuState.Capture(vm.Vcpu);
        Assert.Equal(PlantedMxcsr, BinaryPrimitives.ReadUInt32LittleEndian(tainted.Fpu.AsSpan(XsaveMxcsr)));
        Assert.Equal(Secret + 15, BinaryPrimitives.ReadUInt64LittleEndian(tainted.Fpu.AsSpan(XsaveXmm + 15 * 16)));
        Assert.Equal(ExtendedStateGuest.TaintedDr7, tainted.DebugRegs.dr7);
        Assert.Equal(1, tainted.Events.nmi_masked);
        if (avx) Assert.Equal((ExtendedStateGuest.TaintedXcr0, (byte)0xA5), (tainted.Xcr0, tainted.Fpu[XsaveYmmHigh + 255]));
        Assert.NotEqual(freshState, Describe(tainted));

        vm.Reset();
        Assert.Equal(freshState, Describe(ExtendedVcpuState.Capture(vm.Vcpu)));
        Assert.Equal(freshProbe, Call(vm, "probe"));
    }

    /// <summary>A pool's second user sees a vCPU as fresh as its first did.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_pooled_micro_vms_next_user_sees_none_of_the_last_users_vcpu_state(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        bool avx = ExtendedStateGuest.HostOffersAvx(k.Kvm);
        MicroVmOptions options = k.Options(null);
        (string freshState, byte[] freshProbe) = Fresh(options);
        using var pool = new MicroVmPool(ExtendedStateGuest.Image(), options, size: 1);
        MicroVm first = pool.Rent();
        Call(first, "taint", Secret, avx ? 1UL : 0UL);
        Assert.NotEqual(freshProbe, Call(first, "probe"));
        pool.Return(first);
        MicroVm second = pool.Rent();
        Assert.Same(first, second);
        Assert.Equal(freshState, Describe(ExtendedVcpuState.Capture(second.Vcpu)));
        Assert.Equal(freshProbe, Call(second, "probe"));
        pool.Return(second);
    }

    /// <summary>
    /// IA32_MISC_ENABLE takes almost any value from a guest and gives it back (x86.c kvm_set_msr_common): a channel from
    /// one user of a pooled micro-VM to the next unless Reset, and a snapshot pool's Restore, put it back.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Reset_and_restore_put_misc_enable_back_so_it_carries_nothing_to_the_next_user(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        MicroVmOptions options = k.Options(null);
        using var vm = MicroVm.Create(ExtendedStateGuest.Image(), options);
        ulong fresh = GuestRun.Value(vm, "rdmsr", X86Msr.MiscEnable);
        const ulong Secret32 = 0x5EC2_E700UL << 32;
        MicroVmSnapshot snapshot = vm.Snapshot();
        foreach (bool restore in new[] { false, true })
        {
            Assert.Equal(0UL, GuestRun.Value(vm, "wrmsr", X86Msr.MiscEnable, fresh | Secret32));
            Assert.Equal(fresh | Secret32, GuestRun.Value(vm, "rdmsr", X86Msr.MiscEnable)); // the channel is there
            if (restore) vm.Restore(snapshot);
            else vm.Reset();
            Assert.Equal(fresh, GuestRun.Value(vm, "rdmsr", X86Msr.MiscEnable));
        }
    }

    /// <summary>
    /// MSRs a guest can write and read back that KVM_GET_MSR_INDEX_LIST does not list — the MTRRs and the
    /// machine-check banks (MCi_ADDR and MCi_MISC take any 64-bit value, MCi_CTL 0 or all ones: x86.c set_msr_mce) —
    /// must not carry one user's values to the next: Reset puts each back (UnlistedMsrs). Where the kernel refuses or
    /// ignores a guest's write there is no channel to close; the test skips with the reason when that holds for all of
    /// them. The emulated kernel models both families as upstream does (X86/Mtrrs.cs, X86/MceBanks.cs), so there every
    /// mark must be kept — and put back.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Reset_puts_the_unlisted_mtrr_and_machine_check_msrs_back(string kernel)
    {
        (uint Msr, ulong Value)[] marks =
        [
            (0x200, 0x1234_5006), (0x201, 0xFFFF_F800), (0x2FF, 0xC06), (0x250, 0x0606_0606_0606_0606),
            (0x258, 0x0505_0505_0505_0505), (0x26F, 0x0404_0404_0404_0404), (Mc0Ctl, 0), (0x402, Secret), (0x403, 0x5EC2_E700),
        ];
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(ExtendedStateGuest.Image(), k.Options(null));
        var held = new List<string>();
        foreach (var (msr, mark) in marks)
        {
            CallResult read = vm.Call("rdmsr", msr);
            // MCi_CTL takes only 0 or all ones: the mark is the one of them the vCPU does not have.
            ulong value = msr == Mc0Ctl && read.IsSuccess ? ~read.Value!.Value : mark;
            CallResult write = read.IsSuccess ? vm.Call("wrmsr", msr, value) : read;
            if (!write.IsSuccess || GuestRun.Value(vm, "rdmsr", msr) != value)
            {
                vm.Reset(); // a refused RDMSR/WRMSR (#GP) faults the micro-VM
                continue;
            }
            ulong fresh = read.Value!.Value;
            held.Add($"0x{msr:X}");
            vm.Reset();
            Assert.Equal((msr, fresh), (msr, GuestRun.Value(vm, "rdmsr", msr)));
        }
        Skip.If(held.Count == 0, $"{k}: this kernel keeps none of these MSRs for a guest (refused or ignored): no channel to close");
        if (!k.IsReal) Assert.True(held.Count == marks.Length, $"{k} kept only {string.Join(", ", held)} of the marks");
    }

    private const uint Mc0Ctl = 0x400;

    /// <summary>
    /// MSR_K7_HWCR's McStatusWrEn (bit 18) lets a guest with AMD CPUID write non-zero MCi_STATUS values (x86.c
    /// kvm_set_msr_common MSR_K7_HWCR, can_set_mci_status): both are guest state a pool's next user must not find.
    /// HWCR is listed, so Reset restores it; the bank is one of the unlisted MSRs it restores. Skipped where the guest
    /// cannot set them (a #GP: e.g. an Intel CPUID).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Reset_puts_hwcr_and_the_bank_status_it_allowed_back(string kernel)
    {
        const uint Hwcr = 0xC001_0015, Mc0Status = 0x401;
        const ulong McStatusWrEn = 1UL << 18, Status = 0x8000_0000_0000_0001;
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(ExtendedStateGuest.Image(), k.Options(null));
        Assert.Equal(0UL, GuestRun.Value(vm, "rdmsr", Hwcr));
        CallResult enable = vm.Call("wrmsr", Hwcr, McStatusWrEn);
        Skip.IfNot(enable.IsSuccess, $"{k}: the guest cannot set HWCR.McStatusWrEn ({enable.Outcome}): no channel to close");
        CallResult write = vm.Call("wrmsr", Mc0Status, Status);
        Skip.IfNot(write.IsSuccess, $"{k}: MC0_STATUS refused the guest's write even with McStatusWrEn ({write.Outcome}; an Intel CPUID?)");
        Assert.Equal((McStatusWrEn, Status), (GuestRun.Value(vm, "rdmsr", Hwcr), GuestRun.Value(vm, "rdmsr", Mc0Status)));
        vm.Reset();
        Assert.Equal((0UL, 0UL), (GuestRun.Value(vm, "rdmsr", Hwcr), GuestRun.Value(vm, "rdmsr", Mc0Status)));
    }

    /// <summary>
    /// A guest's WRMSR to IA32_TSC moves its vCPU's TSC offset (x86.c adjust_tsc_offset_guest), and a host's MSR writes
    /// cannot undo that: without the offset written back (KVM_VCPU_TSC_OFFSET), the next user of a pooled micro-VM
    /// would read the last user's 64-bit value, advancing. Reset and a snapshot pool's Restore put the creation offset
    /// back. Skipped where the kernel ignores the guest's write (then there is no channel to close).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Reset_and_restore_put_the_tsc_offset_back_so_it_carries_nothing_to_the_next_user(string kernel)
    {
        const ulong Moved = 0x5EC2_E700UL << 32; // about 6.9e15 cycles: days of TSC at any clock rate
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(ExtendedStateGuest.Image(), k.Options(null));
        Assert.True(GuestRun.Value(vm, "rdmsr", X86Msr.Tsc) < Moved);
        MicroVmSnapshot snapshot = vm.Snapshot();
        foreach (bool restore in new[] { false, true })
        {
            Assert.Equal(0UL, GuestRun.Value(vm, "wrmsr", X86Msr.Tsc, Moved));
            ulong written = GuestRun.Value(vm, "rdmsr", X86Msr.Tsc);
            Skip.If(written < Moved, $"{k}: this kernel ignores a guest's write of IA32_TSC (it reads 0x{written:X} after writing 0x{Moved:X}; kvm_pvm does): no channel to close");
            if (restore) vm.Restore(snapshot);
            else vm.Reset();
            ulong after = GuestRun.Value(vm, "rdmsr", X86Msr.Tsc);
            Assert.True(after < Moved, $"after {(restore ? "Restore" : "Reset")} the guest reads TSC 0x{after:X}, the last user wrote 0x{Moved:X}");
        }
    }

    /// <summary>
    /// A snapshot taken after a guest set its vector registers, XCR0 and debug registers (and MXCSR, YMM and events
    /// were planted) gives a micro-VM, and a Restore, with that same state — written to bytes and read back.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_snapshot_carries_vector_registers_mxcsr_xcr0_debug_registers_and_events(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        bool avx = ExtendedStateGuest.HostOffersAvx(k.Kvm);
        MicroVmOptions options = k.Options(null);
        using var vm = MicroVm.Create(ExtendedStateGuest.Image(), options);
        Call(vm, "taint", Secret, avx ? 1UL : 0UL);
        Plant(vm.Vcpu, avx);
        string expected = Describe(ExtendedVcpuState.Capture(vm.Vcpu));
        MicroVmSnapshot snapshot = SnapshotSamples.Read(SnapshotSamples.Bytes(vm.Snapshot()));
        Assert.Equal(expected, Describe(snapshot.Vcpu.Extended));

        using (var copy = MicroVm.Create(snapshot, options))
        {
            Assert.Equal(expected, Describe(ExtendedVcpuState.Capture(copy.Vcpu)));
        }
        vm.Reset();
        Assert.NotEqual(expected, Describe(ExtendedVcpuState.Capture(vm.Vcpu)));
        vm.Restore(snapshot);
        Assert.Equal(expected, Describe(ExtendedVcpuState.Capture(vm.Vcpu)));
        byte[] probe = Call(vm, "probe");
        Assert.Equal(Secret + 3, BinaryPrimitives.ReadUInt64LittleEndian(probe.AsSpan(3 * 16)));
        Assert.Equal(ExtendedStateGuest.TaintedDr7, BinaryPrimitives.ReadUInt64LittleEndian(probe.AsSpan(296)) & ExtendedStateGuest.TaintedDr7);
    }

    /// <summary>
    /// Sets through the vCPU what the guest cannot set on a kvm_pvm host: MXCSR, the upper YMM halves (with AVX) and
    /// event state (NMIs masked, an interrupt shadow).
    /// </summary>
    private static void Plant(Vcpu vcpu, bool avx)
    {
        byte[] xsave = vcpu.GetXsave();
        BinaryPrimitives.WriteUInt32LittleEndian(xsave.AsSpan(XsaveMxcsr), PlantedMxcsr);
        if (avx)
        {
            ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(xsave.AsSpan(XsaveXstateBv));
            BinaryPrimitives.WriteUInt64LittleEndian(xsave.AsSpan(XsaveXstateBv), bv | 0b110);
            xsave.AsSpan(XsaveYmmHigh, 256).Fill(0xA5);
        }
        vcpu.SetXsave(xsave);
        kvm_vcpu_events events = vcpu.GetEvents();
        events.nmi_masked = 1;
        events.interrupt_shadow = 1;
        events.flags |= KvmVcpuEvents.KVM_VCPUEVENT_VALID_SHADOW;
        vcpu.SetEvents(events);
    }

    /// <summary>A micro-VM that never ran: its vCPU state and what the probe reads.</summary>
    private static (string State, byte[] Probe) Fresh(MicroVmOptions options)
    {
        using var vm = MicroVm.Create(ExtendedStateGuest.Image(), options);
        string state = Describe(ExtendedVcpuState.Capture(vm.Vcpu));
        return (state, Call(vm, "probe"));
    }


    private static byte[] Call(MicroVm vm, string name, params ReadOnlySpan<ulong> args)
    {
        CallResult r = vm.Call(name, args);
        Assert.True(r.IsSuccess, r.ToString());
        return r.Output.ToArray();
    }

    /// <summary>Every byte of the state, printed so that a difference shows where it is.</summary>
    private static string Describe(ExtendedVcpuState s)
    {
        kvm_debugregs d = s.DebugRegs;
        kvm_vcpu_events e = s.Events;
        return $"FPU {Convert.ToHexString(s.Fpu)}\nXCR0 {s.Xcr0:X}\nDEBUGREGS {Convert.ToHexString(MemoryMarshal.AsBytes(new Span<kvm_debugregs>(ref d)))}\n" +
            $"EVENTS {Convert.ToHexString(MemoryMarshal.AsBytes(new Span<kvm_vcpu_events>(ref e)))}";
    }
}
