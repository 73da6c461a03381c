// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Diagnostics;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;
using T = KvmSharp.Emulation.Tests.SnpGuestRequestTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SNP Secure TSC on the emulator (this host has no SEV): arch/x86/kvm/svm/sev.c as "KVM: SVM: Enable Secure TSC for
/// SNP guests" (merged for 6.18) has it — SVM_SEV_FEAT_SECURE_TSC in KVM_X86_SEV_VMSA_FEATURES and KVM_SEV_INIT2 (SNP
/// VMs only), the VM's KVM_SET_TSC_KHZ as SNP_LAUNCH_START's DESIRED_TSC_FREQ, guest_tsc_protected vCPUs, GUEST_TSC_FREQ
/// reads not intercepted — and the modelled PSP's MSG_TSC_INFO_REQ (SnpTscInfo; the guest side is
/// arch/x86/coco/sev/core.c snp_get_tsc_info).
/// </summary>
public sealed class SnpSecureTscTests
{
    private const uint InvalidParam = 0x16;
    private const ulong SvmExitMsr = 0x7c;
    private const ulong Out = SevEsGuest.Report + 0x40;

    private static EmulatedKernel Kernel(params uint[] types) =>
        new(types.Length == 0 ? EmulatorConfig.X86_64() : EmulatorConfig.X86_64() with { VmTypes = new HashSet<uint>(types) });

    [Fact]
    public void Secure_tsc_is_offered_for_snp_and_init2_takes_it_only_for_an_snp_vm_before_any_vcpu()
    {
        using (var k = Kernel())
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        {
            // sev_hardware_setup: SECURE_TSC with sev_snp_enabled, tsc_khz and X86_FEATURE_SNP_SECURE_TSC.
            Assert.Equal(SnpLaunch.VmsaFeatureSecureTsc, SnpLaunch.SupportedVmsaFeatures(kvm) & SnpLaunch.VmsaFeatureSecureTsc);
            // __sev_guest_init: "if (!snp_active) valid_vmsa_features &= ~SVM_SEV_FEAT_SECURE_TSC" — SEV-ES: EINVAL;
            // plain SEV accepts no vmsa_features at all.
            foreach (var type in new[] { VmType.SevEs, VmType.Sev })
            {
                using var vm = kvm.CreateVm(type);
                using var launch = SevLaunch.Open(vm);
                var ex = Assert.Throws<SevCommandException>(() => launch.Init(vmsaFeatures: SnpLaunch.VmsaFeatureSecureTsc));
                Assert.Equal(Errno.EINVAL, ex.Errno);
                launch.Init(); // the failed INIT2 left need_init set
            }
            // SNP: refused once a vCPU exists ("if (kvm->created_vcpus) return -EINVAL"), taken before.
            using (var vm = kvm.CreateVm(VmType.Snp))
            using (var launch = SnpLaunch.Open(vm))
            using (vm.CreateVcpu())
                Assert.Equal(Errno.EINVAL, Assert.Throws<SevCommandException>(() => launch.InitSecureTsc()).Errno);
            using (var vm = kvm.CreateVm(VmType.Snp))
            using (var launch = SnpLaunch.Open(vm))
                launch.InitSecureTsc();
        }
        // A host without SNP (SEV and SEV-ES VM types only): sev_snp_enabled is false, the bit is not offered.
        using (var k = Kernel(KvmConstants.KVM_X86_DEFAULT_VM, KvmConstants.KVM_X86_SEV_VM, KvmConstants.KVM_X86_SEV_ES_VM))
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        {
            Assert.Equal(0UL, SnpLaunch.SupportedVmsaFeatures(kvm) & SnpLaunch.VmsaFeatureSecureTsc);
            using var vm = kvm.CreateVm(VmType.SevEs);
            using var launch = SevLaunch.Open(vm);
            Assert.Equal(Errno.EINVAL, Assert.Throws<SevCommandException>(() => launch.Init(vmsaFeatures: SnpLaunch.VmsaFeatureSecureTsc)).Errno);
        }
    }

    [Fact]
    public void The_vms_tsc_rate_is_fixed_before_vcpus_and_a_secure_tsc_vcpu_refuses_its_own_rate()
    {
        using var k = Kernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = kvm.CreateVm(VmType.Snp);
        using var launch = SnpLaunch.Open(vm);
        launch.InitSecureTsc(tscKhz: 2_000_000);
        Assert.Equal(2_000_000u, vm.DefaultTscKhz);
        using var vcpu = vm.CreateVcpu();
        // kvm_arch_vm_ioctl KVM_SET_TSC_KHZ: "if (!kvm->created_vcpus)" else -EINVAL — the rate cannot change afterwards.
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => vm.SetDefaultTscKhz(3_000_000)).Errno);
        // kvm_arch_vcpu_ioctl KVM_SET_TSC_KHZ: "if (vcpu->arch.guest_tsc_protected) goto out" (-EINVAL), any rate.
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => vcpu.SetTscKhz(2_000_000)).Errno);
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => vcpu.SetTscKhz(0)).Errno);

        // Without Secure TSC an SNP vCPU still takes a rate.
        using var plainVm = kvm.CreateVm(VmType.Snp);
        using var plain = SnpLaunch.Open(plainVm);
        plain.Init();
        using var plainVcpu = plainVm.CreateVcpu();
        plainVcpu.SetTscKhz(0);
    }

    /// <summary>MSG_TSC_INFO_REQ sealed with VMPCK0 at <paramref name="seqno"/>, issued through the GHCB; the decrypted MSG_TSC_INFO_RSP.</summary>
    private static byte[] TscInfo(SevEsGuest g, byte[] vmpck, ulong seqno, byte[]? req = null)
    {
        T.WriteRequest(g, SnpGuestMessage.Seal(vmpck, 0, seqno, SnpTscInfo.MsgTscInfoReq, 1, req ?? new byte[SnpTscInfo.RequestSize]));
        var (info1, info2, _) = T.Issue(g, T.GuestRequest, T.RequestGpa, T.ResponseGpa);
        Assert.Equal((0UL, 0UL), (info1, info2));
        byte[] page = T.ResponsePage(g);
        var h = SnpGuestMessage.ReadHeader(page);
        Assert.Equal(seqno + 1, h.Seqno);
        Assert.Equal(SnpTscInfo.MsgTscInfoRsp, h.MsgType);
        Assert.Equal((byte)1, h.MsgVersion);
        Assert.Equal((ushort)SnpTscInfo.ResponseSize, h.MsgSize);
        byte[]? plain = SnpGuestMessage.Open(vmpck, page);
        Assert.NotNull(plain);
        return plain;
    }

    [Fact]
    public void Tsc_info_returns_the_firmwares_scale_and_offset_with_the_secrets_pages_tsc_factor()
    {
        using var g = T.Launch(init: l => l.InitSecureTsc(tscKhz: 2 * (uint)(Stopwatch.Frequency / 1000)));
        byte[] vmpck = T.Start(g);
        byte[] rsp = TscInfo(g, vmpck, 1);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(rsp.AsSpan(SnpTscInfo.OffStatus)));
        // Twice the host's rate: GUEST_TSC_SCALE 2.0 in 8.32 fixed point.
        Assert.Equal(2UL << 32, BinaryPrimitives.ReadUInt64LittleEndian(rsp.AsSpan(SnpTscInfo.OffTscScale)));
        long offset = BinaryPrimitives.ReadInt64LittleEndian(rsp.AsSpan(SnpTscInfo.OffTscOffset));
        Assert.True(offset < 0, $"offset {offset}"); // the model starts the guest TSC at 0 at SNP_LAUNCH_START
        // TSC_FACTOR: the model's (0), as the secrets page carries it at 0x160 for snp_secure_tsc_init.
        Assert.Equal(SnpTscInfo.TscFactor, BinaryPrimitives.ReadUInt32LittleEndian(rsp.AsSpan(SnpTscInfo.OffTscFactor)));
        Assert.Equal(new byte[100], rsp[0x1c..]);
        // The same answer again (seqno 3), and a non-zero reserved byte is refused in the response's status.
        Assert.Equal(rsp, TscInfo(g, vmpck, 3));
        var bad = new byte[SnpTscInfo.RequestSize];
        bad[127] = 1;
        byte[] refused = TscInfo(g, vmpck, 5, bad);
        Assert.Equal(InvalidParam, BinaryPrimitives.ReadUInt32LittleEndian(refused));
        Assert.Equal(new byte[SnpTscInfo.ResponseSize - 4], refused[4..]);
    }

    [Fact]
    public void Without_secure_tsc_tsc_info_answers_invalid_param_in_its_status()
    {
        using var g = T.Launch();
        byte[] vmpck = T.Start(g);
        byte[] rsp = TscInfo(g, vmpck, 1);
        Assert.Equal(InvalidParam, BinaryPrimitives.ReadUInt32LittleEndian(rsp));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(rsp.AsSpan(SnpTscInfo.OffTscScale)));
    }

    /// <summary>RDTSC into Out + <paramref name="at"/> (RAX, RDX, RDI clobbered).</summary>
    private static void StoreTsc(Assembler a, int at)
    {
        a.rdtsc();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.mov(rdi, (long)(SevEsGuest.SharedAlias + Out));
        a.mov(__qword_ptr[rdi + at], rax);
    }

    /// <summary>GHCB_MSR_REG_GPA_REQ for the GHCB page (an SNP guest registers it before using it).</summary>
    private static void RegisterGhcb(Assembler a)
    {
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb | 0x012);
        SevEsGuest.Vmgexit(a);
    }

    /// <summary>A WRMSR request through the GHCB page: IA32_TSC = 2^60 (sev.c → kvm_set_msr_common).</summary>
    private static void GhcbTscWrite(Assembler a)
    {
        // struct ghcb: rax 0x1f8, rcx 0x308, rdx 0x310; their valid bits are offset / 8.
        SevEsGuest.SetGhcb(a, 0x308, 0x10);
        SevEsGuest.SetGhcb(a, 0x1f8, 0);
        SevEsGuest.SetGhcb(a, 0x310, 1UL << 28);
        SevEsGuest.SetGhcb(a, SevEsGuest.GhcbSwExitCode, SvmExitMsr);
        SevEsGuest.SetGhcb(a, SevEsGuest.GhcbSwExitInfo1, 1);
        SevEsGuest.SetGhcb(a, SevEsGuest.GhcbSwExitInfo2, 0);
        SevEsGuest.SetGhcbValid(a, 0x1f8, 0x308, 0x310, SevEsGuest.GhcbSwExitCode, SevEsGuest.GhcbSwExitInfo1, SevEsGuest.GhcbSwExitInfo2);
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb);
        SevEsGuest.Vmgexit(a);
    }

    /// <summary>An exit to the host: GHCB IOIO OUT to port 0x80 (KVM_EXIT_IO).</summary>
    private static void IoExit(Assembler a)
    {
        SevEsGuest.SetGhcb(a, 0x1f8, 0);
        SevEsGuest.GhcbRequest(a, 0x7b, (0x80UL << 16) | (1UL << 4), 0, validLow: 1UL << (0x1f8 / 8));
    }

    [Fact]
    public void A_secure_tsc_guest_reads_guest_tsc_freq_directly_runs_at_the_desired_rate_and_keeps_its_tsc_on_a_write()
    {
        uint hostKhz = (uint)(Stopwatch.Frequency / 1000);
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            a.mov(ecx, SnpTscInfo.MsrGuestTscFreq);
            a.rdmsr();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(rdi, (long)(SevEsGuest.SharedAlias + Out));
            a.mov(__qword_ptr[rdi], rax);
            StoreTsc(a, 8);
            IoExit(a);
            StoreTsc(a, 16);
            GhcbTscWrite(a);
            StoreTsc(a, 24);
            // RDMSR IA32_TSC is still intercepted: #VC (vc-handle.c answers it with RDTSC in a Linux guest).
            a.mov(ecx, 0x10);
            a.rdmsr();
            a.hlt();
        }, snpInit: l => l.InitSecureTsc(tscKhz: 3 * hostKhz));
        long s1 = Stopwatch.GetTimestamp();
        var exit = g.Vcpu.RunBounded();
        long r1 = Stopwatch.GetTimestamp();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
        Thread.Sleep(20);
        long s2 = Stopwatch.GetTimestamp();
        exit = g.Vcpu.RunBounded();
        long e2 = Stopwatch.GetTimestamp();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal(SvmExitMsr, g.ReportQword(0));
        // GUEST_TSC_FREQ (bits 17:0, MHz): not intercepted, the firmware's value for DESIRED_TSC_FREQ.
        Assert.Equal((ulong)(3 * hostKhz / 1000), g.Memory.Read<ulong>(Out));
        // GUEST_TSC_SCALE 3.0: across the host's pause the guest TSC advanced 3 × the host TSC, within the bounds of
        // when the two reads can have happened (after r1 − s2 … before e2 − s1).
        ulong tsc1 = g.Memory.Read<ulong>(Out + 8), tsc2 = g.Memory.Read<ulong>(Out + 16), tsc3 = g.Memory.Read<ulong>(Out + 24);
        Assert.InRange(tsc2 - tsc1, 3 * (ulong)(s2 - r1), 3 * (ulong)(e2 - s1));
        // The GHCB write of IA32_TSC = 2^60 was dropped (x86.c "else if (!vcpu->arch.guest_tsc_protected)").
        Assert.InRange(tsc3, tsc2, tsc2 + 3 * (ulong)(e2 - s1));
    }

    [Fact]
    public void Without_secure_tsc_guest_tsc_freq_is_intercepted_and_a_tsc_write_through_the_ghcb_moves_the_tsc()
    {
        using (var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(ecx, SnpTscInfo.MsrGuestTscFreq);
            a.rdmsr();
            a.hlt();
        }))
        {
            var exit = g.Vcpu.RunBounded();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
            Assert.Equal(SvmExitMsr, g.ReportQword(0));
        }
        // A write of GUEST_TSC_FREQ stays intercepted under Secure TSC (MSR_TYPE_R only).
        using (var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(ecx, SnpTscInfo.MsrGuestTscFreq);
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.wrmsr();
            a.hlt();
        }, snpInit: l => l.InitSecureTsc()))
        {
            g.Vcpu.RunBounded();
            Assert.Equal(SvmExitMsr, g.ReportQword(0));
        }
        // Without Secure TSC the guest's IA32_TSC write through the GHCB moves its TSC (kvm_set_msr_common).
        using (var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            RegisterGhcb(a);
            StoreTsc(a, 8);
            GhcbTscWrite(a);
            StoreTsc(a, 16);
            a.hlt();
        }))
        {
            var exit = g.Vcpu.RunBounded();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"exit {exit.ToString()}");
            Assert.True(g.Memory.Read<ulong>(Out + 8) < 1UL << 50);
            Assert.True(g.Memory.Read<ulong>(Out + 16) >= 1UL << 60);
        }
    }
}
