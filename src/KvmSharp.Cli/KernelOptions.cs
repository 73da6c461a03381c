// SPDX-License-Identifier: MIT
using System.CommandLine;
using KvmSharp.Emulation;

namespace KvmSharp.Cli;

/// <summary>
/// The options every verb that talks to KVM shares: --kernel, --arch, --vm-type, --in-place-conversion, --device.
/// One instance per command (System.CommandLine options belong to one parent).
/// </summary>
public sealed class KernelOptions
{
    private readonly Option<string> _kernel = new("--kernel")
    {
        Description = "Which kernel to ask: the real one (/dev/kvm) or the emulated guest_memfd subsystem",
        DefaultValueFactory = _ => "linux",
    };

    private readonly Option<string?> _arch = new("--arch")
    {
        Description = "Architecture of the emulated kernel (default: like this host)",
    };

    private readonly Option<string?> _vmType = new("--vm-type")
    {
        Description = "Type of the VM to create (default: default); on linux it must be one the host lists",
    };

    private readonly Option<bool> _inPlaceConversion = new("--in-place-conversion")
    {
        Description = "Emulate the in-place conversion series (guest_memfd memory attributes)",
    };

    private readonly Option<string> _device = new("--device")
    {
        Description = "Path of the KVM device",
        DefaultValueFactory = _ => Kvm.DefaultPath,
    };

    public KernelOptions()
    {
        _kernel.AcceptOnlyFromAmong("linux", "emulated");
        _arch.AcceptOnlyFromAmong("x86_64", "arm64");
        _vmType.AcceptOnlyFromAmong(VmTypeNames.All);
    }

    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(_kernel);
        command.Options.Add(_arch);
        command.Options.Add(_vmType);
        command.Options.Add(_inPlaceConversion);
        command.Options.Add(_device);
    }

    public KernelRequest ReadKernel(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var kind = result.GetValue(_kernel) == "emulated" ? KernelKind.Emulated : KernelKind.Linux;
        Architecture? arch = result.GetValue(_arch) switch
        {
            null => null,
            "arm64" => Architecture.Arm64,
            _ => Architecture.X86_64,
        };
        return new KernelRequest(kind, arch, result.GetValue(_inPlaceConversion));
    }

    public VmType ReadVmType(ParseResult result) =>
        result.GetValue(_vmType) is string name ? VmTypeNames.Parse(name) : VmType.Default;

    public string ReadDevice(ParseResult result) => result.GetValue(_device) ?? Kvm.DefaultPath;
}
