// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.CommandLine.Invocation;
using KvmSharp.Cli.Commands;
using KvmSharp.Kernel;

namespace KvmSharp.Cli;

/// <summary>
/// The <c>kvmsharp</c> root command: wires the verbs and turns failures into one stderr line and an exit code.
/// <see cref="Run"/> is the whole program with its output streams passed in, so tests run it in process.
/// </summary>
public static class CliApp
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    public const string CommandName = "kvmsharp";

    public static RootCommand CreateRootCommand() =>
        new("The KvmSharp command line for KVM guest_memfd")
        {
            // The entry assembly is KvmSharp.Cli (see the .csproj); help should show the command people type.
            HelpName = CommandName,
            Subcommands = { RunCommand.Create(), CapsCommand.Create(), ConformanceCommand.Create(), FuzzCommand.Create(), RawFuzzCommand.Create(), GuestTemplateCommand.Create(), ExecCommand.Create() },
        };

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var parse = CreateRootCommand().Parse(args);

        // System.CommandLine answers a parse error with exit code 1, which scripts would read as "KVM said no".
        if (parse.Action is ParseErrorAction)
        {
            foreach (var error in parse.Errors) stderr.WriteLine($"kvmsharp: {OneLine(error.Message)}");
            stderr.WriteLine("Try 'kvmsharp --help'.");
            return ExitCodes.Usage;
        }

        try
        {
            // Our handlers below print one line; the default handler would print a stack trace.
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"kvmsharp: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (UnavailableException e)
        {
            stderr.WriteLine($"kvmsharp: {e.Message}");
            return ExitCodes.KernelError;
        }
        catch (KvmException e)
        {
            stderr.WriteLine($"kvmsharp: {KvmErrors.OneLine(e)}");
            return ExitCodes.KernelError;
        }
    }

    // Parser messages list choices on indented lines; one line per error keeps stderr greppable.
    private static string OneLine(string message) =>
        string.Join(' ', message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
