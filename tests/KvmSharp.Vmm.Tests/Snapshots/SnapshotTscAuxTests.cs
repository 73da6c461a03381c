// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>
/// Snapshot format version 6 carries what a guest can observe of its TSC besides the count: TSC_AUX (MSR 0xC0000103,
/// RDTSCP's ECX and RDPID) and the TSC rate (KVM_GET_TSC_KHZ, announced in CPUID 0x40000010). A micro-VM created from
/// or restored to a snapshot gives the guest the same values; a rate the kernel refuses (KVM_SET_TSC_KHZ without TSC
/// scaling: more than 250 ppm below the host's is EINVAL) refuses the snapshot. Versions 5 and 4 are still read.
/// </summary>
public sealed class SnapshotTscAuxTests
{
    private const ulong Aux = 0x2A5;

    /// <summary>CPUID.80000001 EDX bit 27: RDTSCP.</summary>
    private const uint Rdtscp = 1u << 27;

    /// <summary>CPUID.7.0 ECX bit 22: RDPID.</summary>
    private const uint Rdpid = 1u << 22;

    private static MicroVmOptions Options(TestKernel k) => k.Options(null);

    /// <summary>Skips where the kernel neither lists TSC_AUX nor reads it for the host (a CPU without RDTSCP/RDPID).</summary>
    private static void SkipUnlessTscAuxReadable(TestKernel k, MicroVm vm)
    {
        Span<MsrEntry> aux = [new(X86Msr.TscAux, 0)];
        Skip.If(vm.Vcpu.GetMsrs(aux) != 1, $"{k}: KVM_GET_MSRS does not read TSC_AUX (no RDTSCP/RDPID on this CPU)");
    }

    /// <summary>
    /// The VMM's view, on both kernels: TSC_AUX set on the vCPU (KVM_SET_MSRS, as a VMM sets it to the vCPU number) is
    /// in the snapshot, a micro-VM created from it and one restored to it hold it, and a reset puts a new vCPU's 0 back.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_snapshot_carries_tsc_aux_into_create_and_restore_and_reset_clears_it(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(TscGuest.Image(), Options(k));
        SkipUnlessTscAuxReadable(k, vm);
        Assert.Equal(0UL, vm.Vcpu.GetMsr(X86Msr.TscAux)); // a new vCPU's
        vm.Vcpu.SetMsr(X86Msr.TscAux, Aux);
        MicroVmSnapshot snapshot = SnapshotSamples.Read(SnapshotSamples.Bytes(vm.Snapshot()));
        Assert.Equal(Aux, snapshot.TscAux);
        Assert.Contains(new MsrEntry(X86Msr.TscAux, Aux), snapshot.Msrs);

        using (var copy = MicroVm.Create(snapshot, Options(k))) Assert.Equal(Aux, copy.Vcpu.GetMsr(X86Msr.TscAux));

        using var other = MicroVm.Create(TscGuest.Image(), Options(k));
        other.Vcpu.SetMsr(X86Msr.TscAux, 7);
        other.Restore(snapshot);
        Assert.Equal(Aux, other.Vcpu.GetMsr(X86Msr.TscAux));
        other.Reset();
        Assert.Equal(0UL, other.Vcpu.GetMsr(X86Msr.TscAux));
    }

    /// <summary>
    /// The guest's view: it sets TSC_AUX (WRMSR) and reads it with RDTSCP and RDPID before the snapshot, in a micro-VM
    /// created from it and in one restored to it. Needs a kernel that offers RDTSCP and RDPID in its supported CPUID.
    /// Neither kernel here does: kvm_pvm's KVM_GET_SUPPORTED_CPUID has neither bit (probed: 0x80000001 EDX 0x23D3FBFF,
    /// 7.0 ECX 0x604; the guest's RDPID is #UD, RDTSCP ends in KVM_EXIT_INTERNAL_ERROR suberror 1, RDMSR/WRMSR of
    /// TSC_AUX #GP: HostDeviations.KvmPvmWithoutTscAuxInstructions), and the emulator's table mirrors it (its interpreter
    /// runs both when a guest's CPUID offers them: tests/KvmSharp.Emulation.Tests/TscAuxTests.cs).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_restored_guest_reads_with_rdtscp_and_rdpid_the_tsc_aux_it_set_before_the_snapshot(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(TscGuest.Image(), Options(k));
        uint extEdx = (uint)GuestRun.Value(vm, "cpuid_edx", 0x8000_0001);
        uint leaf7Ecx = (uint)GuestRun.Value(vm, "cpuid_ecx", 7);
        Skip.If((extEdx & Rdtscp) == 0 || (leaf7Ecx & Rdpid) == 0,
            $"{k}: the guest's CPUID offers {((extEdx & Rdtscp) == 0 ? "no RDTSCP" : "RDTSCP")} and {((leaf7Ecx & Rdpid) == 0 ? "no RDPID" : "RDPID")} (KVM_GET_SUPPORTED_CPUID; kvm_pvm offers neither)");

        Assert.Equal(0UL, GuestRun.Value(vm, "wrmsr", X86Msr.TscAux, Aux));
        Assert.Equal((Aux, Aux), (GuestRun.Value(vm, "rdtscp"), GuestRun.Value(vm, "rdpid")));
        MicroVmSnapshot snapshot = SnapshotSamples.Read(SnapshotSamples.Bytes(vm.Snapshot()));
        using (var copy = MicroVm.Create(snapshot, Options(k)))
            Assert.Equal((Aux, Aux), (GuestRun.Value(copy, "rdtscp"), GuestRun.Value(copy, "rdpid")));
        using var other = MicroVm.Create(TscGuest.Image(), Options(k));
        Assert.Equal(0UL, GuestRun.Value(other, "wrmsr", X86Msr.TscAux, 7));
        other.Restore(snapshot);
        Assert.Equal((Aux, Aux), (GuestRun.Value(other, "rdtscp"), GuestRun.Value(other, "rdpid")));
    }

    /// <summary>
    /// What a guest of this host observes instead, pinned so that a kernel that starts offering the instructions is
    /// noticed: without RDTSCP/RDPID in its CPUID, RDPID is #UD and an access to TSC_AUX #GP (x86.c __kvm_set_msr /
    /// svm_get_msr: "!guest_cpu_cap_has(vcpu, X86_FEATURE_RDTSCP) &amp;&amp; !guest_cpu_cap_has(vcpu, X86_FEATURE_RDPID)"),
    /// and RDTSCP does not run: #UD upstream (svm.c: the RDTSCP intercept with the feature absent), KVM_EXIT_INTERNAL_ERROR
    /// on kvm_pvm, whose instruction emulator takes the intercept and has no RDTSCP.
    /// </summary>
    [SkippableFact]
    public void Without_rdtscp_and_rdpid_in_its_cpuid_a_guest_cannot_observe_tsc_aux()
    {
        using var k = TestKernel.Real();
        using var vm = MicroVm.Create(TscGuest.Image(), Options(k));
        uint extEdx = (uint)GuestRun.Value(vm, "cpuid_edx", 0x8000_0001);
        uint leaf7Ecx = (uint)GuestRun.Value(vm, "cpuid_ecx", 7);
        Skip.If((extEdx & Rdtscp) != 0 || (leaf7Ecx & Rdpid) != 0, $"{k}: the guest's CPUID offers RDTSCP or RDPID");
        vm.Vcpu.SetMsr(X86Msr.TscAux, Aux); // set by the host: still not the guest's to see

        CallResult rdpid = vm.Call("rdpid");
        Assert.Equal((GuestOutcome.Exception, 6), (rdpid.Outcome, rdpid.Exception!.Vector)); // #UD
        vm.Reset();
        CallResult rdmsr = vm.Call("rdmsr", X86Msr.TscAux);
        Assert.Equal((GuestOutcome.Exception, 13), (rdmsr.Outcome, rdmsr.Exception!.Vector)); // #GP
        vm.Reset();
        CallResult rdtscp = vm.Call("rdtscp");
        Assert.True(rdtscp.Outcome is GuestOutcome.InternalError || rdtscp is { Outcome: GuestOutcome.Exception, Exception.Vector: 6 },
            $"RDTSCP without the CPUID bit: {rdtscp}");
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_snapshot_carries_the_tsc_rate_its_guest_was_told(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(TscGuest.Image(), Options(k));
        uint own = vm.Vcpu.TscKhz;
        Assert.Equal(own, (uint)GuestRun.Value(vm, "cpuid", GuestCpuid.TimingLeaf));
        MicroVmSnapshot snapshot = SnapshotSamples.Read(SnapshotSamples.Bytes(vm.Snapshot()));
        Assert.Equal(own, snapshot.TscKhz);

        using var copy = MicroVm.Create(snapshot, Options(k));
        Assert.Equal(own, copy.Vcpu.TscKhz);
        Assert.Equal(own, (uint)GuestRun.Value(copy, "cpuid", GuestCpuid.TimingLeaf));
        copy.Restore(snapshot); // the same rate: taken
    }

    /// <summary>
    /// A snapshot of a vCPU that ran faster than this host (here: the file's rate raised by 1 000 kHz) creates a micro-VM
    /// whose vCPU has that rate and whose CPUID says so — without TSC scaling the kernel takes a higher rate (and
    /// catches the guest's TSC up at clock updates, x86.c set_tsc_khz) — while one at half the host's rate is refused
    /// (EINVAL). Restoring a snapshot of another rate into an existing micro-VM is refused: its CPUID already spoke.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_snapshot_of_another_tsc_rate_gets_it_or_is_refused_with_the_reason(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(TscGuest.Image(), Options(k));
        uint own = vm.Vcpu.TscKhz;
        Skip.If(vm.Vcpu.Vm.SupportsTscScaling, $"{k} scales the TSC: every rate is taken");
        byte[] bytes = SnapshotSamples.Bytes(vm.Snapshot());

        MicroVmSnapshot faster = SnapshotSamples.Read(SnapshotSamples.WithTscKhz(bytes, own + 1000));
        Assert.Equal(own + 1000, faster.TscKhz);
        using (var copy = MicroVm.Create(faster, Options(k)))
        {
            Assert.Equal(own + 1000, copy.Vcpu.TscKhz);
            Assert.Equal(own + 1000, (uint)GuestRun.Value(copy, "cpuid", GuestCpuid.TimingLeaf));
        }
        var e = Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(faster));
        Assert.Equal(SnapshotRefusal.TscRateRefused, e.Reason);
        Assert.Contains("create a micro-VM from the snapshot instead", e.Message, StringComparison.Ordinal);
        Assert.Equal(own, (uint)GuestRun.Value(vm, "cpuid", GuestCpuid.TimingLeaf)); // nothing changed

        MicroVmSnapshot slower = SnapshotSamples.Read(SnapshotSamples.WithTscKhz(bytes, own / 2));
        e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(slower, Options(k)));
        Assert.Equal(SnapshotRefusal.TscRateRefused, e.Reason);
        Assert.Contains("EINVAL", e.Message, StringComparison.Ordinal);

        // A fresh micro-VM afterwards still gets this host's rate (the CPUID table kept per Kvm is not the snapshot's).
        using var fresh = MicroVm.Create(TscGuest.Image(), Options(k));
        Assert.Equal(own, (uint)GuestRun.Value(fresh, "cpuid", GuestCpuid.TimingLeaf));
    }

    /// <summary>
    /// The emulated kernel's TSC runs at 1 GHz, this host's faster: a snapshot taken on the emulator is refused here by
    /// default, and runs at this host's rate (announced in CPUID) with <see cref="MicroVmOptions.RequireSnapshotTscRate"/> false.
    /// </summary>
    [SkippableFact]
    public void A_slower_snapshot_from_the_emulator_is_refused_on_the_real_kernel_unless_the_rate_is_not_required()
    {
        using var real = TestKernel.Real();
        using var emulated = TestKernel.Emulated();
        byte[] bytes;
        uint emulatedKhz;
        using (var source = MicroVm.Create(TscGuest.Image(), Options(emulated)))
        {
            emulatedKhz = source.Vcpu.TscKhz;
            bytes = SnapshotSamples.Bytes(source.Snapshot());
        }
        using var probe = MicroVm.Create(TscGuest.Image(), Options(real));
        uint realKhz = probe.Vcpu.TscKhz;
        Skip.IfNot(emulatedKhz < realKhz - (realKhz / 4000) && !probe.Vcpu.Vm.SupportsTscScaling,
            $"the emulator's TSC rate ({emulatedKhz} kHz) is one this host ({realKhz} kHz) takes");
        MicroVmSnapshot snapshot = SnapshotSamples.Read(bytes);
        var e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(snapshot, Options(real)));
        Assert.Equal(SnapshotRefusal.TscRateRefused, e.Reason);
        using var kept = MicroVm.Create(snapshot, Options(real) with { RequireSnapshotTscRate = false });
        Assert.Equal(realKhz, kept.Vcpu.TscKhz);
        Assert.Equal(realKhz, (uint)GuestRun.Value(kept, "cpuid", GuestCpuid.TimingLeaf));
    }

    [Fact]
    public void A_version_5_file_is_still_read_without_tsc_aux_and_rate()
    {
        using var k = TestKernel.Emulated();
        using var vm = MicroVm.Create(TscGuest.Image(), Options(k));
        vm.Vcpu.SetMsr(X86Msr.TscAux, Aux);
        byte[] v6 = SnapshotSamples.Bytes(vm.Snapshot());
        Assert.Equal(SnapshotFormat.Version, BinaryPrimitives.ReadUInt32LittleEndian(v6.AsSpan(8)));
        MicroVmSnapshot current = SnapshotSamples.Read(v6);
        Assert.Equal(Aux, current.TscAux);

        MicroVmSnapshot old = SnapshotSamples.Read(SnapshotSamples.Downgrade(v6, 5));
        Assert.Equal((0u, 0UL, current.Tsc), (old.TscKhz, old.TscAux, old.Tsc));
        Assert.Equal(current.Msrs.Where(m => m.Index != X86Msr.TscAux), old.Msrs);
        using (var copy = MicroVm.Create(old, Options(k)))
        {
            Assert.Equal(0UL, copy.Vcpu.GetMsr(X86Msr.TscAux)); // what version 5 restored
            Assert.Equal(vm.Vcpu.TscKhz, copy.Vcpu.TscKhz);      // unknown: the new vCPU's own
        }
        // Written again it is a current (version 7) file with rate 0 (unknown) and no TSC_AUX: what it restored before, it restores now.
        byte[] rewritten = SnapshotSamples.Bytes(old);
        Assert.Equal(SnapshotFormat.Version, BinaryPrimitives.ReadUInt32LittleEndian(rewritten.AsSpan(8)));
        Assert.Equal(0u, SnapshotSamples.Read(rewritten).TscKhz);

        // A version 5 file cannot hold TSC_AUX: one that does is refused at the MSR.
        byte[] forged = SnapshotSamples.Downgrade(v6, 5, keepTscAux: true);
        var e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(forged));
        Assert.Equal(SnapshotFormatError.InvalidField, e.Error);
        Assert.True(e.Message.Contains("TSC_AUX", StringComparison.Ordinal), e.Message);
    }
}
