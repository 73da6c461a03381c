// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using Iced.Intel;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// What the CPUID instruction answers in a micro-VM (GUEST-ABI.md, "CPUID"; <see cref="GuestCpuid"/>), on the real
/// kernel and on the emulator built like this host, with the same body. Host-specific values (vendor, highest leaf,
/// feature bits) are compared with each kernel's own KVM_GET_SUPPORTED_CPUID; what the sandbox fixes (the KVM
/// signature, no paravirtual features, the APIC and topology bits of leaf 1) is compared between the kernels.
/// </summary>
public sealed class MicroVmCpuidTests
{
    private static readonly Lazy<GuestImage> Guest = new(CpuidGuest);

    /// <summary>HostDeviations.KvmPvmSetCpuidRewritesLeaves (KvmSharp.Conformance) for the real kernel.</summary>
    private static bool KvmPvm => Directory.Exists("/sys/module/kvm_pvm");

    /// <summary>CPUID.1 EDX.APIC.</summary>
    private const uint ApicBit = 1u << 9;

    /// <summary>
    /// <c>cpuid(leaf, subleaf)</c> → EAX; hands back EAX, EBX, ECX, EDX (4 × u32) as the call's output.
    /// </summary>
    private static GuestImage CpuidGuest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start");
        Label cpuid = p.Export("cpuid");
        p.Place(ref start);
        p.ExitWith(0);

        p.Place(ref cpuid);
        a.push(rbx);
        a.mov(eax, edi);
        a.mov(ecx, esi);
        a.cpuid();
        a.mov(r8, Layout.CallData);
        a.mov(__dword_ptr[r8], eax);
        a.mov(__dword_ptr[r8 + 4], ebx);
        a.mov(__dword_ptr[r8 + 8], ecx);
        a.mov(__dword_ptr[r8 + 12], edx);
        a.mov(r9, CallRegion.Address(CallRegion.OutputPtr));
        a.mov(__qword_ptr[r9], r8);
        a.mov(__qword_ptr[r9 + 8], 16);
        a.pop(rbx);
        a.ret();
        return p.Build(start);
    }

    private readonly record struct Regs(uint Eax, uint Ebx, uint Ecx, uint Edx);

    private sealed record Seen(
        Regs Leaf0, Regs Leaf1, Regs Kvm0, Regs Kvm1, Regs Ext0, IReadOnlyList<CpuidEntry> Supported, bool Real, Regs Timing, uint TscKhz, Regs Ext1);

    private static Regs Cpuid(MicroVm vm, uint leaf, uint subleaf = 0)
    {
        CallResult r = vm.Call("cpuid", leaf, subleaf);
        Assert.True(r.Outcome == GuestOutcome.Exit && r.Status == 0, r.ToString());
        ReadOnlySpan<byte> o = r.Output.Span;
        Assert.Equal(16, o.Length);
        return new Regs(BinaryPrimitives.ReadUInt32LittleEndian(o), BinaryPrimitives.ReadUInt32LittleEndian(o[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(o[8..]), BinaryPrimitives.ReadUInt32LittleEndian(o[12..]));
    }

    private static Seen RunOn(IKernel kernel, EmulatorConfig? config, CpuidPolicy policy = CpuidPolicy.Sandbox)
    {
        using var kvm = Kvm.Open(kernel, proposals: config?.Proposals);
        var options = new MicroVmOptions { Kvm = kvm, Memory = null, Cpuid = policy, Timeout = TimeSpan.FromSeconds(10) };
        using var vm = MicroVm.Create(Guest.Value, options);
        return new Seen(Cpuid(vm, 0), Cpuid(vm, 1), Cpuid(vm, GuestCpuid.KvmSignatureLeaf), Cpuid(vm, GuestCpuid.KvmFeaturesLeaf),
            Cpuid(vm, 0x8000_0000), kvm.GetSupportedCpuid(), config is null, Cpuid(vm, GuestCpuid.TimingLeaf), TscKhz(kvm),
            Cpuid(vm, 0x8000_0001));
    }

    /// <summary>KVM_GET_TSC_KHZ of a new vCPU of <paramref name="kvm"/>: the rate every VM's vCPUs start with.</summary>
    private static uint TscKhz(Kvm kvm)
    {
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        return vcpu.TscKhz;
    }

    private static (Seen Real, Seen Emulated) OnBoth(CpuidPolicy policy = CpuidPolicy.Sandbox)
    {
        Seen real = RunOn(LinuxKernel.Instance, null, policy);
        EmulatorConfig config = HostMatching.LikeThisHostAsItIs();
        using var emulated = new EmulatedKernel(config);
        return (real, RunOn(emulated, config, policy));
    }

    private static string Vendor(Regs leaf0) => Ascii(leaf0.Ebx, leaf0.Edx, leaf0.Ecx);

    private static string Ascii(uint a, uint b, uint c)
    {
        var bytes = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, a);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), b);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), c);
        return Encoding.ASCII.GetString(bytes);
    }

    private static CpuidEntry SupportedLeaf(Seen s, uint leaf) => s.Supported.First(e => e.Function == leaf && e.Index == 0);

    [KvmFact]
    public void The_guest_sees_the_vendor_and_highest_leaves_the_kernel_supports()
    {
        (Seen real, Seen emu) = OnBoth();
        foreach (Seen s in new[] { real, emu })
        {
            CpuidEntry leaf0 = SupportedLeaf(s, 0);
            string vendor = Vendor(s.Leaf0);
            Assert.True(vendor.All(c => c is >= ' ' and <= '~') && vendor.Trim().Length > 0, $"vendor '{vendor}' ({(s.Real ? "real" : "emulator")})");
            Assert.Equal(new Regs(leaf0.Eax, leaf0.Ebx, leaf0.Ecx, leaf0.Edx), s.Leaf0);
            Assert.True(s.Leaf0.Eax >= 1);
            CpuidEntry ext0 = SupportedLeaf(s, 0x8000_0000);
            Assert.Equal(ext0.Eax, s.Ext0.Eax);
            Assert.True(s.Ext0.Eax >= 0x8000_0001);
        }
        // The vendor is the host's on the real kernel and a fixed one on the emulator: each is non-zero (above), the
        // two need not be equal on another host.
    }

    [KvmFact]
    public void Leaf_0x40000000_is_KVMs_signature_and_no_paravirtual_feature_is_announced()
    {
        (Seen real, Seen emu) = OnBoth();
        foreach (Seen s in new[] { real, emu })
        {
            // The highest hypervisor leaf is the timing leaf (below).
            Assert.Equal(GuestCpuid.TimingLeaf, s.Kvm0.Eax);
            // EBX, ECX, EDX in that order (unlike the vendor string of leaf 0).
            Assert.Equal("KVMKVMKVM\0\0\0", Ascii(s.Kvm0.Ebx, s.Kvm0.Ecx, s.Kvm0.Edx));
            Assert.Equal(default, s.Kvm1);
        }
        Assert.Equal(real.Kvm0, emu.Kvm0);
        Assert.Equal(real.Kvm1, emu.Kvm1);
    }

    [KvmFact]
    public void Leaf_0x40000010_gives_the_vcpus_tsc_rate_in_khz()
    {
        (Seen real, Seen emu) = OnBoth();
        foreach (Seen s in new[] { real, emu })
        {
            Assert.True(s.TscKhz > 0, $"KVM_GET_TSC_KHZ {s.TscKhz} ({(s.Real ? "real" : "emulator")})");
            Assert.Equal(new Regs(s.TscKhz, 0, 0, 0), s.Timing);
        }
        // With the supported table (no timing leaf) the leaf is out of range and reads as KVM answers that.
        (Seen realSupported, _) = OnBoth(CpuidPolicy.Supported);
        Assert.NotEqual(realSupported.TscKhz, realSupported.Timing.Eax);
    }

    [KvmFact]
    public void Leaf_1_describes_one_vcpu_under_a_hypervisor_without_a_local_apic()
    {
        (Seen real, Seen emu) = OnBoth();
        foreach (Seen s in new[] { real, emu })
        {
            string where = s.Real ? "real" : "emulator";
            Assert.True((s.Leaf1.Ecx & GuestCpuid.Leaf1EcxHypervisor) != 0, $"HYPERVISOR ({where}) 0x{s.Leaf1.Ecx:X8}");
            Assert.True((s.Leaf1.Ecx & (GuestCpuid.Leaf1EcxX2Apic | GuestCpuid.Leaf1EcxTscDeadline)) == 0, $"X2APIC/TSC_DEADLINE ({where}) 0x{s.Leaf1.Ecx:X8}");
            // No nested virtualization, whatever the host enables.
            Assert.True((s.Leaf1.Ecx & GuestCpuid.Leaf1EcxVmx) == 0 && (s.Ext1.Ecx & GuestCpuid.ExtLeaf1EcxSvm) == 0,
                $"VMX/SVM ({where}) 0x{s.Leaf1.Ecx:X8} 0x{s.Ext1.Ecx:X8}");
            // kvm_pvm adds the host's own leaf-1 ECX/EDX bits to the table it is given (HostDeviations.
            // KvmPvmSetCpuidRewritesLeaves), HTT among them: cleared in the table, set again by the kernel.
            if (!(s.Real && KvmPvm))
                Assert.True((s.Leaf1.Edx & GuestCpuid.Leaf1EdxHtt) == 0, $"HTT ({where}) 0x{s.Leaf1.Edx:X8}");
            // KVM's runtime bit: the APIC base MSR is enabled at reset (no in-kernel APIC answers, though).
            Assert.True((s.Leaf1.Edx & ApicBit) != 0, $"APIC ({where}) 0x{s.Leaf1.Edx:X8}");
            // Initial APIC id 0, one logical processor.
            Assert.Equal(0x0001u, s.Leaf1.Ebx >> 16);
            // Family/model/stepping as supported.
            Assert.Equal(SupportedLeaf(s, 1).Eax, s.Leaf1.Eax);
        }
        const uint Fixed = GuestCpuid.Leaf1EcxHypervisor | GuestCpuid.Leaf1EcxX2Apic | GuestCpuid.Leaf1EcxTscDeadline;
        Assert.Equal(real.Leaf1.Ecx & Fixed, emu.Leaf1.Ecx & Fixed);
        if (!KvmPvm) Assert.Equal(real.Leaf1.Edx & GuestCpuid.Leaf1EdxHtt, emu.Leaf1.Edx & GuestCpuid.Leaf1EdxHtt);
        Assert.Equal(real.Leaf1.Ebx >> 16, emu.Leaf1.Ebx >> 16);
    }

    [KvmFact]
    public void Without_a_table_every_leaf_reads_zero_on_both_kernels()
    {
        (Seen real, Seen emu) = OnBoth(CpuidPolicy.None);
        foreach (Seen s in new[] { real, emu })
        {
            Assert.Equal(default, s.Leaf0);
            Assert.Equal(default, s.Leaf1);
            Assert.Equal(default, s.Kvm0);
        }
    }

    [KvmFact]
    public void The_supported_policy_passes_the_kernels_table_and_the_supported_table_is_asked_once_per_kvm()
    {
        (Seen real, Seen emu) = OnBoth(CpuidPolicy.Supported);
        foreach (Seen s in new[] { real, emu })
        {
            CpuidEntry leaf0 = SupportedLeaf(s, 0);
            Assert.Equal(new Regs(leaf0.Eax, leaf0.Ebx, leaf0.Ecx, leaf0.Edx), s.Leaf0);
            CpuidEntry kvm1 = SupportedLeaf(s, GuestCpuid.KvmFeaturesLeaf);
            Assert.Equal(new Regs(kvm1.Eax, kvm1.Ebx, kvm1.Ecx, kvm1.Edx), s.Kvm1);
        }
        using var kvm = Kvm.Open(LinuxKernel.Instance);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Same(GuestCpuid.For(vcpu, CpuidPolicy.Sandbox), GuestCpuid.For(vcpu, CpuidPolicy.Sandbox));
        Assert.Null(GuestCpuid.For(vcpu, CpuidPolicy.None));
    }
    [Fact]
    public void Normalize_trims_amx_topology_and_paravirtual_leaves_of_an_intel_like_table()
    {
        CpuidEntry[] supported =
        [
            CpuidEntry.Leaf(0, 0x1F, 0x756E_6547, 0x6C65_746E, 0x4965_6E69),
            CpuidEntry.Leaf(1, 0x000806F8, 0x0A40_0800, 0x7FFA_FBFF | GuestCpuid.Leaf1EcxX2Apic | GuestCpuid.Leaf1EcxTscDeadline, 0xBFEB_FBFF),
            CpuidEntry.Subleaf(7, 0, 0, 0x1, 0x2, 0x8000_0000 | GuestCpuid.Leaf7EdxAmx),
            CpuidEntry.Subleaf(0xB, 0, 1, 2, 0x100, 7),
            CpuidEntry.Subleaf(0xD, 0, 0x0006_02E7, 0x2B00, 0x2B00, 0),
            CpuidEntry.Subleaf(0xD, 17, 0x40, 0xAC0, 0, 0),
            CpuidEntry.Subleaf(0xD, 18, 0x2000, 0xB00, 6, 0),
            CpuidEntry.Subleaf(0x1F, 1, 4, 8, 0x201, 7),
            CpuidEntry.Leaf(GuestCpuid.KvmSignatureLeaf, GuestCpuid.KvmFeaturesLeaf, 0x4B4D_564B, 0x564B_4D56, 0x4D),
            CpuidEntry.Leaf(GuestCpuid.KvmFeaturesLeaf, 0x0100_7EFB, 0, 0, 1),
        ];
        CpuidEntry[] n = GuestCpuid.Normalize(supported);
        // Leaf 1's VMX bit (set in the table above) is cleared with the APIC bits.
        Assert.NotEqual(0u, supported[1].Ecx & GuestCpuid.Leaf1EcxVmx);
        Assert.Equal(0u, n[1].Ecx & GuestCpuid.Leaf1EcxVmx);
        Assert.Equal(supported.Length - 2, n.Length);
        Assert.Equal(supported[0], n[0]);
        Assert.Equal(0x0001_0800u, n[1].Ebx);
        Assert.Equal((supported[1].Ecx | GuestCpuid.Leaf1EcxHypervisor) & ~(GuestCpuid.Leaf1EcxX2Apic | GuestCpuid.Leaf1EcxTscDeadline | GuestCpuid.Leaf1EcxVmx), n[1].Ecx);
        Assert.Equal(supported[1].Edx & ~GuestCpuid.Leaf1EdxHtt, n[1].Edx);
        Assert.Equal(0x8000_0000u, n[2].Edx);
        Assert.Equal(0u, n[3].Edx);
        Assert.Equal(0x0000_02E7u, n[4].Eax);
        Assert.DoesNotContain(n, e => e.Function == 0xD && e.Index is 17 or 18);
        Assert.Equal(0u, n[5].Edx);
        Assert.Equal(supported[8], n[6]);
        Assert.Equal(CpuidEntry.Leaf(GuestCpuid.KvmFeaturesLeaf, 0, 0, 0, 0), n[7]);

        // With a TSC rate: the signature's highest leaf becomes the timing leaf, which follows the KVM leaves.
        CpuidEntry[] timed = GuestCpuid.Normalize(supported, tscKhz: 2_445_406);
        Assert.Equal(n.Length + 1, timed.Length);
        Assert.Equal(n[6] with { Eax = GuestCpuid.TimingLeaf }, timed[6]);
        Assert.Equal(n[7], timed[7]);
        Assert.Equal(CpuidEntry.Leaf(GuestCpuid.TimingLeaf, 2_445_406, 0, 0, 0), timed[8]);
    }

    [Fact]
    public void Normalize_offers_no_nested_virtualization_of_an_amd_like_table()
    {
        CpuidEntry[] supported =
        [
            CpuidEntry.Leaf(0, 0x10, 0x6874_7541, 0x444D_4163, 0x6974_6E65),
            CpuidEntry.Leaf(0x8000_0000, 0x8000_0021, 0x6874_7541, 0x444D_4163, 0x6974_6E65),
            CpuidEntry.Leaf(0x8000_0001, 0x00A0_0F11, 0, 0x7584_17FF | GuestCpuid.ExtLeaf1EcxSvm, 0x2FD3_FBFF),
            CpuidEntry.Leaf(GuestCpuid.SvmFeaturesLeaf, 0x1, 0x8000, 0, 0x1BB_FCFF),
            CpuidEntry.Leaf(0x8000_0008, 0x3030, 0, 0, 0),
        ];
        CpuidEntry[] n = GuestCpuid.Normalize(supported);
        Assert.Equal(supported[2].Ecx & ~GuestCpuid.ExtLeaf1EcxSvm, n[2].Ecx);
        Assert.Equal(supported[2] with { Ecx = n[2].Ecx }, n[2]);
        Assert.DoesNotContain(n, e => e.Function == GuestCpuid.SvmFeaturesLeaf);
        Assert.Equal([0u, 0x8000_0000u, 0x8000_0001u, 0x8000_0008u], n.Select(e => e.Function));
    }
}
