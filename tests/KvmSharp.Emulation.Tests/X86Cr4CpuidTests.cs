// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation.X86;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// EmulatorConfig.X86Cr4ReservedFromGuestCpuid (X86/SregsRules.cs Cr4ReservedBits, X86/Emulate/X86Emulator.System.cs
/// SetCr4): with it (the upstream presets) the CR4 bits KVM_SET_SREGS and a guest MOV to CR4 take follow
/// arch/x86/kvm/x86.h __cr4_reserved_bits over the vCPU's CPUID and KVM's caps (cpuid.c kvm_vcpu_after_set_cpuid, also
/// run at vCPU creation: an empty CPUID before KVM_SET_CPUID2); without it (LikeThisHost) the same 0x750FFF whatever
/// the CPUID, as this host (kvm_pvm) does (HostDeviations.KvmPvmKeepsCr4BitsTheGuestCpuidLacks).
/// </summary>
public sealed class X86Cr4CpuidTests
{
    private const ulong Unconditional = 0x7ff; // VME … OSXMMEXCPT
    private const ulong HostMask = 0x75_0fff;
    private const ulong Osxsave = 1UL << 18, Pcide = 1UL << 17, Smep = 1UL << 20, Fsgsbase = 1UL << 16, Pke = 1UL << 22;
    private const ulong Umip = 1UL << 11, Cet = 1UL << 23, Cr0Wp = 1UL << 16;
    private const uint XsaveBit = 1u << 26, PcidBit = 1u << 17, SmepBit = 1u << 7, FsgsbaseBit = 1u << 0, ShstkBit = 1u << 7;

    /// <summary>The upstream preset on a CPU offering PCID, SMEP, FSGSBASE and SHSTK as well (Milan offers none of them).</summary>
    private static EmulatorConfig UpstreamWithMoreFeatures() => EmulatorConfig.X86_64() with
    {
        X86Cpu = X86CpuModel.FromSupportedCpuid("Milan + PCID, SMEP, FSGSBASE, SHSTK", [.. X86CpuModel.EpycMilan.SupportedCpuid.Select(e => e.function switch
        {
            1 => e with { ecx = e.ecx | PcidBit },
            7 when e.index == 0 => e with { ebx = e.ebx | SmepBit | FsgsbaseBit, ecx = e.ecx | ShstkBit },
            _ => e,
        })]),
    };

    /// <summary>Each CR4 bit alone through KVM_SET_SREGS: the mask of those taken; a refusal is EINVAL and keeps CR4.</summary>
    private static ulong AcceptedCr4(IKernel kernel, KvmSharp.Vcpu vcpu)
    {
        var s = vcpu.GetSregs();
        ulong mask = 0;
        for (int bit = 0; bit < 64; bit++)
        {
            var b = s with { cr4 = 1UL << bit };
            long rc = kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_SREGS, CaseContext.Raw(ref b));
            Assert.True(rc is 0 or -(long)Errno.EINVAL, $"CR4 bit {bit}: {rc}");
            if (rc == 0) mask |= 1UL << bit;
            Assert.Equal(rc == 0 ? 1UL << bit : s.cr4, vcpu.GetSregs().cr4);
            vcpu.SetSregs(s);
        }
        return mask;
    }

    private static IReadOnlyList<CpuidEntry> Without(IReadOnlyList<CpuidEntry> table, uint leaf1Ecx = 0, uint leaf7Ebx = 0, uint leaf7Ecx = 0) =>
        [.. table.Select(e => (e.Function, e.Index) switch
        {
            (1, _) => e with { Ecx = e.Ecx & ~leaf1Ecx },
            (7, 0) => e with { Ebx = e.Ebx & ~leaf7Ebx, Ecx = e.Ecx & ~leaf7Ecx },
            _ => e,
        })];

    [Fact]
    public void Upstream_preset_without_kvm_set_cpuid2_takes_only_the_unconditional_bits()
    {
        Assert.True(EmulatorConfig.X86_64().X86Cr4ReservedFromGuestCpuid);
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal($"0x{Unconditional:X}", $"0x{AcceptedCr4(k, vcpu):X}");
    }

    [Fact]
    public void Before_6_12_a_vcpu_without_kvm_set_cpuid2_takes_every_bit_kvm_offers()
    {
        // kvm_arch_vcpu_create ran kvm_vcpu_after_set_cpuid only from 6.12: cr4_guest_rsvd_bits stayed 0 until then.
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux611));
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal($"0x{Unconditional | Osxsave | Umip:X}", $"0x{AcceptedCr4(k, vcpu):X}"); // Milan: XSAVE, UMIP
        vcpu.SetCpuid(Without(kvm.GetSupportedCpuid(), leaf1Ecx: XsaveBit));
        Assert.Equal($"0x{Unconditional | Umip:X}", $"0x{AcceptedCr4(k, vcpu):X}");
    }

    [Fact]
    public void Upstream_preset_takes_the_bit_of_each_feature_the_cpuid_and_kvm_both_have()
    {
        using var k = new EmulatedKernel(UpstreamWithMoreFeatures());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var supported = kvm.GetSupportedCpuid();
        vcpu.SetCpuid(supported);
        // XSAVE, UMIP (Milan), PCID, SMEP, FSGSBASE, SHSTK (added); not VMX, SMAP, PKU, LA57, IBT, LAM.
        Assert.Equal($"0x{Unconditional | Osxsave | Umip | Pcide | Smep | Fsgsbase | Cet:X}", $"0x{AcceptedCr4(k, vcpu):X}");
        // The guest's bit alone is not enough: PKU in the guest CPUID, not offered by KVM.
        vcpu.SetCpuid([.. supported.Select(e => e.Function == 7 && e.Index == 0 ? e with { Ecx = e.Ecx | (1u << 3) } : e)]);
        Assert.Equal(0UL, AcceptedCr4(k, vcpu) & Pke);
        // Each feature cleared from the guest CPUID takes its bit away.
        vcpu.SetCpuid(Without(supported, leaf1Ecx: XsaveBit | PcidBit, leaf7Ebx: SmepBit | FsgsbaseBit, leaf7Ecx: ShstkBit | (1u << 2)));
        Assert.Equal($"0x{Unconditional:X}", $"0x{AcceptedCr4(k, vcpu):X}");
    }

    [Fact]
    public void Upstream_preset_keeps_cr4_bits_across_a_kvm_set_cpuid2_before_the_first_run_but_refuses_them_again()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var supported = kvm.GetSupportedCpuid();
        vcpu.SetCpuid(supported);
        var s = vcpu.GetSregs();
        s.cr4 |= Osxsave;
        vcpu.SetSregs(s);
        // kvm_set_cpuid before KVM_RUN: the new table replaces the old one (no CR4 check), CR4 keeps OSXSAVE.
        vcpu.SetCpuid(Without(supported, leaf1Ecx: XsaveBit));
        Assert.Equal(Osxsave, vcpu.GetSregs().cr4 & Osxsave);
        // The same state again is now refused: the held CPUID has no XSAVE.
        var again = vcpu.GetSregs();
        Assert.Equal(-(long)Errno.EINVAL, k.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_SREGS, CaseContext.Raw(ref again)));
    }

    [Fact]
    public void Like_this_host_takes_the_same_bits_with_or_without_a_cpuid()
    {
        Assert.False(EmulatorConfig.LikeThisHost().X86Cr4ReservedFromGuestCpuid);
        using var k = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(k);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal($"0x{HostMask:X}", $"0x{AcceptedCr4(k, vcpu):X}");
        vcpu.SetCpuid(Without(kvm.GetSupportedCpuid(), leaf1Ecx: XsaveBit, leaf7Ecx: 1u << 3));
        Assert.Equal($"0x{HostMask:X}", $"0x{AcceptedCr4(k, vcpu):X}");
    }

    /// <summary>MOV RAX, CR4; OR RAX, <paramref name="bits"/>; MOV CR4, RAX; HLT — #GP halts in its handler.</summary>
    private static IdtGuest SetCr4Guest(Kvm kvm, ulong bits) => IdtGuest.Create(kvm, a =>
    {
        a.mov(rax, cr4);
        a.mov(rbx, (long)bits);
        a.or(rax, rbx);
        a.mov(cr4, rax);
        a.hlt();
    }, [new IdtVector(13)]);

    private static void AssertGp(IdtGuest g, string what)
    {
        ulong before = g.Vcpu.GetSregs().cr4;
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        var d = g.Single();
        Assert.True(d.Vector == 13 && d.ErrorCode == 0, $"{what}: vector {d.Vector}, error {d.ErrorCode}");
        Assert.Equal(before, g.Vcpu.GetSregs().cr4);
    }

    private static void AssertTaken(IdtGuest g, ulong bits, string what)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        Assert.True(g.Deliveries.Count == 0, $"{what}: {string.Join("; ", g.Deliveries)}");
        Assert.Equal(bits, g.Vcpu.GetSregs().cr4 & bits);
    }

    [Fact]
    public void Guest_mov_to_cr4_follows_the_guest_cpuid_with_the_switch_and_this_host_without_it()
    {
        using (var k = new EmulatedKernel(EmulatorConfig.X86_64()))
        using (var kvm = Kvm.Open(k))
        {
            using (var g = SetCr4Guest(kvm, Osxsave)) AssertGp(g, "upstream, no CPUID: OSXSAVE");
            using (var g = SetCr4Guest(kvm, Osxsave))
            {
                g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
                AssertTaken(g, Osxsave, "upstream, CPUID with XSAVE: OSXSAVE");
            }
        }
        using (var k = new EmulatedKernel(EmulatorConfig.LikeThisHost()))
        using (var kvm = Kvm.Open(k))
        using (var g = SetCr4Guest(kvm, Osxsave | Pke))
        {
            AssertTaken(g, Osxsave | Pke, "this host, no CPUID: OSXSAVE | PKE");
        }
    }

    [Fact]
    public void Guest_mov_to_cr4_refuses_pcide_while_cr3_has_low_bits_and_cet_without_cr0_wp()
    {
        using var k = new EmulatedKernel(UpstreamWithMoreFeatures());
        using var kvm = Kvm.Open(k);
        var supported = kvm.GetSupportedCpuid();
        // x86.c kvm_set_cr4: "PCID can not be enabled when cr3[11:0]!=000H".
        using (var g = SetCr4Guest(kvm, Pcide))
        {
            g.Vcpu.SetCpuid(supported);
            var s = g.Vcpu.GetSregs();
            s.cr3 |= 0x8; // PWT
            g.Vcpu.SetSregs(s);
            AssertGp(g, "PCIDE with CR3[11:0] = 8");
        }
        using (var g = SetCr4Guest(kvm, Pcide))
        {
            g.Vcpu.SetCpuid(supported);
            AssertTaken(g, Pcide, "PCIDE with CR3[11:0] = 0");
        }
        // "(cr4 & X86_CR4_CET) && !kvm_is_cr0_bit_set(vcpu, X86_CR0_WP)".
        using (var g = SetCr4Guest(kvm, Cet))
        {
            g.Vcpu.SetCpuid(supported);
            var s = g.Vcpu.GetSregs();
            s.cr0 &= ~Cr0Wp;
            g.Vcpu.SetSregs(s);
            AssertGp(g, "CET with CR0.WP = 0");
        }
        using (var g = SetCr4Guest(kvm, Cet))
        {
            g.Vcpu.SetCpuid(supported);
            AssertTaken(g, Cet, "CET with CR0.WP = 1");
        }
    }
}
