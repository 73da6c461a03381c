// SPDX-License-Identifier: MIT
using System.Text;

namespace KvmSharp.Vmm;

/// <summary>The snake_case names of <see cref="GuestOutcome"/> (UnknownPort → <c>unknown_port</c>): what the CLI prints and
/// its JSON holds, and the outcome tag of the sandbox's metrics and traces.</summary>
public static class GuestOutcomeNames
{
    // Made once: a call's metrics tag must not allocate.
    private static readonly string[] s_names = Enum.GetValues<GuestOutcome>().Select(SnakeCase).ToArray();

    /// <summary>The snake_case name of <paramref name="outcome"/>; an undefined value gets its number.</summary>
    public static string Name(this GuestOutcome outcome) =>
        (uint)outcome < (uint)s_names.Length ? s_names[(int)outcome] : ((int)outcome).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string SnakeCase(GuestOutcome outcome)
    {
        string name = outcome.ToString();
        var snake = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0) snake.Append('_');
            snake.Append(char.ToLowerInvariant(name[i]));
        }
        return snake.ToString();
    }
}
