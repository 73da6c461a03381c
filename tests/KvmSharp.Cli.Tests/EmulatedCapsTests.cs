// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp caps --kernel emulated</c>: the presets answer as kernel-spec §2.1 says those kernels do, and the
/// "like this host" preset answers exactly as this host's real /dev/kvm.
/// </summary>
public sealed class EmulatedCapsTests
{
    [KvmFact]
    public void Like_this_host_answers_every_capability_as_the_real_kernel()
    {
        using var real = new CapsJsonReader(CliRun.Of("caps", "--json"));
        using var emulated = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated"));

        Assert.Equal("emulated", emulated.Root.GetProperty("kernel").GetString());
        Assert.StartsWith("emulated (like this host", emulated.Module, StringComparison.Ordinal);
        Assert.Equal(real.Answers(), emulated.Answers());
        Assert.Equal(real.VmTypes, emulated.VmTypes);
        Assert.Equal(real.Devices, emulated.Devices);
        Assert.Equal(["kvm-vfio"], real.Devices);
    }

    [KvmFact]
    public void Like_this_host_offers_the_xsave_features_of_this_machines_cpu()
    {
        using var real = new CapsJsonReader(CliRun.Of("caps", "--json"));
        using var emulated = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated"));
        using var kvm = Kvm.Open();
        var leaf = kvm.GetSupportedCpuid().First(e => e.Function == 0xd && e.Index == 0);

        // The machines met so far: Milan (FP|SSE|YMM|PKRU) and Genoa (FP|SSE|YMM and AVX-512's three components).
        ulong xcr0 = leaf.Eax | ((ulong)leaf.Edx << 32);
        Assert.Equal(xcr0, real.Root.GetProperty("guestXsaveFeatures").GetUInt64());
        Assert.Equal(xcr0, emulated.Root.GetProperty("guestXsaveFeatures").GetUInt64());
        Assert.StartsWith("FP|SSE|YMM|", emulated.Root.GetProperty("guestXsaveFeaturesDecoded").GetString(), StringComparison.Ordinal);
        Assert.Equal(real.Root.GetProperty("guestXsaveFeaturesDecoded").GetString(), emulated.Root.GetProperty("guestXsaveFeaturesDecoded").GetString());
    }

    [Fact]
    public void Arm64_has_no_xsave_line_and_the_full_x86_preset_keeps_milan()
    {
        using var arm = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "arm64"));
        using var x86 = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "x86_64"));

        Assert.False(arm.Root.TryGetProperty("guestXsaveFeatures", out _));
        Assert.Equal(0x207UL, x86.Root.GetProperty("guestXsaveFeatures").GetUInt64());
        Assert.Equal("FP|SSE|YMM|PKRU", x86.Root.GetProperty("guestXsaveFeaturesDecoded").GetString());
    }

    [Theory]
    // kernel-spec §2.1: a SW_PROTECTED VM has private memory, so no INIT_SHARED and PRIVATE attributes on the VM;
    // with the v8 series INIT_SHARED comes back and PRIVATE moves from the VM to guest_memfd.
    [InlineData(false, 0x1, 0x8, 0x0)]
    [InlineData(true, 0x3, 0x0, 0x8)]
    public void A_sw_protected_vm_reports_flags_and_attributes_per_generation(bool inPlace, long flags, long vmAttributes, long gmemAttributes)
    {
        string[] args = ["caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", "sw-protected"];
        using var caps = new CapsJsonReader(CliRun.Of(inPlace ? [.. args, "--in-place-conversion"] : args));
        Assert.Equal(flags, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(vmAttributes, caps.Vm("KVM_CAP_MEMORY_ATTRIBUTES"));
        Assert.Equal(gmemAttributes, caps.Vm("KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES"));
    }

    [Fact]
    public void An_snp_vm_without_in_place_conversion_refuses_init_shared()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", "snp"));

        Assert.Equal("snp", caps.Root.GetProperty("vmType").GetString());
        Assert.Equal(["default", "sw-protected", "sev", "sev-es", "snp", "tdx"], caps.VmTypes);
        Assert.Equal(0x3, caps.System("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(0x1, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(0x8, caps.Vm("KVM_CAP_MEMORY_ATTRIBUTES"));
        Assert.Equal(0, caps.Vm("KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES"));
        Assert.Equal("MMAP", caps.Root.GetProperty("guestMemfdFlags").GetProperty("vmDecoded").GetString());
    }

    [Fact]
    public void In_place_conversion_moves_private_tracking_into_guest_memfd()
    {
        using var caps = new CapsJsonReader(CliRun.Of(
            "caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--in-place-conversion", "--vm-type", "snp"));

        Assert.Equal(0x3, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(0, caps.Vm("KVM_CAP_MEMORY_ATTRIBUTES"));
        Assert.Equal(0x8, caps.Vm("KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES"));
    }

    [Fact]
    public void Arm64_has_no_vm_types_capability_and_only_the_default_type()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "arm64"));

        Assert.Equal(0, caps.System("KVM_CAP_VM_TYPES"));
        Assert.Equal(["default"], caps.VmTypes);
        Assert.Equal(0x3, caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"));
        // kvm_register_vgic_device(KVM_DEV_TYPE_ARM_VGIC_V3) registers the ITS with the GICv3 (vgic-kvm-device.c).
        Assert.Equal(["kvm-vfio", "kvm-arm-vgic-v3", "kvm-arm-vgic-its"], caps.Devices);
    }

    [Fact]
    public void In_place_conversion_on_arm64_is_a_usage_error()
    {
        var run = CliRun.Of("caps", "--kernel", "emulated", "--arch", "arm64", "--in-place-conversion");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Equal("kvmsharp: --in-place-conversion is emulated for x86_64 only", Assert.Single(run.StderrLines));
    }

    [Fact]
    public void The_emulated_kernel_has_only_dev_kvm()
    {
        var run = CliRun.Of("caps", "--kernel", "emulated", "--device", "/nonexistent");

        Assert.Equal(ExitCodes.KernelError, run.ExitCode);
        Assert.StartsWith("kvmsharp: cannot open /nonexistent: ENOENT", Assert.Single(run.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public void Linux_6_8_offers_guest_memfd_only_to_a_sw_protected_vm_and_no_flags()
    {
        using var caps = new CapsJsonReader(CliRun.Of(
            "caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--kernel-version", "6.8", "--vm-type", "sw-protected"));

        Assert.Equal("emulated (x86_64, all VM types, 6.8)", caps.Module);
        Assert.Equal(["default", "sw-protected"], caps.VmTypes);
        Assert.Equal(1, caps.System("KVM_CAP_GUEST_MEMFD"));
        Assert.Equal(1, caps.Vm("KVM_CAP_GUEST_MEMFD"));
        // KVM_CAP_GUEST_MEMFD_FLAGS and KVM_CAP_PRE_FAULT_MEMORY are newer than 6.8.
        Assert.Equal(0, caps.System("KVM_CAP_GUEST_MEMFD_FLAGS"));
        Assert.Equal(0, caps.System("KVM_CAP_PRE_FAULT_MEMORY"));
        Assert.Equal(0x8, caps.Vm("KVM_CAP_MEMORY_ATTRIBUTES"));
        Assert.Equal("private-backing", caps.Root.GetProperty("guestMemfdUse").GetString());
    }

    [Fact]
    public void Linux_6_12_answers_as_its_generation_and_a_default_vm_gets_no_guest_memfd()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--kernel-version", "6.12.58"));

        Assert.Equal("emulated (x86_64, all VM types, 6.11)", caps.Module);
        Assert.Equal(["default", "sw-protected", "sev", "sev-es", "snp"], caps.VmTypes);
        Assert.Equal(1, caps.System("KVM_CAP_GUEST_MEMFD"));
        Assert.Equal(0, caps.Vm("KVM_CAP_GUEST_MEMFD"));
        Assert.Equal(1, caps.System("KVM_CAP_PRE_FAULT_MEMORY"));
        Assert.Equal("none", caps.Root.GetProperty("guestMemfdUse").GetString());
    }

    [Theory]
    [InlineData("default", "sole-memory")]
    [InlineData("snp", "mappable-private")]
    public void Linux_6_18_tells_what_guest_memfd_can_be_for_each_vm_type(string vmType, string use)
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", vmType));
        Assert.Equal(use, caps.Root.GetProperty("guestMemfdUse").GetString());

        var table = CliRun.Of("caps", "--kernel", "emulated", "--arch", "x86_64", "--vm-type", vmType);
        Assert.Contains($"guest_memfd use:   VM ({vmType}) {use}: ", table.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void This_machine_at_6_1_has_none_of_the_6_8_capabilities()
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--kernel-version", "6.1"));

        Assert.Equal("emulated (like this host: x86_64, 6.1)", caps.Module);
        foreach (string cap in new[] { "KVM_CAP_USER_MEMORY2", "KVM_CAP_MEMORY_FAULT_INFO", "KVM_CAP_GUEST_MEMFD", "KVM_CAP_VM_TYPES" })
            Assert.Equal(0, caps.System(cap));
        Assert.Equal(1, caps.System("KVM_CAP_USER_MEMORY"));
    }

    [Theory]
    [InlineData("kvmsharp: --kernel-version '5.15' is not a Linux release from 6.1 on (e.g. 6.8, 6.12.58, 6.18)", "--kernel-version", "5.15")]
    [InlineData("kvmsharp: --kernel-version 'latest' is not a Linux release from 6.1 on (e.g. 6.8, 6.12.58, 6.18)", "--kernel-version", "latest")]
    [InlineData("kvmsharp: --in-place-conversion needs --kernel-version 6.18 or later (the v8 series is based on 6.18+), not 6.11", "--kernel-version", "6.12", "--in-place-conversion")]
    public void A_kernel_version_the_emulator_cannot_be_is_a_usage_error(string message, params string[] options)
    {
        var run = CliRun.Of(["caps", "--kernel", "emulated", "--arch", "x86_64", .. options]);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Equal(message, Assert.Single(run.StderrLines));
    }

    [Theory]
    [InlineData("6.12", "default=none sw-protected=private-backing sev=none sev-es=none snp=private-backing")]
    [InlineData("6.18", "default=sole-memory sw-protected=mappable-private sev=sole-memory sev-es=sole-memory snp=mappable-private tdx=mappable-private")]
    public void Every_vm_type_gets_its_row(string release, string expected)
    {
        using var caps = new CapsJsonReader(CliRun.Of("caps", "--json", "--kernel", "emulated", "--arch", "x86_64", "--kernel-version", release));
        var rows = caps.Root.GetProperty("perVmType").EnumerateArray()
            .Select(r => $"{r.GetProperty("vmType").GetString()}={r.GetProperty("guestMemfdUse").GetString()}");
        Assert.Equal(expected, string.Join(' ', rows));
        // The row of the probe VM agrees with the top-level answer.
        var probe = caps.Root.GetProperty("perVmType").EnumerateArray().First(r => r.GetProperty("vmType").GetString() == "default");
        Assert.Equal(caps.Root.GetProperty("guestMemfdUse").GetString(), probe.GetProperty("guestMemfdUse").GetString());
        Assert.Equal(caps.Vm("KVM_CAP_GUEST_MEMFD_FLAGS"), probe.GetProperty("guestMemfdFlags").GetInt64());
    }
}
