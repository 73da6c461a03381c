// SPDX-License-Identifier: MIT
using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvmSharp.Cli.Commands;

/// <summary>The machine-readable form of a <see cref="CapsReport"/> (caps --json).</summary>
public static class CapsJson
{
    public static void Write(TextWriter output, CapsReport report)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(report);
        output.WriteLine(JsonSerializer.Serialize(ToDocument(report), CapsJsonContext.Default.CapsDocument));
    }

    internal static CapsDocument ToDocument(CapsReport report) => new(
        report.Kernel,
        report.Release,
        report.Module,
        VmTypeNames.NameOf(report.VmType),
        [.. report.Capabilities.Select(c => new CapabilityEntry(c.Info.Name, c.Info.Number, c.System, c.Vm, c.Decoded, c.Info.Proposal))],
        [.. report.VmTypes.Select(VmTypeNames.NameOf)],
        new GuestMemfdFlagsEntry(
            (ulong)report.SystemGuestMemfdFlags,
            (ulong)report.VmGuestMemfdFlags,
            CapabilityDecoder.Flags(report.SystemGuestMemfdFlags, report.GuestMemfdHugetlb),
            CapabilityDecoder.Flags(report.VmGuestMemfdFlags, report.GuestMemfdHugetlb)),
        GuestMemfdUseNames.NameOf(report.VmGuestMemfdUse),
        [.. report.PerVmType.Select(t => new VmTypeEntry(
            VmTypeNames.NameOf(t.VmType), GuestMemfdUseNames.NameOf(t.GuestMemfdUse), (ulong)t.GuestMemfdFlags,
            t.MemoryAttributes, t.GuestMemfdMemoryAttributes, t.ReadonlyMemory))],
        [.. report.Devices.Select(DeviceNames.NameOf)],
        report.GuestXsaveFeatures,
        report.GuestXsaveFeatures is ulong xcr0 ? XfeatureNames.Decode(xcr0) : null,
        report.Arm64Cpu is { } cpu ? new Arm64CpuEntry(cpu.Isar0, cpu.Isar1, cpu.Pfr0, cpu.Zfr0, cpu.Pfr1, cpu.Mmfr2, cpu.Decoded) : null);
}

/// <summary>
/// The JSON document; <c>vmType</c> is the type of the VM that answered the "vm" values, <c>guestMemfdUse</c> what a
/// guest_memfd can be for it (<see cref="GuestMemfdUseNames"/>), <c>perVmType</c> the same for every type the kernel
/// offers, <c>devices</c> the in-kernel device types KVM_CREATE_DEVICE offers the probe VM (<see cref="DeviceNames"/>), <c>guestXsaveFeatures</c> KVM_GET_SUPPORTED_CPUID 0xD.0
/// EDX:EAX (absent on arm64) with its components named, <c>arm64Cpu</c> an arm64 vCPU's ID registers and the feature
/// names they stand for (absent on x86).
/// </summary>
internal sealed record CapsDocument(
    string Kernel,
    string? Release,
    string Module,
    string VmType,
    IReadOnlyList<CapabilityEntry> Capabilities,
    IReadOnlyList<string> VmTypes,
    GuestMemfdFlagsEntry GuestMemfdFlags,
    string GuestMemfdUse,
    IReadOnlyList<VmTypeEntry> PerVmType,
    IReadOnlyList<string> Devices,
    ulong? GuestXsaveFeatures,
    string? GuestXsaveFeaturesDecoded,
    Arm64CpuEntry? Arm64Cpu);

/// <summary>ID_AA64ISAR0/ISAR1/PFR0/ZFR0_EL1 of a fully featured vCPU and their /proc/cpuinfo names.</summary>
internal sealed record Arm64CpuEntry(ulong Isar0, ulong Isar1, ulong Pfr0, ulong Zfr0, ulong Pfr1, ulong Mmfr2, string Features);

/// <summary>One VM type's row: what guest_memfd can be for it and the caps behind that.</summary>
internal sealed record VmTypeEntry(string VmType, string GuestMemfdUse, ulong GuestMemfdFlags, ulong MemoryAttributes,
    ulong GuestMemfdMemoryAttributes, bool ReadonlyMemory);

internal sealed record CapabilityEntry(string Name, int Number, long System, long Vm, string Decoded, bool Proposal);

/// <summary>The combined 64-bit flag sets; <c>decoded</c> is the system set in the kernel's spelling (MMAP|INIT_SHARED).</summary>
internal sealed record GuestMemfdFlagsEntry(ulong System, ulong Vm, string Decoded, string VmDecoded);

/// <summary>Source-generated serialization: no reflection, so the tool works trimmed and AOT-compiled.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CapsDocument))]
internal sealed partial class CapsJsonContext : JsonSerializerContext;
