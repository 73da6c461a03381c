// SPDX-License-Identifier: MIT
using Spectre.Console;

namespace KvmSharp.Cli;

/// <summary>A Spectre.Console console over any <see cref="TextWriter"/>, so verbs print to what the caller gave.</summary>
public static class CliConsole
{
    /// <summary>Width used when the output is not a terminal: wide enough that no table row wraps in a pipe or a test.</summary>
    private const int PipeWidth = 160;

    public static IAnsiConsole Create(TextWriter output)
    {
        bool terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            // Colours and escapes only for a person at a terminal; pipes and files get plain text.
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!terminal) console.Profile.Width = PipeWidth;
        return console;
    }
}
