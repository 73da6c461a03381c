// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// arm64 C guests (GUEST-ABI.md, "arm64 C guests"): CGuest/arm64_guest.c built by aarch64-linux-gnu-gcc with
/// <see cref="GuestSdk.Arm64CompilerArguments"/> — once as given (general registers only) and once with FP/SIMD
/// allowed and -O3 (so gcc vectorises and the interpreter runs compiled FP/SIMD code) — loaded as ELF64 EM_AARCH64
/// and run in an arm64 micro-VM on the emulated arm64 kernel (this x86 machine has no arm64 KVM). Skips, with the
/// reason, where the cross compiler (package gcc-aarch64-linux-gnu) is missing.
/// </summary>
public sealed partial class Arm64CGuestTests
{
    /// <summary>The two builds: "general" = the SDK's arguments; "fpsimd" = without -mgeneral-regs-only, at -O3.</summary>
    public static TheoryData<string> Variants => new() { "general", "fpsimd" };

    private static readonly Dictionary<string, Lazy<GccBuild.Result>> Built = new(StringComparer.Ordinal)
    {
        ["general"] = new(() => Build([.. GuestSdk.Arm64CompilerArguments])),
        ["fpsimd"] = new(() => Build([.. GuestSdk.Arm64CompilerArguments.Where(a => a != "-mgeneral-regs-only").Select(a => a == "-O2" ? "-O3" : a)])),
    };

    private static GccBuild.Result Build(string[] args)
    {
        string source = Path.Combine(AppContext.BaseDirectory, "CGuest", "arm64_guest.c");
        return GccBuild.InTempDirectory(dir =>
            GccBuild.Compile(dir, [.. args, "-Wall", "-Wextra", "-Werror", "-o", "out", source], GuestSdk.Arm64Compiler));
    }

    private static byte[] Elf(string variant)
    {
        var built = Built[variant].Value;
        Skip.If(built.Output is null, $"{GuestSdk.Arm64Compiler} (package gcc-aarch64-linux-gnu) is not available: {built.Unavailable}");
        return built.Output!;
    }

    private static void OnArm64(Action<Kvm> body) => Arm64Kernel.Run(body);

    private static MicroVm Create(Kvm kvm, string variant) =>
        MicroVm.Create(GuestImage.Load(Elf(variant)), new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(60) });

    private static ulong Value(MicroVm vm, string name, params ulong[] args)
    {
        var r = vm.Call(name, args);
        Assert.True(r.IsSuccess, $"{name}: {r}");
        return r.Value!.Value;
    }

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void The_elf_is_an_aarch64_image_with_its_functions_exported(string variant)
    {
        var image = GuestImage.Load(Elf(variant));
        Assert.Equal(GuestImageKind.Elf, image.Kind);
        Assert.Equal(GuestArchitecture.Arm64, image.Architecture);
        Assert.Equal(image.Exports["_start"], image.Entry);
        Assert.Contains("checksum", image.Exports.Keys);
        Assert.All(image.Segments, s => Assert.True(s.Address >= Arch.X86_64.Layout.ImageBase));
    }

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void Start_prints_hello_on_the_console_and_exits_with_its_status(string variant) => OnArm64(kvm =>
    {
        using var vm = Create(kvm, variant);
        Assert.Equal(GuestArchitecture.Arm64, vm.Architecture);
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(7, r.Status);
        Assert.Equal("hello from arm64 gcc\n", r.Console);
    });

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void Calls_take_six_arguments_and_keep_data_bss_and_the_stack(string variant) => OnArm64(kvm =>
    {
        using var vm = Create(kvm, variant);
        Assert.Equal(1UL + 2 * 2 + 3 * 3 + 4 * 4 + 5 * 5 + 6 * 6, Value(vm, "add6", 1, 2, 3, 4, 5, 6));
        Assert.Equal(1UL, Value(vm, "bump"));
        Assert.Equal(2UL, Value(vm, "bump"));                      // .bss persists between calls
        Assert.Equal(6765UL, Value(vm, "fib", 20));                  // recursion: STP/LDP frames on the stack
        Assert.Equal(15UL, Value(vm, "name_length"));               // .rodata through ADRP
        Assert.Equal(unchecked((ulong)(-7L / 2 + -7L % 2)), Value(vm, "divide", unchecked((ulong)-7L), 2));
        Assert.Equal(ulong.MaxValue, Value(vm, "divide", 5, 0));
    });

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void Checksums_over_the_input_buffer_match_the_same_computation_in_csharp(string variant) => OnArm64(kvm =>
    {
        using var vm = Create(kvm, variant);
        var random = new Random(20261206);
        foreach (int length in new[] { 0, 1, 7, 64, 1000, 4099 })
        {
            byte[] input = new byte[length];
            random.NextBytes(input);
            var r = vm.Call("checksum", input);
            Assert.True(r.IsSuccess, r.ToString());
            Assert.True(Checksum(input) == r.Value, $"checksum of {length} bytes: C# 0x{Checksum(input):X}, guest 0x{r.Value:X}");

            byte[] words = new byte[length / 4 * 4];
            input.AsSpan(0, words.Length).CopyTo(words);
            var w = vm.Call("words", words);
            Assert.True(w.IsSuccess, w.ToString());
            Assert.True(Words(words) == w.Value, $"words of {words.Length} bytes: C# 0x{Words(words):X}, guest 0x{w.Value:X}");
        }
    });

    [SkippableFact]
    public void Floating_point_code_runs_once_the_vmm_enabled_fp_simd() => OnArm64(kvm =>
    {
        using var vm = Create(kvm, "fpsimd");
        Assert.Contains("mean_scaled", vm.Image.Exports.Keys);
        byte[] input = [10, 20, 30, 41];
        var r = vm.Call("mean_scaled", input);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal((ulong?)((10 * 0.5 + 20 * 0.5 + 30 * 0.5 + 41 * 0.5) / 4 * 1000.0), r.Value);
    });

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void Print_helpers_and_output_bytes_work_over_the_port_window(string variant) => OnArm64(kvm =>
    {
        using var vm = Create(kvm, variant);
        var p = vm.Call("print_numbers", 1234567890);
        Assert.True(p.IsSuccess, p.ToString());
        Assert.Equal("1234567890 -1234567890 0x499602D2\n", p.Console);
        Assert.Equal((ulong)GuestAbi.CallRegion.VersionValue, p.Value);
        var reversed = vm.Call("reverse", "hello, arm64"u8);
        Assert.True(reversed.IsSuccess, reversed.ToString());
        Assert.Equal(0UL, reversed.Value);
        Assert.Equal("46mra ,olleh"u8.ToArray(), reversed.Output.ToArray());
    });

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void A_host_call_resolves_a_function_by_name_and_calls_it(string variant) => OnArm64(kvm =>
    {
        using var vm = Create(kvm, variant);
        Assert.Equal(~(ulong)HostCalls.HostCallStatus.UnknownFunction, Value(vm, "ask_host", 6, 7));
        vm.HostFunctions.Add("mul", (a, b) => a * b);
        Assert.Equal(42UL, Value(vm, "ask_host", 6, 7));
    });

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void Exit_from_a_call_is_the_outcome_exit_with_the_status(string variant) => OnArm64(kvm =>
    {
        using var vm = Create(kvm, variant);
        var r = vm.Call("finish", 42);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(42, r.Status);
        Assert.False(vm.IsFaulted);
        Assert.Equal(3UL, Value(vm, "add6", 1, 1, 0, 0, 0, 0));
    });

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void A_store_beyond_the_ipa_space_is_a_data_abort_and_builtin_trap_a_brk(string variant) => OnArm64(kvm =>
    {
        using var vm = Create(kvm, variant);
        var r = vm.Call("store_far", 5);
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(0x25u, Arm64Exceptions.ExceptionClass(r.Exception!.ErrorCode!.Value));
        Assert.Equal(0x100_0000_0000UL, r.Exception.Cr2);
        ulong storeFar = vm.Image.Exports["store_far"];
        Assert.InRange(r.Exception.Rip, storeFar, storeFar + 16); // the STR after the address is built
        Assert.Contains("data abort", r.Detail, StringComparison.Ordinal);
        Assert.True(vm.IsFaulted);

        vm.Reset();
        var t = vm.Call("trap");
        Assert.Equal(GuestOutcome.Exception, t.Outcome);
        Assert.Equal(0x3Cu, Arm64Exceptions.ExceptionClass(t.Exception!.ErrorCode!.Value));
        Assert.Equal(vm.Image.Exports["trap"], t.Exception.Rip);
    });

    [SkippableTheory]
    [MemberData(nameof(Variants))]
    public void A_null_dereference_and_a_stack_overflow_are_data_aborts_at_the_guard_pages(string variant) => OnArm64(kvm =>
    {
        // The MMU is on (Arch/Arm64/Layout.cs): the null page and the stack guard are not mapped.
        using var vm = Create(kvm, variant);
        var r = vm.Call("checksum", [0, 16]);
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(0x25u, Arm64Exceptions.ExceptionClass(r.Exception!.ErrorCode!.Value));
        Assert.Equal(0x07UL, r.Exception.ErrorCode & 0x3F); // DFSC: translation fault, level 3
        Assert.Equal(0UL, r.Exception.Cr2);
        Assert.Contains("data abort", r.Detail, StringComparison.Ordinal);

        vm.Reset();
        var s = vm.Call("overflow", [1]);
        Assert.Equal(GuestOutcome.Exception, s.Outcome);
        Assert.Equal(0x25u, Arm64Exceptions.ExceptionClass(s.Exception!.ErrorCode!.Value));
        Assert.Equal(0x07UL, s.Exception.ErrorCode & 0x3F);
        Assert.InRange(s.Exception.Cr2!.Value, Layout.StackGuard, Layout.StackBottom - 1);
        Assert.True(vm.IsFaulted);

        vm.Reset();
        Assert.Equal(6765UL, Value(vm, "fib", 20));
    });

    [SkippableFact]
    public void The_sdk_guest_of_the_x86_tests_builds_for_arm64_unchanged_and_its_helpers_answer_there() => OnArm64(kvm =>
    {
        // CGuest/sdk_guest.c (SdkGuestTests' guest, written for x86-64) compiles for arm64 as it is: the API is the same.
        var built = GccBuild.Arm64Guest("sdk_guest.c");
        Skip.If(built.Output is null, $"{GuestSdk.Arm64Compiler}: {built.Unavailable}");
        using var vm = MicroVm.Create(GuestImage.Load(built.Output!), new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(60) });
        var start = vm.Run();
        Assert.Equal(GuestOutcome.Exit, start.Outcome);
        Assert.Equal($"sdk guest, ABI {GuestAbi.CallRegion.VersionValue}\n", start.Console);
        Assert.Equal("18446744073709551615 1 0xFFFFFFFFFFFFFFFF\n", vm.Call("print_numbers", ulong.MaxValue).Console);
        Assert.Equal(3_000_000UL + 6, Value(vm, "sum_args", 1, 2, 3));
        Assert.Equal(GuestAbi.CallRegion.FeatureConsoleWrite, Value(vm, "features"));   // no private memory on arm64
        var longPrint = vm.Call("print_long", 4000);
        Assert.Equal(string.Concat(Enumerable.Range(0, 4000).Select(i => (char)('0' + (i % 10)))), longPrint.Console);
        Assert.Equal(2, longPrint.Exits);                           // one store to the console-write port, the return
        Assert.NotEqual(0UL, Value(vm, "tsc_khz"));                 // CNTFRQ_EL0 / 1000
        Assert.Equal(1UL, Value(vm, "tsc_and_cpuid"));              // CNTVCT_EL0 moves; kvms_cpuid reads zeros
        Assert.Equal(unchecked((ulong)-1000L), Value(vm, "private_roundtrip")); // -KVMS_ENOSYS, no hypercall
        Assert.Equal(1_000_000UL, Value(vm, "tsc_to_us", 3_000_000, 3000));
        var exit = vm.Call("exit_with", 9);
        Assert.Equal(GuestOutcome.Exit, exit.Outcome);
        Assert.Equal(9, exit.Status);
    });

    [SkippableFact]
    public void An_x86_elf_is_refused_by_an_arm64_micro_vm_and_an_arm64_elf_by_an_x86_one()
    {
        var arm64 = GuestImage.Load(Elf("general"));
        var x86 = Guests.DemoGuests.Find("hello", GuestArchitecture.X86_64)!.Image();
        OnArm64(kvm =>
        {
            var e = Assert.Throws<GuestImageException>(() => { using var vm = MicroVm.Create(x86, new MicroVmOptions { Kvm = kvm }); });
            Assert.Equal(GuestImageError.WrongArchitecture, e.Error);
            Assert.Contains("EM_X86_64", e.Message, StringComparison.Ordinal);
            Assert.Contains("Arm64", e.Message, StringComparison.Ordinal);
        });
        using var kernel = TestKernel.Emulated();
        var wrong = Assert.Throws<GuestImageException>(() => { using var vm = MicroVm.Create(arm64, kernel.Options(null)); });
        Assert.Equal(GuestImageError.WrongArchitecture, wrong.Error);
        Assert.Contains("EM_AARCH64", wrong.Message, StringComparison.Ordinal);
        Assert.Contains("X86_64", wrong.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Another_machine_is_refused_with_both_supported_machines_named()
    {
        byte[] elf = Elf("general").ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(18), 40); // EM_ARM
        var e = Assert.Throws<GuestImageException>(() => GuestImage.Load(elf));
        Assert.Equal(GuestImageError.Unsupported, e.Error);
        Assert.Contains("e_machine 40 is neither EM_X86_64 (62) nor EM_AARCH64 (183)", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void The_headers_arm64_constants_are_the_twins_of_the_arm64_layout()
    {
        // aarch64 gcc lists the KVMS_ARM64_ macros (only defined for __aarch64__); each is Arch/Arm64/Layout's constant
        // of the same name (KVMS_ARM64_ + UPPER_SNAKE_CASE), both ways.
        string? macros = null;
        var built = GccBuild.InTempDirectory(dir =>
        {
            File.WriteAllText(Path.Combine(dir, "m.c"), "#include \"kvmsharp_guest.h\"\n");
            macros = GccBuild.Compile(dir, ["-dM", "-E", "m.c"], GuestSdk.Arm64Compiler);
            File.WriteAllText(Path.Combine(dir, "out"), "");
        });
        Skip.If(built.Output is null, $"{GuestSdk.Arm64Compiler}: {built.Unavailable}");
        var header = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (Match m in ArmMacro().Matches(macros!))
            header[m.Groups[1].Value] = ulong.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var expected = typeof(Layout).GetFields(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Where(f => f.IsLiteral)
            .ToDictionary(f => "KVMS_ARM64_" + Snake(f.Name), f => Convert.ToUInt64(f.GetRawConstantValue(), CultureInfo.InvariantCulture), StringComparer.Ordinal);
        Assert.Equal(expected.OrderBy(p => p.Key, StringComparer.Ordinal), header.OrderBy(p => p.Key, StringComparer.Ordinal));
    }

    private static string Snake(string name) => UpperBoundary().Replace(name, "_$1").ToUpperInvariant();

    [GeneratedRegex(@"#define (KVMS_ARM64_\w+) 0x([0-9A-Fa-f]+)ull")]
    private static partial Regex ArmMacro();

    [GeneratedRegex(@"(?<=[a-z0-9])([A-Z])")]
    private static partial Regex UpperBoundary();

    /// <summary>checksum() of arm64_guest.c.</summary>
    private static ulong Checksum(byte[] p)
    {
        ulong[] weights = [1, 10, 100, 1000];
        ulong h = 0xcbf29ce484222325UL, w = 0;
        for (int i = 0; i < p.Length; i++)
        {
            h = unchecked((h ^ p[i]) * 0x100000001b3UL);
            w += p[i] * weights[i % 4];
        }
        ulong n = (ulong)p.Length;
        return h ^ (w << 1) ^ (n / 3) ^ (n % 7);
    }

    /// <summary>words() of arm64_guest.c.</summary>
    private static ulong Words(byte[] bytes)
    {
        ulong squares = 0;
        uint max = 0, min = uint.MaxValue, odd = 0;
        for (int i = 0; i + 4 <= bytes.Length; i += 4)
        {
            uint v = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i));
            squares = unchecked(squares + (ulong)v * v);
            max = Math.Max(max, v);
            min = Math.Min(min, v);
            odd += v & 1;
        }
        return squares ^ ((ulong)max << 32) ^ min ^ ((ulong)odd << 48);
    }
}
