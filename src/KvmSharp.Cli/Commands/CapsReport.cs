// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Kernel;

namespace KvmSharp.Cli.Commands;

/// <summary>One capability as /dev/kvm and the probe VM answer it.</summary>
public sealed record CapabilityValue(CapabilityInfo Info, long System, long Vm)
{
    public string DecodedSystem => CapabilityDecoder.Decode(Info.Meaning, System);

    public string DecodedVm => CapabilityDecoder.Decode(Info.Meaning, Vm);

    /// <summary>One meaning when both agree; otherwise both, since the VM's answer is what a VMM gets.</summary>
    public string Decoded => System == Vm ? DecodedSystem : $"{DecodedSystem} (VM: {DecodedVm})";
}

/// <summary>
/// Everything the caps verb found out, independent of how it is printed. <c>Kernel</c> is the boundary's name
/// ("linux", "emulated"), <c>Release</c> the running kernel's release when it is real, <c>Module</c> the KVM module
/// in use (or "emulated (config)"), <c>VmType</c> the type of the VM whose answers fill the VM column,
/// <c>GuestXsaveFeatures</c> the XSAVE components a guest may enable (KVM_GET_SUPPORTED_CPUID 0xD.0 EDX:EAX; null on
/// arm64) — the part of the host CPU that decides whether a vCPU's XSAVE image moves to another machine;
/// <c>Arm64Cpu</c> its arm64 counterpart (null on x86).
/// </summary>
public sealed record CapsReport(
    string Kernel,
    string? Release,
    string Module,
    VmType VmType,
    IReadOnlyList<CapabilityValue> Capabilities,
    IReadOnlyList<VmType> VmTypes,
    GuestMemfdFlags SystemGuestMemfdFlags,
    GuestMemfdFlags VmGuestMemfdFlags,
    GuestMemfdUse VmGuestMemfdUse,
    IReadOnlyList<VmTypeSummary> PerVmType,
    IReadOnlyList<KvmDeviceType> Devices,
    KvmSharp.Abi.GuestMemfdHugetlbEncoding GuestMemfdHugetlb = KvmSharp.Abi.GuestMemfdHugetlbEncoding.None,
    ulong? GuestXsaveFeatures = null,
    Arm64CpuFeatures? Arm64Cpu = null);

/// <summary>
/// ID_AA64ISAR0_EL1, ID_AA64ISAR1_EL1, ID_AA64PFR0_EL1, ID_AA64ZFR0_EL1, ID_AA64PFR1_EL1 and ID_AA64MMFR2_EL1 as
/// KVM_GET_ONE_REG reads them on a vCPU given
/// every optional feature that changes them and the kernel offers (SVE, address and generic pointer authentication):
/// which instructions a guest of this kernel may use.
/// </summary>
public sealed record Arm64CpuFeatures(ulong Isar0, ulong Isar1, ulong Pfr0, ulong Zfr0, ulong Pfr1, ulong Mmfr2)
{
    /// <summary>The /proc/cpuinfo feature names the registers stand for (<see cref="Arm64FeatureNames"/>).</summary>
    public string Decoded => Arm64FeatureNames.Decode(new(Isar0, Isar1, Pfr0, Zfr0, Pfr1, Mmfr2));
}

/// <summary>
/// What one VM type of the kernel offers for guest_memfd (a VM of that type was created and asked): the row a VMM
/// reads to choose a type.
/// </summary>
public sealed record VmTypeSummary(VmType VmType, GuestMemfdUse GuestMemfdUse, GuestMemfdFlags GuestMemfdFlags, ulong MemoryAttributes,
    ulong GuestMemfdMemoryAttributes, bool ReadonlyMemory);

/// <summary>Asks the kernel: KVM_CHECK_EXTENSION on /dev/kvm and on a freshly created VM.</summary>
public static class CapsProbe
{
    public static CapsReport Run(KernelSelection selection, string device, VmType vmType)
    {
        ArgumentNullException.ThrowIfNull(selection);
        using var kvm = Kvm.Open(selection.Kernel, device, selection.Proposals);

        // Creating a VM of a type the kernel does not list would fail with a bare EINVAL; say why instead.
        var vmTypes = kvm.SupportedVmTypes;
        if (!vmTypes.Contains(vmType))
        {
            throw new UnavailableException(
                $"VM type '{VmTypeNames.NameOf(vmType)}' is not supported by this kernel " +
                $"(KVM_CAP_VM_TYPES lists: {string.Join(", ", vmTypes.Select(VmTypeNames.NameOf))})");
        }

        // Answers differ per VM (e.g. INIT_SHARED is refused for VMs with private memory), so a VM is needed.
        using var vm = kvm.CreateVm(vmType);
        ulong? xsave = GuestXsaveFeatures(kvm);
        var values = CapabilityCatalog.GuestMemfdRelevant(selection.Proposals)
            .Select(cap => new CapabilityValue(cap, kvm.CheckExtension(cap.Number), vm.CheckExtension(cap.Number)))
            .ToList();

        return new CapsReport(
            selection.Kernel.Name,
            selection.Release,
            selection.Module,
            vmType,
            values,
            vmTypes,
            kvm.SupportedGuestMemfdFlags,
            vm.SupportedGuestMemfdFlags,
            vm.GuestMemfdUse,
            [.. vmTypes.Select(type => type == vmType ? Summarize(vm, selection.Proposals) : SummarizeNew(kvm, type, selection.Proposals))],
            [.. Enum.GetValues<KvmDeviceType>().Where(type => Offers(vm, type))],
            selection.Proposals.GuestMemfdHugetlb,
            xsave,
            xsave is null ? Arm64Features(kvm) : null);
    }

    // A vCPU initialised with the preferred target and every optional feature the ID registers depend on (SVE, which
    // needs KVM_ARM_VCPU_FINALIZE before its registers are readable, and PAuth, without which KVM hides ISAR1's
    // APA/API/GPA/GPI: arch/arm64/kvm/sys_regs.c __kvm_read_sanitised_id_reg). Null when the kernel has no
    // KVM_ARM_PREFERRED_TARGET (not arm64).
    private static Arm64CpuFeatures? Arm64Features(Kvm kvm)
    {
        using var vm = kvm.CreateVm();
        KvmSharp.Abi.Arm64.kvm_vcpu_init init;
        try
        {
            init = vm.PreferredTarget();
        }
        catch (KvmException)
        {
            return null;
        }
        bool sve = kvm.CheckExtension(KvmArm64Sve.KVM_CAP_ARM_SVE) > 0;
        bool pauth = kvm.CheckExtension(KvmArm64PtrAuth.KVM_CAP_ARM_PTRAUTH_ADDRESS) > 0 &&
            kvm.CheckExtension(KvmArm64PtrAuth.KVM_CAP_ARM_PTRAUTH_GENERIC) > 0;
        if (sve) init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_SVE;
        if (pauth) init.features[0] |= (1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_ADDRESS) | (1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_GENERIC);
        using var vcpu = vm.CreateVcpu(0);
        vcpu.Init(init);
        if (sve) vcpu.FinalizeSve();
        return new Arm64CpuFeatures(vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR0_EL1), vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64ISAR1_EL1),
            vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64PFR0_EL1), vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64ZFR0_EL1),
            vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64PFR1_EL1), vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64MMFR2_EL1));
    }

    // KVM_GET_SUPPORTED_CPUID leaf 0xD.0; arm64 has no CPUID ioctls (EINVAL).
    private static ulong? GuestXsaveFeatures(Kvm kvm)
    {
        try
        {
            foreach (var e in kvm.GetSupportedCpuid())
                if (e.Function == 0xd && e.Index == 0) return e.Eax | ((ulong)e.Edx << 32);
            return 0;
        }
        catch (KvmException)
        {
            return null;
        }
    }

    // KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST; a kernel without the device-control API answers with an errno.
    private static bool Offers(Vm vm, KvmDeviceType type)
    {
        try
        {
            return vm.SupportsDevice(type);
        }
        catch (KvmSharp.Kernel.KvmException)
        {
            return false;
        }
    }

    // The probe VM answers for its own type; every other type gets a VM of its own.
    private static VmTypeSummary SummarizeNew(Kvm kvm, VmType type, KvmSharp.Abi.UapiProposals proposals)
    {
        using var vm = kvm.CreateVm(type);
        return Summarize(vm, proposals);
    }

    private static VmTypeSummary Summarize(Vm vm, KvmSharp.Abi.UapiProposals proposals) =>
        new(vm.Type, vm.GuestMemfdUse, vm.SupportedGuestMemfdFlags, (ulong)vm.SupportedMemoryAttributes,
            (ulong)vm.CheckExtension(proposals.GuestMemfdMemoryAttributesCap), vm.CheckExtension(KvmSharp.Abi.KvmCaps.KVM_CAP_READONLY_MEM) != 0);
}
