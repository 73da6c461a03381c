// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli;

/// <summary>The command line's spelling of VM types (KVM_X86_SW_PROTECTED_VM → "sw-protected").</summary>
public static class VmTypeNames
{
    private static readonly (VmType Type, string Name)[] Names =
    [
        (VmType.Default, "default"),
        (VmType.SwProtected, "sw-protected"),
        (VmType.Sev, "sev"),
        (VmType.SevEs, "sev-es"),
        (VmType.Snp, "snp"),
        (VmType.Tdx, "tdx"),
    ];

    /// <summary>Every name the --vm-type option accepts.</summary>
    public static string[] All { get; } = [.. Names.Select(n => n.Name)];

    /// <summary>The name of <paramref name="type"/>; a type newer than this list shows as "type N".</summary>
    public static string NameOf(VmType type)
    {
        foreach (var (t, name) in Names)
        {
            if (t == type) return name;
        }
        return $"type {(uint)type}";
    }

    public static VmType Parse(string name)
    {
        foreach (var (t, n) in Names)
        {
            if (string.Equals(n, name, StringComparison.OrdinalIgnoreCase)) return t;
        }
        throw new UsageException($"unknown VM type '{name}' (expected one of {string.Join(", ", All)})");
    }
}
