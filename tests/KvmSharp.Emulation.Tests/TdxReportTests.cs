// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Abi.TdxGhci;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A TD's measurement and attestation on the emulated TDX module: MRTD accumulated by KVM_TDX_INIT_MEM_REGION
/// (TDH.MEM.PAGE.ADD + TDH.MR.EXTEND per 256 bytes with KVM_TDX_MEASURE_MEMORY_REGION) and finalized by
/// KVM_TDX_FINALIZE_VM (Arch/X86/TdxMeasurement.cs), MRCONFIGID/MROWNER/MROWNERCONFIG from KVM_TDX_INIT_VM,
/// TDG.MR.RTMR.EXTEND and TDG.MR.REPORT (X86/Emulate/X86Emulator.TdxReport.cs) with the TDREPORT_STRUCT layout of
/// intel/tdx-module include/tdx_api_defs.h (Arch/X86/TdxReport.cs), handed to the host with TDG.VP.VMCALL&lt;GetQuote&gt;
/// as Linux's tdx-guest driver does; the host reads it with <see cref="TdxAttestationInspection"/>.
/// </summary>
public sealed class TdxReportTests
{
    private const int TdgMrRtmrExtend = 2, TdgMrReport = 4;
    private const ulong TdxOperandInvalid = 0xC000_0100_0000_0000;
    private const ulong ReportGpa = 0x8000, ReportDataGpa = 0x8400, ExtendGpa = 0x8440;
    private const ulong Page = 0x1000;

    private static EmulatedKernel NewKernel() => new(EmulatorConfig.X86_64());

    private static ulong ReportDataWord(int i) => 0xA5A5_0000_0000_0000UL + (uint)(i + 1);

    private static ulong ExtendWord(int i) => 0x0102_0304_0506_0700UL + (ulong)i;

    /// <summary>The SHA-384 chain the TDX module builds for MRTD: per page "MEM.PAGE.ADD", then 16 × ("MR.EXTEND", 256 bytes).</summary>
    private static void MeasurePage(IncrementalHash sha, ulong gpa, ReadOnlySpan<byte> contents, bool extend)
    {
        sha.AppendData(Block("MEM.PAGE.ADD", gpa));
        if (!extend) return;
        for (int i = 0; i < contents.Length; i += 256)
        {
            sha.AppendData(Block("MR.EXTEND", gpa + (ulong)i));
            sha.AppendData(contents.Slice(i, 256));
        }
    }

    private static byte[] Block(string name, ulong gpa)
    {
        var b = new byte[128];
        System.Text.Encoding.ASCII.GetBytes(name).CopyTo(b, 0);
        BitConverter.TryWriteBytes(b.AsSpan(16), gpa);
        return b;
    }

    [Fact]
    public void A_td_extends_rtmr2_and_gets_a_report_whose_mrtd_rtmr_reportdata_and_mac_the_host_verifies()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            a.mov(rbx, ReportDataGpa);
            for (int i = 0; i < 8; i++)
            {
                a.mov(rax, ReportDataWord(i));
                a.mov(__qword_ptr[rbx + 8 * i], rax);
            }
            a.mov(rbx, ExtendGpa);
            for (int i = 0; i < 6; i++)
            {
                a.mov(rax, ExtendWord(i));
                a.mov(__qword_ptr[rbx + 8 * i], rax);
            }
            // TDG.MR.RTMR.EXTEND: RTMR2 once; then index 4, a misaligned and a shared buffer fail without extending.
            Call(a, TdgMrRtmrExtend, ExtendGpa, 2);
            Call(a, TdgMrRtmrExtend, ExtendGpa, 4);
            Call(a, TdgMrRtmrExtend, ExtendGpa + 8, 2);
            Call(a, TdgMrRtmrExtend, ExtendGpa | TdGuest.SharedBit, 2);
            // TDG.MR.REPORT: a misaligned report, misaligned REPORTDATA, sub-type 1, then the report.
            Call(a, TdgMrReport, ReportGpa + 0x200, ReportDataGpa, 0);
            Call(a, TdgMrReport, ReportGpa, ReportDataGpa + 0x20, 0);
            Call(a, TdgMrReport, ReportGpa, ReportDataGpa, 1);
            Call(a, TdgMrReport, ReportGpa, ReportDataGpa, 0);
            // tdx-guest.c tdx_report_new_locked → tdx_get_quote: TDG.VP.VMCALL<GetQuote> with a shared GPA.
            TdGuest.Vmcall(a, TDVMCALL_GET_QUOTE, ReportGpa | TdGuest.SharedBit, Page);
            TdGuest.Report(a, r10);
            TdTestCode.SpinForever(a);
        });

        // The pages KVM_TDX_INIT_MEM_REGION added (TdGuest: 15 measured pages from 0x1000, then the boot page), as the
        // TD starts with them: the host's own MRTD chain.
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA384);
        var page = new byte[Page];
        for (ulong gpa = TdGuest.Pml4; gpa < TdGuest.Size; gpa += Page)
        {
            Assert.Equal(0, TdxAttestationInspection.ReadPrivate(k, td.Vm.Handle, gpa, page));
            MeasurePage(sha, gpa, page, extend: true);
        }
        Assert.Equal(0, TdxAttestationInspection.ReadPrivate(k, td.Vm.Handle, TdGuest.BootPage, page));
        MeasurePage(sha, TdGuest.BootPage, page, extend: true);
        byte[] mrtd = sha.GetHashAndReset();

        Assert.Equal(0UL, td.RunToReport());
        Assert.Equal(TdxOperandInvalid | 2, td.RunToReport());  // RTMR index 4: operand RDX
        Assert.Equal(TdxOperandInvalid | 1, td.RunToReport());  // not 64-byte aligned: RCX
        Assert.Equal(TdxOperandInvalid | 1, td.RunToReport());  // shared GPA (PRIVATE_ONLY): RCX
        Assert.Equal(TdxOperandInvalid | 1, td.RunToReport());  // TDREPORT not 1024-byte aligned: RCX
        Assert.Equal(TdxOperandInvalid | 2, td.RunToReport());  // REPORTDATA not 64-byte aligned: RDX
        Assert.Equal(TdxOperandInvalid | 8, td.RunToReport());  // sub-type 1: R8
        Assert.Equal(0UL, td.RunToReport());

        var exit = td.Vcpu.RunBounded();
        Assert.Equal((KvmExitReason.KVM_EXIT_TDX, TDVMCALL_GET_QUOTE, (ReportGpa, Page)), (exit.Reason, exit.TdxCall, exit.TdxGetQuote));
        var report = new byte[1024];
        Assert.Equal(0, TdxAttestationInspection.ReadPrivate(k, td.Vm.Handle, exit.TdxGetQuote.Gpa, report));

        // REPORTTYPE: TDX (0x81), sub-type 0, version 0.
        Assert.Equal(new byte[] { 0x81, 0, 0, 0 }, report[..4]);
        // REPORTDATA at 128.
        for (int i = 0; i < 8; i++) Assert.Equal(ReportDataWord(i), BitConverter.ToUInt64(report, 128 + 8 * i));
        // TDINFO at 512: ATTRIBUTES 0, XFAM with x87 and SSE, MRTD, MRCONFIGID/MROWNER/MROWNERCONFIG zero (none given).
        Assert.Equal(0UL, BitConverter.ToUInt64(report, 512));
        Assert.Equal(3UL, BitConverter.ToUInt64(report, 520) & 3);
        Assert.Equal(mrtd, report[528..576]);
        Assert.All(report[576..720], b => Assert.Equal(0, b));
        // RTMR2 = SHA-384(48 zero bytes || the extension); RTMR0, 1, 3 stay zero.
        var extension = new byte[48];
        for (int i = 0; i < 6; i++) BitConverter.TryWriteBytes(extension.AsSpan(8 * i), ExtendWord(i));
        byte[] rtmr2 = SHA384.HashData([.. new byte[48], .. extension]);
        Assert.Equal(rtmr2, report[816..864]);
        Assert.All(report[720..816], b => Assert.Equal(0, b));
        Assert.All(report[864..912], b => Assert.Equal(0, b));
        // TEE_INFO_HASH (80) = SHA-384(TDINFO); TEE_TCB_INFO_HASH (32) = SHA-384(TEE_TCB_INFO at 256, 239 bytes).
        Assert.Equal(SHA384.HashData(report.AsSpan(512, 512)), report[80..128]);
        Assert.Equal(SHA384.HashData(report.AsSpan(256, 239)), report[32..80]);
        // The MAC: this platform's, and any change to REPORTMACSTRUCT or TDINFO breaks it.
        Assert.True(TdxAttestationInspection.VerifyReport(k, report));
        var forged = report.ToArray();
        forged[128] ^= 1;
        Assert.False(TdxAttestationInspection.VerifyReport(k, forged));
        forged = report.ToArray();
        forged[530] ^= 1;
        Assert.False(TdxAttestationInspection.VerifyReport(k, forged));
        using (var other = NewKernel()) Assert.False(TdxAttestationInspection.VerifyReport(other, report));

        // The TDCS agrees with the report.
        Assert.Equal(0, TdxAttestationInspection.Measurements(k, td.Vm.Handle, out var m));
        Assert.Equal(mrtd, m!.Mrtd);
        Assert.Equal(rtmr2, m.Rtmr[2]);

        exit.TdxReturn = TDVMCALL_STATUS_SUCCESS;
        Assert.Equal(TDVMCALL_STATUS_SUCCESS, td.RunToReport());
    }

    /// <summary>TDCALL <paramref name="leaf"/> with RCX, RDX and R8 set, then a report of RAX.</summary>
    private static void Call(Assembler a, int leaf, ulong rcxValue, ulong rdxValue, ulong r8Value = 0)
    {
        a.mov(rcx, rcxValue);
        a.mov(rdx, rdxValue);
        a.mov(r8, r8Value);
        a.mov(eax, leaf);
        a.tdcall();
        TdGuest.Report(a, rax);
    }

    [Fact]
    public void A_report_into_a_pending_page_is_a_write_ept_violation_ve_without_gla_and_succeeds_once_accepted()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            Call(a, TdgMrReport, TdGuest.UnacceptedPage, ReportDataGpa, 0);
            TdTestCode.SpinForever(a);
            a.Label(ref ve);
            AssemblerRegister64[] saved = [rax, rcx, rdx, r8, r9, r10];
            foreach (var r in saved) a.push(r);
            TdTestCode.ReportVeInfo(a, rcx, rdx, r8, r9);
            a.mov(rcx, r9);
            a.mov(eax, TdGuest.TdgMemPageAccept);
            a.tdcall();
            for (int i = saved.Length - 1; i >= 0; i--) a.pop(saved[i]);
            a.iretq(); // the TDCALL again
        });
        // check_walk_and_map_guest_side_gpa: EXIT_REASON_EPT_VIOLATION, qualification = write access only (no GLA), the GPA.
        Assert.Equal([48UL, 2UL, 0UL, TdGuest.UnacceptedPage], Enumerable.Range(0, 4).Select(_ => td.RunToReport()));
        Assert.Equal(0UL, td.RunToReport());
        var report = new byte[1024];
        Assert.Equal(0, TdxAttestationInspection.ReadPrivate(k, td.Vm.Handle, TdGuest.UnacceptedPage, report));
        Assert.Equal(0x81, report[0]);
        Assert.True(TdxAttestationInspection.VerifyReport(k, report));
    }

    [Fact]
    public void Init_vm_ids_are_kept_and_mrtd_is_finalized_from_added_pages_measured_or_not()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = kvm.CreateVm(VmType.Tdx);
        vm.EnableSplitIrqchip(24);
        var launch = new TdxLaunch(vm);
        byte[] configId = [.. Enumerable.Range(1, 48).Select(i => (byte)i)];
        byte[] owner = [.. Enumerable.Range(0x40, 48).Select(i => (byte)i)];
        byte[] ownerConfig = [.. Enumerable.Range(0x80, 48).Select(i => (byte)i)];
        launch.InitVm(launch.GetCapabilities().CpuidWithGpaw(48), mrConfigId: configId, mrOwner: owner, mrOwnerConfig: ownerConfig);
        const ulong Gpa = 0x10_0000;
        using var gmem = vm.CreateGuestMemfd(2 * Page);
        using var slot = vm.AddGuestMemfdSlot(0, Gpa, 2 * Page, gmem);
        vm.SetMemoryAttributes(Gpa, 2 * Page, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        using var vcpu = vm.CreateVcpu(0);
        vcpu.SetCpuid(kvm.GetSupportedCpuid());
        launch.InitVcpu(vcpu);
        var image = new PinnedArray<byte>((int)Page, (int)Page);
        for (int i = 0; i < image.Span.Length; i++) image.Span[i] = (byte)(i * 7);
        launch.InitMemRegion(vcpu, Gpa, (nint)image.Address, 1, measure: true);
        launch.InitMemRegion(vcpu, Gpa + Page, (nint)image.Address, 1, measure: false);

        Assert.Equal(0, TdxAttestationInspection.Measurements(k, vm.Handle, out var before));
        Assert.Equal(configId, before!.MrConfigId);
        Assert.Equal(owner, before.MrOwner);
        Assert.Equal(ownerConfig, before.MrOwnerConfig);
        Assert.Equal(new byte[48], before.Mrtd); // TDH.MR.FINALIZE not yet
        Assert.All(before.Rtmr, r => Assert.Equal(new byte[48], r));

        launch.FinalizeVm();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA384);
        MeasurePage(sha, Gpa, image.Span, extend: true);
        MeasurePage(sha, Gpa + Page, image.Span, extend: false); // without KVM_TDX_MEASURE_MEMORY_REGION: MEM.PAGE.ADD only
        Assert.Equal(0, TdxAttestationInspection.Measurements(k, vm.Handle, out var after));
        Assert.Equal(sha.GetHashAndReset(), after!.Mrtd);

        // The inspection API's refusals: a shared GPA or a range across a page (EINVAL), a page the TD has not mapped
        // (EFAULT), a VM that is not a TD (EINVAL), a report of the wrong size (not verified).
        var buffer = new byte[64];
        Assert.Equal(0, TdxAttestationInspection.ReadPrivate(k, vm.Handle, Gpa + 64, buffer));
        Assert.Equal(image.Span.Slice(64, 64).ToArray(), buffer);
        Assert.Equal(-(long)Errno.EINVAL, TdxAttestationInspection.ReadPrivate(k, vm.Handle, Gpa | TdGuest.SharedBit, buffer));
        Assert.Equal(-(long)Errno.EINVAL, TdxAttestationInspection.ReadPrivate(k, vm.Handle, Gpa + Page - 32, buffer));
        Assert.Equal(-(long)Errno.EFAULT, TdxAttestationInspection.ReadPrivate(k, vm.Handle, Gpa + 2 * Page, buffer));
        using (var plain = kvm.CreateVm())
            Assert.Equal(-(long)Errno.EINVAL, TdxAttestationInspection.ReadPrivate(k, plain.Handle, Gpa, buffer));
        Assert.False(TdxAttestationInspection.VerifyReport(k, new byte[512]));
        GC.KeepAlive(image);
    }
}
