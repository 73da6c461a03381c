// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using KvmSharp.Cli.Preload;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp exec [kernel options] -- PROGRAM [ARGS]</c>: runs an ordinary program — a VMM written in C, Rust, Go —
/// against the chosen kernel. With <c>--kernel emulated</c> the program's /dev/kvm is KvmSharp's emulated kernel, in
/// the program's own process (libkvmsharp-preload.so through LD_PRELOAD, see Preload/native/kvmsharp_preload.c), so
/// a VMM can try guest_memfd, the confidential VM types or in-place conversion on a host that has none of them; with
/// <c>--kernel linux</c> (the default) it runs as it is, so one command line tries both, or with <c>--trace</c> the
/// real kernel's answers go through the same library to be printed. Exits with the program's exit status (128 + the
/// signal when a signal ended it).
/// </summary>
public static class ExecCommand
{
    /// <summary>The preload library's file name, built next to KvmSharp.Cli.dll from Preload/native.</summary>
    public const string PreloadLibrary = "libkvmsharp-preload.so";

    public static Command Create()
    {
        var program = new Argument<string[]>("PROGRAM") { Description = "The program and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var kernelOptions = new KernelOptions();
        var command = new Command("exec", "Run a program (a VMM in any language) with its /dev/kvm answered by the chosen kernel") { program };
        kernelOptions.AddTo(command);
        command.SetAction(result =>
        {
            var kernel = kernelOptions.ReadKernel(result);
            // Checked here, in this process, so a bad combination is a usage error before anything starts.
            KernelChoice.Create(kernel).Dispose();
            return Run(kernel.Kind, ExplicitOptions(result), result.GetValue(program)!, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error);
        });
        return command;
    }

    /// <summary>
    /// Runs <paramref name="program"/>; with <see cref="KernelKind.Emulated"/> its /dev/kvm is the emulated kernel
    /// that <paramref name="kernelOptions"/> (the verb's own options, as typed) select. Its output goes to
    /// <paramref name="output"/> and <paramref name="error"/> as it comes.
    /// </summary>
    public static int Run(KernelKind kind, IReadOnlyList<string> kernelOptions, IReadOnlyList<string> program, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(kernelOptions);
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var start = new ProcessStartInfo(program[0])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in program.Skip(1)) start.ArgumentList.Add(arg);
        // The real kernel needs the library only to be traced (--trace): otherwise the program runs as it is.
        bool traced = kernelOptions.Contains("--trace");
        using var preload = kind == KernelKind.Emulated || traced ? PreloadEnvironment.Prepare(kernelOptions) : null;
        if (preload is not null && ProgramLinkage.Resolve(program[0]) is string path && ProgramLinkage.IsStaticElf(path))
            throw new UsageException($"exec: {path} is linked statically: LD_PRELOAD cannot reach it, so it would talk to the real /dev/kvm (link it dynamically)");
        preload?.ApplyTo(start);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new UsageException($"exec: cannot start {program[0]}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new UsageException($"exec: cannot start {program[0]}: {e.Message}");
        }
        // Read synchronously, the redirected streams are not closed by Process.Dispose: their own using does it.
        using (process)
        using (var stdout = process.StandardOutput)
        using (var stderr = process.StandardError)
        {
            var copyOut = Pump(stdout, output);
            var copyErr = Pump(stderr, error);
            process.WaitForExit();
            Task.WaitAll(copyOut, copyErr);
            return process.ExitCode;
        }
    }

    // The options the user typed for this verb (not their defaults), to hand to the emulated kernel in the child.
    private static string[] ExplicitOptions(ParseResult result) =>
    [
        .. result.CommandResult.Children.OfType<OptionResult>()
            .Where(o => !o.Implicit && o.IdentifierToken is not null)
            .SelectMany(o => new[] { o.IdentifierToken!.Value }.Concat(o.Tokens.Select(t => t.Value))),
    ];

    private static async Task Pump(StreamReader from, TextWriter to)
    {
        char[] buffer = new char[4096];
        int n;
        while ((n = await from.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            lock (to)
            {
                to.Write(buffer, 0, n);
                to.Flush();
            }
        }
    }
}
