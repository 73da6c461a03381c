// SPDX-License-Identifier: MIT
using System.Reflection;

namespace KvmSharp.Conformance;

/// <summary>One case of the suite: a static method of a class under Cases/ marked <see cref="ConformanceCaseAttribute"/>.</summary>
public sealed record ConformanceCase(string Name, string Group, string Source, EmulatedProfile Profile, Action<CaseContext> Body)
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
            foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Static))
            {
                if (method.GetCustomAttribute<ConformanceCaseAttribute>() is not { } attr) continue;
                var body = method.CreateDelegate<Action<CaseContext>>();
                cases.Add(new ConformanceCase(method.Name, type.Name, attr.Source, attr.Profile, body));
            }
        }
        cases.Sort((a, b) => string.CompareOrdinal(a.Group + "/" + a.Name, b.Group + "/" + b.Name));
        return cases;
    }
}
