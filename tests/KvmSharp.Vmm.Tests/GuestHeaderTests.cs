// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Tests.CGuest;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Keeps the C guest SDK (src/KvmSharp.Vmm/guest/kvmsharp_guest.h, as embedded in KvmSharp.Vmm) honest: gcc lists
/// every object-like <c>KVMS_</c> macro the header defines, a generated C program prints their values and the
/// structs' offsets and sizes, and each is compared with its twin in the C# source of truth — found by reflection, so
/// a constant added to either side alone fails. Twins are named mechanically: <c>KVMS_</c> + a prefix per class +
/// the member in UPPER_SNAKE_CASE (<c>CallRegion.InputPtr</c> → <c>KVMS_CALL_INPUT_PTR</c>).
/// </summary>
public sealed partial class GuestHeaderTests
{
    /// <summary>The classes whose every public constant is guest ABI, and their prefix in the header.</summary>
    private static readonly (Type Type, string Prefix)[] Sources =
    [
        (typeof(Layout), ""),
        (typeof(Gdt), "GDT_"),
        (typeof(Idt), "IDT_"),
        (typeof(Tss), "TSS_"),
        (typeof(GuestCpuid), "CPUID_"),
        (typeof(Ports), "PORT_"),
        (typeof(CallRegion), "CALL_"),
        (typeof(HostCallBlock), "HOSTCALL_"),
        (typeof(HostFunctions), "HOSTCALL_"),
        (typeof(ExceptionBlock), "EXCEPTION_"),
        (typeof(HostCallStatus), "STATUS_"),
    ];

    /// <summary>
    /// The part of <see cref="KvmPara"/> a guest uses for private memory (the rest is the host's): named as the kernel
    /// names them, with KVMS_ for KVM_.
    /// </summary>
    private static readonly string[] PrivateMemoryNames =
    [
        nameof(KvmPara.KVM_HC_MAP_GPA_RANGE), nameof(KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED),
        nameof(KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED), nameof(KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_MASK),
        nameof(KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_4K), nameof(KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_2M),
        nameof(KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_1G), nameof(KvmPara.KVM_EPERM), nameof(KvmPara.KVM_EFAULT),
        nameof(KvmPara.KVM_EINVAL), nameof(KvmPara.KVM_ENOSYS),
    ];

    /// <summary>Header names that are not mechanical twins but aliases a guest author looks for.</summary>
    private static readonly Dictionary<string, ulong> Aliases = new(StringComparer.Ordinal)
    {
        ["KVMS_ABI_VERSION"] = CallRegion.VersionValue,
    };

    /// <summary>The structs of the header: the class whose offset constants are their fields, and the non-offset members.</summary>
    private static readonly (string Struct, Type Type, string Size, string[] NotFields)[] Structs =
    [
        ("kvms_call_region", typeof(CallRegion), nameof(CallRegion.HeaderSize),
            [nameof(CallRegion.MagicValue), nameof(CallRegion.VersionValue), nameof(CallRegion.MaxArgs), nameof(CallRegion.HeaderSize), nameof(CallRegion.FeaturePrivateMemory),
                nameof(CallRegion.FeatureSnp), nameof(CallRegion.FeatureConsoleWrite), nameof(CallRegion.FeatureConsoleBuffer),
                nameof(CallRegion.ConsoleBuffer), nameof(CallRegion.ConsoleBufferSize)]),
        ("kvms_hostcall_block", typeof(HostCallBlock), nameof(HostCallBlock.Size),
            [nameof(HostCallBlock.Offset), nameof(HostCallBlock.Base), nameof(HostCallBlock.MaxArgs), nameof(HostCallBlock.Size)]),
        ("kvms_exception_block", typeof(ExceptionBlock), nameof(ExceptionBlock.Size),
            [nameof(ExceptionBlock.Base), nameof(ExceptionBlock.Size)]),
    ];

    private static readonly Lazy<HeaderValues> Printed = new(() => Print(null));

    [SkippableFact]
    public void Every_abi_constant_has_its_twin_in_the_header_with_the_same_value_and_the_header_has_no_other()
    {
        var printed = Printed.Value.OrSkip();
        var expected = CSharpConstants();
        Assert.True(expected.Count > 90, $"only {expected.Count} C# constants found: did reflection miss a class?");
        Assert.Empty(Compare(printed.Constants, expected));
        Assert.Equal(expected.Count, printed.Constants.Count);
    }

    [SkippableFact]
    public void The_header_structs_have_the_abi_field_offsets_and_sizes()
    {
        var printed = Printed.Value.OrSkip();
        int fields = 0;
        foreach (var (name, type, size, notFields) in Structs)
        {
            foreach (FieldInfo f in AbiFields(type).Where(f => !notFields.Contains(f.Name)))
            {
                Assert.Equal(ToUInt64(f.GetRawConstantValue()!), printed.Layout[$"offsetof {name}.{Snake(f.Name).ToLowerInvariant()}"]);
                fields++;
            }
            Assert.Equal(ToUInt64(type.GetField(size)!.GetRawConstantValue()!), printed.Layout[$"sizeof {name}"]);
        }
        Assert.Equal(14 + 4 + 8, fields);
        Assert.Equal((ulong)CallRegion.MaxArgs * sizeof(ulong), printed.Layout["sizeof kvms_call_region.args"]);
        Assert.Equal((ulong)HostCallBlock.MaxArgs * sizeof(ulong), printed.Layout["sizeof kvms_hostcall_block.args"]);
    }

    [SkippableFact]
    public void A_constant_on_one_side_only_or_with_another_value_fails_the_comparison()
    {
        // The comparison above, on a header with one port removed (as if C# had added it), a bogus constant added and
        // the call data's end moved.
        string header = GuestSdk.Header;
        string removed = header.Split('\n').Single(l => l.StartsWith("#define KVMS_PORT_HYPERCALL_LENGTH ", StringComparison.Ordinal));
        string mutated = header.Replace(removed + "\n", "", StringComparison.Ordinal)
            .Replace("#define KVMS_CALL_DATA_END 0xFC000ull", "#define KVMS_CALL_DATA_END 0x100000ull\n#define KVMS_PORT_BOGUS 0x5FFu", StringComparison.Ordinal);
        var printed = Print(mutated).OrSkip();
        Assert.Equal(
            [
                "KVMS_CALL_DATA_END: header 0x100000, C# Layout.CallDataEnd 0xFC000",
                "KVMS_PORT_BOGUS: in the header only (0x5FF)",
                "KVMS_PORT_HYPERCALL_LENGTH: missing from the header (C# Ports.HypercallLength = 0x2)",
            ],
            Compare(printed.Constants, CSharpConstants()));
    }

    [SkippableTheory]
    [InlineData("c99")]
    [InlineData("c11")]
    [InlineData("gnu11")]
    public void The_header_compiles_freestanding_without_a_warning(string standard)
    {
        // Both translation-unit shapes a guest has: the header alone, and the one file that takes the mem* functions.
        var built = GccBuild.InTempDirectory(dir =>
        {
            File.WriteAllText(Path.Combine(dir, "a.c"), "#include \"kvmsharp_guest.h\"\nkvms_u64 f(void) { return kvms_tsc_khz() + kvms_input_len(); }\n");
            File.WriteAllText(Path.Combine(dir, "b.c"), "#define KVMSHARP_GUEST_MEMFUNCS\n#include \"kvmsharp_guest.h\"\nvoid _start(void) { kvms_print(\"x\"); kvms_exit(0); }\n");
            GccBuild.Compile(dir, [.. GuestSdk.CompilerArguments, $"-std={standard}", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", "out", "a.c", "b.c"]);
        });
        Skip.If(built.Output is null, built.Unavailable);
        Assert.NotEmpty(built.Output!);
    }

    [SkippableFact]
    public void The_header_compiles_with_clang_too()
    {
        var built = GccBuild.InTempDirectory(dir =>
        {
            File.WriteAllText(Path.Combine(dir, "a.c"), "#define KVMSHARP_GUEST_MEMFUNCS\n#include \"kvmsharp_guest.h\"\nvoid _start(void) { kvms_print_hex(kvms_hostcall0(1, 0)); kvms_exit(kvms_tsc_khz()); }\n");
            GccBuild.Compile(dir, ["-c", "-std=c11", "-O2", "-ffreestanding", "-mgeneral-regs-only", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", "out", "a.c"], compiler: "clang");
        });
        Skip.If(built.Output is null, $"clang: {built.Unavailable}");
        Assert.NotEmpty(built.Output!);
    }

    /// <summary>Differences, one line each, sorted: missing from the header, only in the header, different values.</summary>
    private static List<string> Compare(IReadOnlyDictionary<string, ulong> header, IReadOnlyDictionary<string, (ulong Value, string Source)> expected)
    {
        var problems = new List<string>();
        foreach (var (name, (value, source)) in expected)
        {
            if (!header.TryGetValue(name, out ulong actual))
                problems.Add($"{name}: missing from the header (C# {source} = 0x{value:X})");
            else if (actual != value)
                problems.Add($"{name}: header 0x{actual:X}, C# {source} 0x{value:X}");
        }
        foreach (var (name, value) in header)
        {
            if (!expected.ContainsKey(name)) problems.Add($"{name}: in the header only (0x{value:X})");
        }
        problems.Sort(StringComparer.Ordinal);
        return problems;
    }

    /// <summary>Every C# twin the header must have, by its header name; two sources mapping to one name fail here.</summary>
    private static Dictionary<string, (ulong Value, string Source)> CSharpConstants()
    {
        var constants = new Dictionary<string, (ulong, string)>(StringComparer.Ordinal);
        void Add(string name, ulong value, string source)
        {
            if (!constants.TryAdd(name, (value, source)))
                Assert.Fail($"{source} and {constants[name].Item2} both map to {name}: rename one or give the class another prefix");
        }
        foreach (var (type, prefix) in Sources)
        {
            if (type.IsEnum)
            {
                foreach (string member in Enum.GetNames(type))
                    Add($"KVMS_{prefix}{Snake(member)}", ToUInt64(Enum.Parse(type, member)), $"{type.Name}.{member}");
            }
            else
            {
                foreach (FieldInfo f in AbiFields(type))
                    Add($"KVMS_{prefix}{Snake(f.Name)}", ToUInt64(f.GetRawConstantValue()!), $"{type.Name}.{f.Name}");
            }
        }
        foreach (string name in PrivateMemoryNames)
            Add("KVMS_" + name["KVM_".Length..], ToUInt64(typeof(KvmPara).GetField(name)!.GetRawConstantValue()!), $"KvmPara.{name}");
        foreach (var (name, value) in Aliases) Add(name, value, "alias");
        return constants;
    }

    private static IEnumerable<FieldInfo> AbiFields(Type type) =>
        type.GetFields(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly).Where(f => f.IsLiteral);

    private static ulong ToUInt64(object value) => value switch
    {
        long l => unchecked((ulong)l),
        int i => unchecked((ulong)i),
        Enum e => Convert.ToUInt64(e, CultureInfo.InvariantCulture),
        _ => Convert.ToUInt64(value, CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// PascalCase → UPPER_SNAKE_CASE: a break before a capital that follows a lower-case letter, or a digit that
    /// follows one (Com1Length → COM1_LENGTH, Leaf1EcxX2Apic → LEAF1_ECX_X2APIC, Pml4 → PML4).
    /// </summary>
    internal static string Snake(string pascal)
    {
        var text = new StringBuilder(pascal.Length + 8);
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (i > 0 && char.IsUpper(c))
            {
                char p = pascal[i - 1];
                if (char.IsLower(p) || (char.IsDigit(p) && i >= 2 && char.IsLower(pascal[i - 2]))) text.Append('_');
            }
            text.Append(char.ToUpperInvariant(c));
        }
        return text.ToString();
    }

    [Theory]
    [InlineData("CallDataEnd", "CALL_DATA_END")]
    [InlineData("Com1Length", "COM1_LENGTH")]
    [InlineData("Leaf1EcxX2Apic", "LEAF1_ECX_X2APIC")]
    [InlineData("Pml4", "PML4")]
    [InlineData("Ist1", "IST1")]
    [InlineData("FirstApplicationStatus", "FIRST_APPLICATION_STATUS")]
    public void Twin_names_are_upper_snake_case(string pascal, string snake) => Assert.Equal(snake, Snake(pascal));

    /// <summary>What the printer said: constants by name, and "offsetof s.f" / "sizeof s" lines.</summary>
    private sealed record HeaderValues(Dictionary<string, ulong>? Constants, Dictionary<string, ulong>? Layout, string? Unavailable)
    {
        public (Dictionary<string, ulong> Constants, Dictionary<string, ulong> Layout) OrSkip()
        {
            Skip.If(Constants is null, $"the header cannot be compiled: {Unavailable}");
            return (Constants!, Layout!);
        }
    }

    [GeneratedRegex(@"^#define (KVMS_[A-Z0-9_]+) ")]
    private static partial Regex ObjectLikeMacro();

    /// <summary>
    /// Lists the header's KVMS_ object-like macros with gcc -dM, then builds and runs a hosted C program that prints
    /// each one's value and the structs' layout (fields from the C# offset constants: a missing one fails gcc).
    /// </summary>
    private static HeaderValues Print(string? header)
    {
        var constants = new Dictionary<string, ulong>(StringComparer.Ordinal);
        var layout = new Dictionary<string, ulong>(StringComparer.Ordinal);
        var built = GccBuild.InTempDirectory(dir =>
        {
            string macros = GccBuild.Compile(dir, ["-E", "-dM", "-ffreestanding", "-x", "c", GuestSdk.HeaderFileName]);
            var names = macros.Split('\n').Select(l => ObjectLikeMacro().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal).ToList();
            var c = new StringBuilder("#include <stdio.h>\n#include <stddef.h>\n#include \"kvmsharp_guest.h\"\nint main(void)\n{\n");
            foreach (string name in names)
                c.Append(CultureInfo.InvariantCulture, $"    printf(\"%s %llu\\n\", \"{name}\", (unsigned long long)({name}));\n");
            foreach (var (s, type, _, notFields) in Structs)
            {
                foreach (FieldInfo f in AbiFields(type).Where(f => !notFields.Contains(f.Name)))
                {
                    string field = Snake(f.Name).ToLowerInvariant();
                    c.Append(CultureInfo.InvariantCulture, $"    printf(\"offsetof {s}.{field} %llu\\n\", (unsigned long long)offsetof(struct {s}, {field}));\n");
                }
                c.Append(CultureInfo.InvariantCulture, $"    printf(\"sizeof {s} %llu\\n\", (unsigned long long)sizeof(struct {s}));\n");
            }
            c.Append("    printf(\"sizeof kvms_call_region.args %llu\\n\", (unsigned long long)sizeof(((struct kvms_call_region *)0)->args));\n");
            c.Append("    printf(\"sizeof kvms_hostcall_block.args %llu\\n\", (unsigned long long)sizeof(((struct kvms_hostcall_block *)0)->args));\n");
            c.Append("    return 0;\n}\n");
            File.WriteAllText(Path.Combine(dir, "print.c"), c.ToString());
            // -Werror: a header that half-compiles must fail the test, not feed it partial numbers.
            GccBuild.Compile(dir, ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", "printer", "print.c"]);
            foreach (string line in GccBuild.Run(Path.Combine(dir, "printer"), [], dir).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                int space = line.LastIndexOf(' ');
                string key = line[..space];
                ulong value = ulong.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
                var into = key.StartsWith("KVMS_", StringComparison.Ordinal) ? constants : layout;
                if (!into.TryAdd(key, value)) throw new InvalidOperationException($"the printer printed {key} twice");
            }
            File.WriteAllText(Path.Combine(dir, "out"), "");
        }, header);
        return built.Output is null ? new HeaderValues(null, null, built.Unavailable) : new HeaderValues(constants, layout, null);
    }
}
