// SPDX-License-Identifier: MIT
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Tests.AbiOracle;

/// <summary>One number the C# Abi defines: <paramref name="Member"/> (Type.Member) under the oracle's name.</summary>
internal sealed record AbiValue(string OracleName, string Member, ulong Value);

/// <summary>
/// Every number the KvmSharp.Abi namespaces define, read by reflection from the real types (so a constant added later
/// is seen without editing this file): integral constants, static fields and static properties of the static
/// classes, enum members, struct sizes and field offsets.
/// </summary>
internal static class AbiSurface
{
    public static IReadOnlyList<AbiValue> All() => [.. AbiTypes().SelectMany(Values)];

    private static IEnumerable<Type> AbiTypes() =>
        typeof(KvmIoctls).Assembly.GetExportedTypes()
            .Where(t => t.Namespace is string ns && (ns == "KvmSharp.Abi" || ns.StartsWith("KvmSharp.Abi.", StringComparison.Ordinal)))
            .OrderBy(t => t.FullName, StringComparer.Ordinal);

    private static IEnumerable<AbiValue> Values(Type t)
    {
        if (t.IsEnum) return EnumMembers(t);
        if (t.IsValueType) return t.IsDefined(typeof(InlineArrayAttribute)) ? [] : StructLayout(t);
        if (t.IsAbstract && t.IsSealed) return StaticMembers(t); // a static class
        return []; // e.g. the UapiProposals record: instance data chosen per kernel, no upstream numbers
    }

    private static IEnumerable<AbiValue> EnumMembers(Type t) =>
        Enum.GetNames(t).Select(n => new AbiValue(n, $"{t.Name}.{n}", ToUInt64(Enum.Parse(t, n))));

    private static IEnumerable<AbiValue> StaticMembers(Type t)
    {
        // KvmRunLayout's offsets have short names (size, flags) that would collide: the oracle prefixes them.
        string prefix = t == typeof(KvmRunLayout) ? "kvm_run." : "";
        const BindingFlags Static = BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var f in t.GetFields(Static).Where(f => IsIntegral(f.FieldType)))
            yield return new AbiValue(prefix + f.Name, $"{t.Name}.{f.Name}", ToUInt64(f.GetValue(null)!));
        foreach (var p in t.GetProperties(Static).Where(p => IsIntegral(p.PropertyType) && p.GetMethod is not null))
            yield return new AbiValue(prefix + p.Name, $"{t.Name}.{p.Name}", ToUInt64(p.GetValue(null)!));
    }

    private static IEnumerable<AbiValue> StructLayout(Type t)
    {
        int marshal = Marshal.SizeOf(t);
        int managed = (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(t).Invoke(null, null)!;
        // The ioctl numbers are computed from Unsafe.SizeOf and P/Invoke marshals with Marshal.SizeOf: both must agree.
        if (marshal != managed)
            throw new InvalidOperationException($"{t.Name}: Marshal.SizeOf {marshal} != Unsafe.SizeOf {managed}");
        yield return new AbiValue($"sizeof({t.Name})", $"{t.Name} (size)", (ulong)marshal);
        foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.Instance))
            yield return new AbiValue($"offsetof({t.Name}.{f.Name})", $"{t.Name}.{f.Name}", (ulong)Marshal.OffsetOf(t, f.Name));
    }

    private static bool IsIntegral(Type t) =>
        t == typeof(byte) || t == typeof(sbyte) || t == typeof(short) || t == typeof(ushort) ||
        t == typeof(int) || t == typeof(uint) || t == typeof(long) || t == typeof(ulong);

    // Signed values compare by their two's-complement bits, as the C side prints them through unsigned long long.
    private static ulong ToUInt64(object v) => v switch
    {
        sbyte or short or int or long => unchecked((ulong)Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture)),
        _ => Convert.ToUInt64(v, System.Globalization.CultureInfo.InvariantCulture),
    };
}
