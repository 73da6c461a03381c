// SPDX-License-Identifier: MIT
using System.CommandLine;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp caps</c>: what this KVM offers for guest_memfd, asked of /dev/kvm and of a fresh VM, because the two
/// can differ (a VM with private memory refuses INIT_SHARED).
/// </summary>
public static class CapsCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the table" };
        var kernelOptions = new KernelOptions();
        var command = new Command("caps", "Show the capabilities relevant to guest_memfd");
        command.Options.Add(json);
        kernelOptions.AddTo(command);
        command.SetAction(result => Run(
            kernelOptions.ReadKernel(result),
            kernelOptions.ReadVmType(result),
            kernelOptions.ReadDevice(result),
            result.GetValue(json),
            result.InvocationConfiguration.Output));
        return command;
    }

    public static int Run(KernelRequest kernel, VmType vmType, string device, bool json, TextWriter output)
    {
        using var selection = KernelChoice.Create(kernel);
        var report = CapsProbe.Run(selection, device, vmType);
        if (json)
            CapsJson.Write(output, report);
        else
            CapsTable.Write(CliConsole.Create(output), report);
        return ExitCodes.Ok;
    }
}
