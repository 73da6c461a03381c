// SPDX-License-Identifier: MIT
using System.CommandLine;
using KvmSharp.Emulation;

namespace KvmSharp.Cli;

/// <summary>
/// The options every verb that talks to KVM shares: --kernel, --arch, --vm-type, --in-place-conversion,
/// --no-direct-map, --gmem-write, --kernel-version, --device, --trace.
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

    private readonly Option<bool> _noDirectMap = new("--no-direct-map")
    {
        Description = "Emulate the direct map removal series (v12): GUEST_MEMFD_FLAG_NO_DIRECT_MAP, GUP refused on such files",
    };

    private readonly Option<bool> _gmemWrite = new("--gmem-write")
    {
        Description = "Emulate the guest_memfd write series (v7): GUEST_MEMFD_FLAG_WRITE (1 << 3), write()/pwrite() of whole pages, lseek",
    };

    private readonly Option<string?> _kernelVersion = new("--kernel-version")
    {
        Description = "Release the emulated kernel follows: 6.1 (before guest_memfd), 6.8, 6.10, 6.11, 6.16, 6.18 " +
                      "(default), or any release, mapped to the generation it belongs to (e.g. 6.12 answers like 6.11)",
    };

    private readonly Option<string?> _arm64Cpu = new("--arm64-cpu")
    {
        Description = "The emulated arm64 host CPU (with --kernel emulated --arch arm64): neoverse-n1 (default; Armv8.2), " +
                      "neoverse-n1+pauth, neoverse-v1 (Armv8.4, SVE 256, BF16/I8MM, SHA3/SHA512/SM3/SM4, FHM, FCMA, JSCVT, FlagM, RNG, " +
                      "LRCPC2, DIT, LSE2) or neoverse-v2 (Armv9.0, SVE2 128, and FRINTTS, FlagM2, SB, BTI)",
    };

    private readonly Option<string> _device = new("--device")
    {
        Description = "Path of the KVM device",
        DefaultValueFactory = _ => Kvm.DefaultPath,
    };

    private readonly Option<bool> _trace = new("--trace")
    {
        Description = "Print every kernel call to stderr, strace-style: descriptors named by what created them, " +
                      "guest_memfd structs decoded, KVM_RUN's exit reason",
    };

    public KernelOptions()
    {
        _kernel.AcceptOnlyFromAmong("linux", "emulated");
        _arch.AcceptOnlyFromAmong("x86_64", "arm64");
        _vmType.AcceptOnlyFromAmong(VmTypeNames.All);
        _arm64Cpu.AcceptOnlyFromAmong([.. Emulation.Arm64.Arm64CpuModel.Presets.Select(p => p.Name)]);
    }

    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(_kernel);
        command.Options.Add(_arch);
        command.Options.Add(_vmType);
        command.Options.Add(_inPlaceConversion);
        command.Options.Add(_noDirectMap);
        command.Options.Add(_gmemWrite);
        command.Options.Add(_kernelVersion);
        command.Options.Add(_arm64Cpu);
        command.Options.Add(_device);
        command.Options.Add(_trace);
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
        KernelGeneration? generation = null;
        if (result.GetValue(_kernelVersion) is string release)
        {
            if (!KernelGenerations.TryParseRelease(release, out var parsed))
                throw new UsageException($"--kernel-version '{release}' is not a Linux release from 6.1 on (e.g. 6.8, 6.12.58, 6.18)");
            generation = parsed;
        }
        return new KernelRequest(kind, arch, result.GetValue(_inPlaceConversion), generation,
            Trace: result.GetValue(_trace) ? result.InvocationConfiguration.Error : null, NoDirectMap: result.GetValue(_noDirectMap),
            GmemWrite: result.GetValue(_gmemWrite),
            Arm64Cpu: result.GetValue(_arm64Cpu) is string cpu ? Emulation.Arm64.Arm64CpuModel.FindPreset(cpu) : null);
    }

    public VmType ReadVmType(ParseResult result) =>
        result.GetValue(_vmType) is string name ? VmTypeNames.Parse(name) : VmType.Default;

    public string ReadDevice(ParseResult result) => result.GetValue(_device) ?? Kvm.DefaultPath;
}
