// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Globalization;
using KvmSharp.Emulation;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;
using Xunit.Abstractions;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A differential test of the interpreters with compiled C: CGuest/corpus_guest.c (CRC-32, SHA-256, hashes, sorts
/// through function pointers, a bytecode interpreter with a jump table and computed gotos, 64- and 128-bit division,
/// bit tricks, a bignum, formatting, large structs by value, varargs, VLAs, alloca, over-aligned locals, deep
/// recursion, a UTF-8 state machine, narrow integers, string loops, matrices, bit fields; doubles and floats in the
/// fp_* parts) is portable C whose digests are the same on every ISA and at every optimisation level. The same file
/// built for this host (-DCORPUS_HOST) is the oracle; gcc builds it at -O0/-O2/-O3/-Os as an x86-64 guest for the
/// baseline, x86-64-v2 and x86-64-v3 (emulated kernel: kvm_pvm hands guest SSE/AVX to KVM's instruction emulator,
/// which stops), with -mgeneral-regs-only and without the fp_* parts (emulated kernel and /dev/kvm), and as an
/// aarch64 guest at -O0/-O2/-O3 and -O2 -march=armv8.1-a (FEAT_LSE atomics; emulated arm64 kernel). Every build
/// uses -ffp-contract=off (no FMA contraction on v3 and aarch64, so floating point is bit-identical) and
/// -fno-math-errno (sqrt inline, no libm), and links libgcc for the 128-bit division helpers (aarch64 with
/// -mno-outline-atomics: libgcc's outline atomics need getauxval; the inline LDAXR/STLXR loops run instead). Each
/// configuration is compiled once per test run; a failure names the parts (PARTS in corpus_guest.c) that differ.
/// </summary>
public sealed class CompiledCorpusTests(ITestOutputHelper output)
{
    private static readonly ulong[] Seeds = [1, 0xdead_beef_cafe_f00d];

    private static string Source => Path.Combine(AppContext.BaseDirectory, "CGuest", "corpus_guest.c");

    private static readonly string[] Portable = ["-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wextra", "-Werror"];

    /// <summary>One guest build: its compiler arguments, and whether it has the fp_* parts.</summary>
    private sealed record Config(string[] Flags, bool Arm64 = false, bool Fp = true)
    {
        public readonly Lazy<GccBuild.Result> Elf = new(() => GccBuild.InTempDirectory(dir => GccBuild.Compile(dir,
            [.. (Arm64 ? GuestSdk.Arm64CompilerArguments : GuestSdk.CompilerArguments).Where(a => a is not "-mgeneral-regs-only" and not "-O2"),
                .. Flags, .. Portable, .. Fp ? Array.Empty<string>() : ["-mgeneral-regs-only", "-DCORPUS_NO_FP"], "-o", "out", Source, "-lgcc"],
            Arm64 ? GuestSdk.Arm64Compiler : "gcc")));
    }

    private static readonly Dictionary<string, Config> Configs = new(StringComparer.Ordinal)
    {
        ["x86-64 -O0"] = new(["-O0"]),
        ["x86-64 -O2"] = new(["-O2"]),
        ["x86-64 -O3"] = new(["-O3"]),
        ["x86-64 -Os"] = new(["-Os"]),
        ["x86-64-v2 -O0"] = new(["-O0", "-march=x86-64-v2"]),
        ["x86-64-v2 -O2"] = new(["-O2", "-march=x86-64-v2"]),
        ["x86-64-v2 -O3"] = new(["-O3", "-march=x86-64-v2"]),
        ["x86-64-v2 -Os"] = new(["-Os", "-march=x86-64-v2"]),
        ["x86-64-v3 -O0"] = new(["-O0", "-march=x86-64-v3"]),
        ["x86-64-v3 -O2"] = new(["-O2", "-march=x86-64-v3"]),
        ["x86-64-v3 -O3"] = new(["-O3", "-march=x86-64-v3"]),
        ["x86-64-v3 -Os"] = new(["-Os", "-march=x86-64-v3"]),
        ["general-regs -O0"] = new(["-O0"], Fp: false),
        ["general-regs -O2"] = new(["-O2"], Fp: false),
        ["general-regs -O3"] = new(["-O3"], Fp: false),
        ["general-regs -Os"] = new(["-Os"], Fp: false),
        ["arm64 -O0"] = new(["-O0", "-mno-outline-atomics"], Arm64: true),
        ["arm64 -O2"] = new(["-O2", "-mno-outline-atomics"], Arm64: true),
        ["arm64 -O3"] = new(["-O3", "-mno-outline-atomics"], Arm64: true),
        ["arm64 -O2 armv8.1-a"] = new(["-O2", "-march=armv8.1-a", "-mno-outline-atomics"], Arm64: true), // FEAT_LSE atomics inline
    };

    /// <summary>The configurations of one theory, compiled side by side (gcc is most of the time of a cold run).</summary>
    private static readonly Dictionary<string, Lazy<bool>> Families = new(StringComparer.Ordinal)
    {
        ["x86-64"] = new(() => Prebuild(n => !n.StartsWith("arm64", StringComparison.Ordinal))),
        ["general-regs"] = new(() => Prebuild(n => n.StartsWith("general-regs", StringComparison.Ordinal))),
        ["arm64"] = new(() => Prebuild(n => n.StartsWith("arm64", StringComparison.Ordinal))),
    };

    private static bool Prebuild(Func<string, bool> family)
    {
        Parallel.ForEach(Configs.Where(c => family(c.Key)), new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
            c => _ = c.Value.Elf.Value);
        return true;
    }

    /// <summary>The digests of one host build: per seed, the parts in order (name, digest).</summary>
    private sealed record Digests((string Name, ulong Value)[][] BySeed);

    /// <summary>The host build at the given flags, run on <see cref="Seeds"/>; null with the reason when it cannot be made.</summary>
    private static (Digests? Digests, string? Unavailable) Native(string[] flags)
    {
        string? text = null;
        var built = GccBuild.InTempDirectory(dir =>
        {
            GccBuild.Compile(dir, ["-std=gnu11", .. flags, .. Portable, "-DCORPUS_HOST", "-o", "host", Source]);
            text = GccBuild.Run(Path.Combine(dir, "host"), Seeds.Select(s => s.ToString(CultureInfo.InvariantCulture)), dir);
            File.WriteAllText(Path.Combine(dir, "out"), "");
        });
        if (built.Output is null) return (null, built.Unavailable);
        var lines = text!.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')).Select(p => (p[0], ulong.Parse(p[1], CultureInfo.InvariantCulture))).ToArray();
        Assert.Equal(0, lines.Length % Seeds.Length);
        return (new Digests([.. lines.Chunk(lines.Length / Seeds.Length)]), null);
    }

    /// <summary>The oracle: the corpus built for this host with gcc -O2.</summary>
    private static readonly Lazy<(Digests? Digests, string? Unavailable)> Reference = new(() => Native(["-O2"]));

    private static Digests Expected()
    {
        var (digests, why) = Reference.Value;
        Skip.If(digests is null, $"the host build of the corpus cannot be made: {why}");
        return digests!;
    }

    private static ulong Mix(ulong h, ulong v)
    {
        h ^= v;
        h = unchecked(h * 0x100000001b3UL);
        return h ^ (h >> 29);
    }

    [SkippableTheory]
    [InlineData("-O0")]
    [InlineData("-Os")]
    [InlineData("-O3")]
    [InlineData("-O3 -march=x86-64-v2")]
    [InlineData("-O3 -march=x86-64-v3")]
    public void Natively_every_level_computes_the_reference_digests_so_the_corpus_is_portable(string flags)
    {
        var expected = Expected();
        Skip.If(flags.Contains("v3", StringComparison.Ordinal) && !(System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported
            && System.Runtime.Intrinsics.X86.Bmi2.IsSupported && System.Runtime.Intrinsics.X86.Lzcnt.IsSupported),
            "this host's CPU is below x86-64-v3: it cannot run the v3 host build");
        var (native, why) = Native(flags.Split(' '));
        Skip.If(native is null, $"the host build cannot be made: {why}");
        for (int s = 0; s < Seeds.Length; s++)
            Assert.Equal(expected.BySeed[s], native!.BySeed[s]);
    }

    [SkippableTheory]
    [InlineData("x86-64 -O0")]
    [InlineData("x86-64 -O2")]
    [InlineData("x86-64 -O3")]
    [InlineData("x86-64 -Os")]
    [InlineData("x86-64-v2 -O0")]
    [InlineData("x86-64-v2 -O2")]
    [InlineData("x86-64-v2 -O3")]
    [InlineData("x86-64-v2 -Os")]
    [InlineData("x86-64-v3 -O0")]
    [InlineData("x86-64-v3 -O2")]
    [InlineData("x86-64-v3 -O3")]
    [InlineData("x86-64-v3 -Os")]
    [InlineData("general-regs -O0")]
    [InlineData("general-regs -O2")]
    [InlineData("general-regs -O3")]
    [InlineData("general-regs -Os")]
    public void An_x86_64_build_computes_the_host_digests_on_the_emulated_kernel(string config)
    {
        _ = Families["x86-64"].Value;
        using var k = TestKernel.Open(TestKernel.EmulatedName);
        RunAndCompare(config, image => MicroVm.Create(image, k.Options(null, GuestRun.Quick with { Timeout = TimeSpan.FromSeconds(120) })));
    }

    [SkippableTheory]
    [InlineData("general-regs -O0")]
    [InlineData("general-regs -O2")]
    [InlineData("general-regs -O3")]
    [InlineData("general-regs -Os")]
    public void A_general_register_build_computes_the_host_digests_on_the_real_kernel(string config)
    {
        // Only the -mgeneral-regs-only builds (no fp_* parts): kvm_pvm hands guest SSE/AVX to KVM's instruction
        // emulator, which stops (ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator); the SSE/AVX builds and the
        // floating-point parts run on the emulated kernel only.
        _ = Families["general-regs"].Value;
        using var k = TestKernel.Open(TestKernel.RealName);
        RunAndCompare(config, image => MicroVm.Create(image, k.Options(null, GuestRun.Quick with { Timeout = TimeSpan.FromSeconds(60) })));
    }

    [SkippableTheory]
    [InlineData("arm64 -O0")]
    [InlineData("arm64 -O2")]
    [InlineData("arm64 -O3")]
    [InlineData("arm64 -O2 armv8.1-a")]
    public void An_arm64_build_computes_the_host_digests_on_the_emulated_arm64_kernel(string config)
    {
        _ = Families["arm64"].Value;
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64());
        using (var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals))
            RunAndCompare(config, image => MicroVm.Create(image, new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(120) }));
        Assert.Equal(0, kernel.OpenFdCount);
    }

    private void RunAndCompare(string name, Func<GuestImage, MicroVm> create)
    {
        var config = Configs[name];
        var expected = Expected();
        var elf = config.Elf.Value;
        Skip.If(elf.Output is null, $"the {name} guest cannot be built: {elf.Unavailable}");
        var clock = Stopwatch.StartNew();
        using var vm = create(GuestImage.Load(elf.Output!));
        Assert.Equal(GuestOutcome.Exit, vm.Run().Outcome);
        // The fp_* parts come last; a build without floating point has the others.
        int parts = config.Fp ? expected.BySeed[0].Length : expected.BySeed[0].Count(p => !p.Name.StartsWith("fp_", StringComparison.Ordinal));
        Assert.Equal((ulong)parts, GuestRun.Value(vm, "corpus_parts"));
        var failures = new List<string>();
        // arm64 -O0 is the slowest run by far (about 5 times the instructions of -O2, on the A64 interpreter): one seed.
        int seeds = name == "arm64 -O0" ? 1 : Seeds.Length;
        for (int s = 0; s < seeds; s++)
        {
            var want = expected.BySeed[s].Take(parts).ToArray();
            ulong all = want.Aggregate(0xcbf29ce484222325UL, (h, p) => Mix(h, p.Value));
            var whole = vm.Call("corpus_all", Seeds[s]);
            if (whole.IsSuccess && whole.Value == all) continue;
            if (!whole.IsSuccess) vm.Reset();
            // Which part (PARTS in corpus_guest.c) computes something else, or stops?
            for (int p = 0; p < parts; p++)
            {
                var r = vm.Call("corpus_part", Seeds[s], (ulong)p);
                if (!r.IsSuccess)
                {
                    failures.Add($"seed {Seeds[s]}: {want[p].Name} stopped ({r.Detail})");
                    vm.Reset();
                }
                else if (r.Value != want[p].Value) failures.Add($"seed {Seeds[s]}: {want[p].Name} = 0x{r.Value:X16}, the host's 0x{want[p].Value:X16}");
            }
            if (failures.Count == 0) failures.Add($"seed {Seeds[s]}: corpus_all ({whole.Detail}) differs from 0x{all:X16} but every part agrees");
        }
        output.WriteLine($"{name}: {parts} parts × {seeds} seeds in {clock.Elapsed.TotalSeconds:F2} s (build {(config.Fp ? "with" : "without")} fp_* parts)");
        Assert.True(failures.Count == 0, $"{name}: {string.Join("; ", failures)}");
    }
}
