// SPDX-License-Identifier: MIT
using System.CommandLine;
using KvmSharp.Abi;
using KvmSharp.Emulation;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp caps</c>: what this KVM offers for guest_memfd, asked of /dev/kvm and of a fresh VM, because the two
/// can differ (a VM with private memory refuses INIT_SHARED).
/// </summary>
public static class CapsCommand
{
    /// <summary>
    /// The KVM_CAP_GUEST_MEMFD_FLAGS_HI number --hugetlb uses unless --flags-hi-cap names one. ASSUMPTION: no number
    /// is allocated (seed 000 only names the cap); 251 is the first after the v8 series' 250.
    /// </summary>
    public const int DefaultFlagsHiCap = 251;

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the table" };
        var hugetlb = new Option<string?>("--hugetlb")
        {
            Description = "Emulate guest_memfd HugeTLB (unmerged): rfc-v2 ([RFC PATCH v2] flag bits 63:58) or page-order " +
                          "(the 6.18-based branch's page_order field); lists KVM_CAP_GUEST_MEMFD_FLAGS_HI too",
        };
        hugetlb.AcceptOnlyFromAmong("rfc-v2", "page-order");
        var flagsHiCap = new Option<int?>("--flags-hi-cap")
        {
            Description = $"With --hugetlb: the number KVM_CAP_GUEST_MEMFD_FLAGS_HI answers to (proposal; default {DefaultFlagsHiCap})",
        };
        var kernelOptions = new KernelOptions();
        var command = new Command("caps", "Show the capabilities relevant to guest_memfd");
        command.Options.Add(json);
        command.Options.Add(hugetlb);
        command.Options.Add(flagsHiCap);
        kernelOptions.AddTo(command);
        command.SetAction(result => Run(
            kernelOptions.ReadKernel(result),
            kernelOptions.ReadVmType(result),
            kernelOptions.ReadDevice(result),
            result.GetValue(json),
            result.InvocationConfiguration.Output,
            ParseHugetlb(result.GetValue(hugetlb)),
            result.GetValue(flagsHiCap)));
        return command;
    }

    public static int Run(KernelRequest kernel, VmType vmType, string device, bool json, TextWriter output) =>
        Run(kernel, vmType, device, json, output, GuestMemfdHugetlbEncoding.None, null);

    /// <summary>
    /// The caps verb; with <paramref name="hugetlb"/> (emulated kernels only) the preset gains the guest_memfd HugeTLB
    /// proposal and a KVM_CAP_GUEST_MEMFD_FLAGS_HI number, so the table shows bits 63:32 of the flags.
    /// </summary>
    public static int Run(KernelRequest kernel, VmType vmType, string device, bool json, TextWriter output,
        GuestMemfdHugetlbEncoding hugetlb, int? flagsHiCap)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        using var selection = hugetlb == GuestMemfdHugetlbEncoding.None ? KernelChoice.Create(kernel) : HugetlbSelection(kernel, hugetlb, flagsHiCap);
        var report = CapsProbe.Run(selection, device, vmType);
        if (json)
            CapsJson.Write(output, report);
        else
            CapsTable.Write(CliConsole.Create(output), report);
        return ExitCodes.Ok;
    }

    private static GuestMemfdHugetlbEncoding ParseHugetlb(string? name) => name switch
    {
        null => GuestMemfdHugetlbEncoding.None,
        "page-order" => GuestMemfdHugetlbEncoding.PageOrderField,
        _ => GuestMemfdHugetlbEncoding.RfcV2FlagBits,
    };

    private static KernelSelection HugetlbSelection(KernelRequest kernel, GuestMemfdHugetlbEncoding hugetlb, int? flagsHiCap)
    {
        if (kernel.Kind != KernelKind.Emulated)
            throw new UsageException("--hugetlb applies only to --kernel emulated (guest_memfd HugeTLB is an unmerged proposal)");
        if (kernel.NoDirectMap)
            throw new UsageException("--hugetlb and --no-direct-map both claim guest_memfd flag bit 2; choose one");
        var (config, description) = KernelChoice.EmulatedConfig(kernel);
        if (!config.Generation.HasGmemMmap() || !config.Kconfig.KVM_GUEST_MEMFD)
            (config, description) = (EmulatorConfig.LikeThisHost(), "like this host: x86_64, 6.18");
        config = config.WithGuestMemfdHugetlb(hugetlb) with { GuestMemfdFlagsHiCap = flagsHiCap ?? DefaultFlagsHiCap };
        string name = hugetlb == GuestMemfdHugetlbEncoding.PageOrderField ? "guest_memfd HugeTLB (page_order branch)" : "guest_memfd HugeTLB RFC v2";
        return new KernelSelection(new EmulatedKernel(config), $"emulated ({description} + {name})", Release: null, config.Proposals);
    }
}
