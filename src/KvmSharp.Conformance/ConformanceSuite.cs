// SPDX-License-Identifier: MIT
using System.Reflection;

namespace KvmSharp.Conformance;

/// <summary>One case of the suite: a static method of a class under Cases/ marked <see cref="ConformanceCaseAttribute"/>.</summary>
/// <param name="Name">The method's name.</param>
/// <param name="Group">The class's name.</param>
/// <param name="Source">Where the case comes from (<see cref="ConformanceCaseAttribute.Source"/>).</param>
/// <param name="Profile">The emulator configuration it runs on (<see cref="ConformanceCaseAttribute.Profile"/>).</param>
/// <param name="Requires">What the kernel must be for the case to apply (the case's, else its class's).</param>
/// <param name="Body">The case.</param>
public sealed record ConformanceCase(string Name, string Group, string Source, EmulatedProfile Profile, KernelRequirement Requires, Action<CaseContext> Body)
{
    public override string ToString() => Name;
}

/// <summary>The cases, discovered once from this assembly.</summary>
public static class ConformanceSuite
{
    private static readonly Lazy<IReadOnlyList<ConformanceCase>> s_cases = new(Discover);

    public static IReadOnlyList<ConformanceCase> Cases => s_cases.Value;

    public static ConformanceCase Find(string name) =>
        Cases.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"no conformance case '{name}'", nameof(name));

    private static List<ConformanceCase> Discover()
    {
        var cases = new List<ConformanceCase>();
        foreach (var type in typeof(ConformanceSuite).Assembly.GetTypes())
        {
            var group = type.GetCustomAttribute<ConformanceGroupAttribute>()?.Requires ?? KernelRequirement.None;
            foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Static))
            {
                if (method.GetCustomAttribute<ConformanceCaseAttribute>() is not { } attr) continue;
                if (attr.Requires != KernelRequirement.None && !KernelRequirements.Implies(attr.Requires, group))
                    throw new InvalidOperationException($"{type.Name}.{method.Name} requires {attr.Requires}, its class {group}");
                var body = method.CreateDelegate<Action<CaseContext>>();
                var requires = attr.Requires != KernelRequirement.None ? attr.Requires : group;
                cases.Add(new ConformanceCase(method.Name, type.Name, attr.Source, attr.Profile, requires, body));
            }
        }
        cases.Sort((a, b) => string.CompareOrdinal(a.Group + "/" + a.Name, b.Group + "/" + b.Name));
        return cases;
    }
}
