// SPDX-License-Identifier: MIT
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace KvmSharp.Cli.Commands;

/// <summary>The human-readable form of a <see cref="CapsReport"/>.</summary>
public static class CapsTable
{
    public static void Write(IAnsiConsole console, CapsReport report)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(report);

        console.WriteLine($"Kernel:     {report.Kernel}{(report.Release is null ? "" : " " + report.Release)}");
        console.WriteLine($"KVM module: {report.Module}");
        console.WriteLine($"Probe VM:   {VmTypeNames.NameOf(report.VmType)}");
        if (report.GuestXsaveFeatures is ulong xcr0)
            console.WriteLine($"XSAVE:      0x{xcr0:X} {XfeatureNames.Decode(xcr0)} (KVM_GET_SUPPORTED_CPUID 0xD)");
        if (report.Arm64Cpu is { } cpu)
            console.WriteLine($"arm64 CPU:  {cpu.Decoded} (a vCPU's ID_AA64ISAR0/1, PFR0/1, ZFR0, MMFR2)");
        console.WriteLine();

        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("Capability");
        table.AddColumn(new TableColumn("#").RightAligned());
        table.AddColumn(new TableColumn("System").RightAligned());
        table.AddColumn(new TableColumn("VM").RightAligned());
        table.AddColumn("Meaning");
        foreach (var cap in report.Capabilities)
        {
            // Text, not markup: decoded values such as "[...]" must never be parsed as Spectre markup.
            table.AddRow(new IRenderable[]
            {
                new Text(cap.Info.Proposal ? cap.Info.Name + " *" : cap.Info.Name),
                new Text(cap.Info.Number.ToString(CultureInfo.InvariantCulture)),
                new Text(CapabilityDecoder.Hex(cap.System)),
                new Text(CapabilityDecoder.Hex(cap.Vm)),
                new Text(cap.Decoded),
            });
        }
        console.Write(table);
        if (report.Capabilities.Any(c => c.Info.Proposal))
            console.WriteLine("* proposal: number from an unmerged patch series, may change (configurable in KvmCaps)");
        console.WriteLine();

        console.WriteLine($"VM types:          {string.Join(", ", report.VmTypes.Select(VmTypeNames.NameOf))}");
        if (report.PerVmType.Count > 1) console.Write(PerVmTypeTable(report));
        console.WriteLine($"devices:           {(report.Devices.Count == 0 ? "none" : string.Join(", ", report.Devices.Select(DeviceNames.NameOf)))} (KVM_CREATE_DEVICE)");
        console.WriteLine($"guest_memfd flags: system {Flags(report.SystemGuestMemfdFlags, report.GuestMemfdHugetlb)}, " +
                          $"VM ({VmTypeNames.NameOf(report.VmType)}) {Flags(report.VmGuestMemfdFlags, report.GuestMemfdHugetlb)}");
        // kvm_main.c compiles KVM_CAP_GUEST_MEMFD and KVM_CREATE_GUEST_MEMFD out without CONFIG_KVM_GUEST_MEMFD.
        if (report.Capabilities.FirstOrDefault(c => c.Info.Number == KvmSharp.Abi.KvmCaps.KVM_CAP_GUEST_MEMFD) is { System: 0 })
        {
            console.WriteLine("guest_memfd:       absent (KVM_CAP_GUEST_MEMFD = 0: built without CONFIG_KVM_GUEST_MEMFD, " +
                              "or older than 6.8); `--kernel emulated` shows what a kernel with it answers");
        }
        else
        {
            console.WriteLine($"guest_memfd use:   VM ({VmTypeNames.NameOf(report.VmType)}) {GuestMemfdUseNames.NameOf(report.VmGuestMemfdUse)}: " +
                              GuestMemfdUseNames.Explain(report.VmGuestMemfdUse));
        }
    }

    /// <summary>One row per VM type: what a VMM choosing a type needs to know about guest_memfd there.</summary>
    private static Table PerVmTypeTable(CapsReport report)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("VM type");
        table.AddColumn("guest_memfd use");
        table.AddColumn("guest_memfd flags");
        table.AddColumn("attributes (VM / gmem)");
        table.AddColumn("read-only slots");
        foreach (var t in report.PerVmType)
        {
            table.AddRow(new IRenderable[]
            {
                new Text(VmTypeNames.NameOf(t.VmType)),
                new Text(GuestMemfdUseNames.NameOf(t.GuestMemfdUse)),
                new Text(Flags(t.GuestMemfdFlags, report.GuestMemfdHugetlb)),
                new Text($"0x{t.MemoryAttributes:X} / 0x{t.GuestMemfdMemoryAttributes:X}"),
                new Text(t.ReadonlyMemory ? "yes" : "no"),
            });
        }
        return table;
    }

    private static string Flags(GuestMemfdFlags flags, KvmSharp.Abi.GuestMemfdHugetlbEncoding hugetlb) =>
        $"0x{(ulong)flags:X} {CapabilityDecoder.Flags(flags, hugetlb)}";
}
