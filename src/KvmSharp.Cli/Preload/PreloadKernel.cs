// SPDX-License-Identifier: MIT
using System.CommandLine;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Kernel.Preload;

namespace KvmSharp.Cli.Preload;

/// <summary>
/// The kernel a preloaded program talks to: the <c>exec</c> command's kernel options, parsed by the same
/// <see cref="KernelOptions"/> every verb uses, with descriptor numbers lent by the preload library.
/// </summary>
internal static class PreloadKernel
{
    /// <summary>
    /// The kernel, and the emulated kernel inside it (the same object unless --trace wraps it); with --kernel linux
    /// --trace, the real kernel traced (no emulated one).
    /// </summary>
    public static (IKernel Kernel, EmulatedKernel? Emulated) Create(string[] options)
    {
        var kernelOptions = new KernelOptions();
        var command = new RootCommand();
        kernelOptions.AddTo(command);
        var parse = command.Parse(options);
        if (parse.Errors.Count > 0) throw new UsageException(string.Join("; ", parse.Errors.Select(e => e.Message)));
        var request = kernelOptions.ReadKernel(parse);
        // The real kernel goes through the bridge only to be traced: the program's own descriptors, real ones.
        if (request.Kind == KernelKind.Linux)
            return (KernelChoice.Traced(LinuxKernel.Instance, request.Trace ?? throw new UsageException("the preload library serves the real kernel only to trace it (--trace)")), null);
        var (config, _) = KernelChoice.EmulatedConfig(request);
        // The program touches its guest_memfd mappings itself: private pages must fault (see ProtectsPrivatePages).
        var emulated = new EmulatedKernel(config, new PreloadFdNumbers()) { ProtectsPrivatePages = true };
        return (KernelChoice.Traced(emulated, request.Trace), emulated);
    }
}
