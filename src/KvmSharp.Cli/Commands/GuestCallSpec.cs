// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Vmm;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// One <c>--call name[:arg,arg…]</c> of <c>kvmsharp run</c>: an export of the guest image and up to six integer
/// arguments (decimal or 0x hex), as <see cref="MicroVm.Call(string, ReadOnlySpan{ulong})"/> takes them.
/// </summary>
public sealed record GuestCallSpec(string Name, IReadOnlyList<ulong> Args)
{
    public static GuestCallSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        string name = (colon < 0 ? text : text[..colon]).Trim();
        if (name.Length == 0) throw new UsageException($"--call '{text}': no function name (e.g. --call increment, --call add:40,2)");
        var args = new List<ulong>();
        if (colon >= 0 && colon < text.Length - 1)
        {
            foreach (string part in text[(colon + 1)..].Split(','))
            {
                string a = part.Trim();
                bool hex = a.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
                if (!ulong.TryParse(hex ? a[2..] : a, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong value))
                    throw new UsageException($"--call '{text}': '{a}' is not an unsigned integer (decimal or 0x hex)");
                args.Add(value);
            }
        }
        if (args.Count > 6) throw new UsageException($"--call '{text}': at most 6 arguments, not {args.Count}");
        return new GuestCallSpec(name, args);
    }

    public CallResult Invoke(MicroVm vm, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vm);
        return vm.Call(Name, cancellationToken, [.. Args]);
    }

    public override string ToString() => $"{Name}({string.Join(", ", Args)})";
}
