// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SNP AP creation through the GHCB (emulator only: this host has no SEV): SVM_VMGEXIT_AP_CREATION gives vCPU
/// sw_exit_info_1[63:32] the VMSA at sw_exit_info_2, which it runs from at its next entry
/// (arch/x86/kvm/svm/sev.c sev_snp_ap_creation, sev_snp_init_protected_guest_state;
/// src/KvmSharp.Emulation/X86/Emulate/X86Emulator.GhcbApCreation.cs).
/// </summary>
public sealed class GhcbApCreationTests
{
    private const ulong GhcbLinear = SevEsGuest.SharedAlias + SevEsGuest.Ghcb;
    private const ulong ReportLinear = SevEsGuest.SharedAlias + SevEsGuest.Report;
    private const int Rax = 0x1f8, Info1 = 0x398, Info2 = 0x3a0;

    /// <summary>The new VMSA: a private page of the launch image (not 2 MiB aligned).</summary>
    private const ulong VmsaGpa = 0x8000;

    /// <summary>SVM_SEV_FEAT_SNP_ACTIVE: an SNP VM's vmsa_features with KVM_SEV_INIT2's default of 0.</summary>
    private const ulong SnpActive = 1;

    private static void SetGhcb(Assembler a, int offset, ulong value) => SevEsGuest.SetGhcb(a, offset, value);

    /// <summary>GHCB_MSR_REG_GPA_REQ for the GHCB.</summary>
    private static void RegisterGhcb(Assembler a)
    {
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb | 0x012);
        SevEsGuest.Vmgexit(a);
    }

    /// <summary>An AP creation request; sw_exit_info_1/2 afterwards to report[2 n] / [2 n + 1].</summary>
    private static void ApCreation(Assembler a, uint request, uint apicId, ulong vmsa, ulong? features, int n)
    {
        SetGhcb(a, Rax, features ?? 0);
        SevEsGuest.GhcbRequest(a, 0x8000_0013, ((ulong)apicId << 32) | request, vmsa, validLow: features is null ? 0 : 1UL << (Rax / 8));
        ReportExitInfo(a, n);
    }

    /// <summary>sw_exit_info_1/2 to report[2 n] / [2 n + 1] (RAX, RBX, RCX clobbered).</summary>
    private static void ReportExitInfo(Assembler a, int n)
    {
        a.mov(rbx, (long)GhcbLinear);
        a.mov(rax, __qword_ptr[rbx + Info1]);
        a.mov(rcx, (long)ReportLinear);
        a.mov(__qword_ptr[rcx + 16 * n], rax);
        a.mov(rax, __qword_ptr[rbx + Info2]);
        a.mov(__qword_ptr[rcx + 16 * n + 8], rax);
    }

    /// <summary>struct vmcb_seg at <paramref name="at"/>: selector, the VMCB's packed attributes, limit, base.</summary>
    private static void VmcbSeg(Span<byte> vmsa, int at, kvm_segment s)
    {
        int attrib = s.type | (s.s << 4) | (s.dpl << 5) | (s.present << 7) | (s.avl << 8) | (s.l << 9) | (s.db << 10) | (s.g << 11);
        BinaryPrimitives.WriteUInt16LittleEndian(vmsa[at..], s.selector);
        BinaryPrimitives.WriteUInt16LittleEndian(vmsa[(at + 2)..], (ushort)attrib);
        BinaryPrimitives.WriteUInt32LittleEndian(vmsa[(at + 4)..], s.limit);
        BinaryPrimitives.WriteUInt64LittleEndian(vmsa[(at + 8)..], s.@base);
    }

    /// <summary>
    /// A 64-bit AP's struct sev_es_save_area (arch/x86/include/asm/svm.h): the guest's long-mode segments, GDTR, IDTR,
    /// CR0/3/4, EFER, RFLAGS 2, RIP = <see cref="SevEsGuest.ApCode"/>, RSP 0x8700, RAX/RBX/R15 markers.
    /// </summary>
    private static void WriteVmsa(byte[] image)
    {
        var v = image.AsSpan((int)VmsaGpa, 0x1000);
        v.Clear();
        var sregs = default(kvm_sregs);
        LongMode.Apply(ref sregs);
        VmcbSeg(v, 0x00, sregs.es);
        VmcbSeg(v, 0x10, sregs.cs);
        VmcbSeg(v, 0x20, sregs.ss);
        VmcbSeg(v, 0x30, sregs.ds);
        VmcbSeg(v, 0x40, sregs.fs);
        VmcbSeg(v, 0x50, sregs.gs);
        VmcbSeg(v, 0x60, new kvm_segment { limit = sregs.gdt.limit, @base = sregs.gdt.@base });
        VmcbSeg(v, 0x80, new kvm_segment { limit = 32 * 16 - 1, @base = SevEsGuest.Idt });
        Q(v, 0xd0, sregs.efer);
        Q(v, 0x148, sregs.cr4);
        Q(v, 0x150, 0x2000);
        Q(v, 0x158, sregs.cr0);
        Q(v, 0x160, 0x400); // DR7
        Q(v, 0x168, 0xffff0ff0); // DR6
        Q(v, 0x170, 2);
        Q(v, 0x178, SevEsGuest.ApCode);
        Q(v, 0x1d8, 0x8700);
        Q(v, 0x1f8, 0x1234_5678); // RAX
        Q(v, 0x318, 0xabcd); // RBX
        Q(v, 0x378, 0x1515); // R15
        Q(v, 0x3e8, 1); // XCR0
    }

    private static void Q(Span<byte> v, int at, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(v[at..], value);

    /// <summary>The AP: RAX, RBX, R15 and RSP to report[8..11], then termination 0x61.</summary>
    private static void ApReports(Assembler a)
    {
        a.mov(rcx, (long)ReportLinear);
        a.mov(__qword_ptr[rcx + 64], rax);
        a.mov(__qword_ptr[rcx + 72], rbx);
        a.mov(__qword_ptr[rcx + 80], r15);
        a.mov(__qword_ptr[rcx + 88], rsp);
        SevEsGuest.Terminate(a, 0x61);
    }

    private static void AssertTerminated(KvmSharp.Vcpu vcpu, byte code)
    {
        var exit = vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal(0x100 | (1UL << 12) | ((ulong)code << 16), exit.SystemEventData[0]);
    }

    [Fact]
    public void Ap_create_starts_the_target_vcpu_from_the_new_vmsa()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            ApCreation(a, request: 1, apicId: 1, VmsaGpa, SnpActive, n: 0);
            SevEsGuest.Terminate(a, 0x60);
        }, vcpus: 2, apProgram: ApReports, patchImage: WriteVmsa);
        AssertTerminated(g.Vcpu, 0x60);
        Assert.Equal((0UL, 0UL), (g.ReportQword(0), g.ReportQword(1)));
        // The AP was launched with RAX = RBX = R15 = 0 and RSP = ApStackTop: what it reports comes from the VMSA.
        AssertTerminated(g.Vcpus[1], 0x61);
        Assert.Equal((0x1234_5678UL, 0xabcdUL, 0x1515UL, 0x8700UL), (g.ReportQword(8), g.ReportQword(9), g.ReportQword(10), g.ReportQword(11)));
    }

    [Fact]
    public void Ap_create_on_init_takes_the_new_vmsa_at_the_next_init_and_a_sipi_makes_it_runnable()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            ApCreation(a, request: 0, apicId: 1, VmsaGpa, SnpActive, n: 0);
            SevEsGuest.Terminate(a, 0x65);
        }, vcpus: 2, irqchip: true, apProgram: ApReports, patchImage: WriteVmsa);
        AssertTerminated(g.Vcpu, 0x65);
        Assert.Equal((0UL, 0UL), (g.ReportQword(0), g.ReportQword(1)));
        var ap = g.Vcpus[1];
        Assert.Equal(KvmMpState.KVM_MP_STATE_UNINITIALIZED, ap.GetMpState());
        // INIT: kvm_vcpu_reset → svm_vcpu_reset → sev_snp_init_protected_guest_state takes the VMSA; SIPI (the AP's
        // first: no hold answer) → RUNNABLE. The UNINITIALIZED vCPU's KVM_RUN takes them and answers -EAGAIN.
        Assert.Equal(1, g.Vm.SignalMsi(0xFEE0_1000, 5 << 8));
        Assert.Equal(1, g.Vm.SignalMsi(0xFEE0_1000, (6 << 8) | 0x10));
        var ex = Assert.Throws<KvmException>(() => ap.RunBounded());
        Assert.Equal(Errno.EAGAIN, ex.Errno);
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, ap.GetMpState());
        AssertTerminated(ap, 0x61);
        Assert.Equal((0x1234_5678UL, 0xabcdUL, 0x1515UL, 0x8700UL), (g.ReportQword(8), g.ReportQword(9), g.ReportQword(10), g.ReportQword(11)));
    }

    [Fact]
    public void Ap_jump_table_is_set_and_read_back_through_the_ghcb()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            foreach (var (info1, info2, n) in new[] { (0UL, 0x9_f000UL, 0), (1UL, 0UL, 1), (2UL, 0UL, 2) })
            {
                SevEsGuest.GhcbRequest(a, 0x8000_0005, info1, info2);
                ReportExitInfo(a, n);
            }
            SevEsGuest.Terminate(a, 0x66);
        });
        AssertTerminated(g.Vcpu, 0x66);
        // Set: success 0; get: svm_vmgexit_success(svm, sev->ap_jump_table); anything else: GHCB_ERR_INVALID_INPUT.
        Assert.Equal((0UL, 0UL), (g.ReportQword(0), g.ReportQword(1)));
        Assert.Equal((0UL, 0x9_f000UL), (g.ReportQword(2), g.ReportQword(3)));
        Assert.Equal((2UL, 5UL), (g.ReportQword(4), g.ReportQword(5)));
    }

    public static TheoryData<string, uint, uint, ulong, ulong?, ulong> BadRequests => new()
    {
        // what, request, APIC ID, VMSA GPA, RAX (null: not valid), the GHCB_ERR_* in sw_exit_info_2
        { "sev features differ from the vm's", 1, 1, VmsaGpa, 0, 5 },
        { "no vcpu with the apic id", 1, 7, VmsaGpa, SnpActive, 5 },
        { "vmsa gpa not page aligned", 1, 1, VmsaGpa + 8, SnpActive, 5 },
        { "vmsa gpa 2 MiB aligned", 1, 1, 0x20_0000, SnpActive, 5 },
        { "vmsa gpa above maxphyaddr", 1, 1, 1UL << 40 | 0x1000, SnpActive, 5 },
        { "unknown request", 3, 1, VmsaGpa, SnpActive, 5 },
        { "create without rax", 1, 1, VmsaGpa, null, 4 },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public void A_bad_ap_creation_request_is_answered_with_its_ghcb_error(string what, uint request, uint apicId, ulong vmsa, ulong? features, ulong reason)
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            ApCreation(a, request, apicId, vmsa, features, n: 0);
            SevEsGuest.Terminate(a, 0x62);
        }, vcpus: 2, apProgram: ApReports, patchImage: WriteVmsa);
        AssertTerminated(g.Vcpu, 0x62);
        Assert.True((2UL, reason) == (g.ReportQword(0), g.ReportQword(1)), $"{what}: {g.ReportQword(0)}, {g.ReportQword(1)}");
    }

    [Fact]
    public void Ap_creation_is_snp_only()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            ApCreation(a, request: 1, apicId: 1, VmsaGpa, SnpActive, n: 0);
            SevEsGuest.Terminate(a, 0x63);
        }, vcpus: 2);
        AssertTerminated(g.Vcpu, 0x63);
        Assert.Equal((2UL, 4UL), (g.ReportQword(0), g.ReportQword(1))); // sev_es_validate_vmgexit: GHCB_ERR_MISSING_INPUT
    }

    [Fact]
    public void Ap_destroy_leaves_the_target_halted_and_a_forced_kvm_run_is_refused()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            ApCreation(a, request: 1, apicId: 1, VmsaGpa, SnpActive, n: 0);
            ApCreation(a, request: 2, apicId: 1, 0, features: null, n: 1); // AP_DESTROY needs no RAX
            SevEsGuest.Terminate(a, 0x64);
        }, vcpus: 2, irqchip: true, apProgram: ApReports, patchImage: WriteVmsa);
        AssertTerminated(g.Vcpu, 0x64);
        Assert.Equal((0UL, 0UL, 0UL, 0UL), (g.ReportQword(0), g.ReportQword(1), g.ReportQword(2), g.ReportQword(3)));
        var ap = g.Vcpus[1];
        ap.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        // The request takes the VMSA away: mp_state HALTED, and the vCPU waits in KVM_RUN until kicked (a kick that
        // came before KVM_RUN took the request leaves it RUNNABLE: run again).
        SevEsGuest.RunKickedWhileRunnable(ap, "the AP never took the request");
        ap.ImmediateExit = false;
        Assert.Equal(KvmMpState.KVM_MP_STATE_HALTED, ap.GetMpState());
        // pre_sev_run: "Reject KVM_RUN if userspace attempts to run the vCPU with an invalid VMSA".
        ap.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        var ex = Assert.Throws<KvmException>(() => ap.RunBounded());
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(0UL, g.ReportQword(8)); // the AP never ran
    }
}
