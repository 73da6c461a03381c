// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Emulation;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The batched console of a TD micro-VM (GUEST-ABI.md "Printing from a TD"): features bits 2 and 3 are set, the guest
/// copies what it prints into the shared console buffer at 0x28800 and OUTs to the console-write port, one exit per
/// 2 KiB chunk where an OUT per byte (or a REP OUTSB, which the #VE handler unrolls) costs one per byte. The host still
/// prints nothing of a console_ptr into private memory. On EmulatorConfig.X86_64(inPlaceConversion: true), as
/// TdMicroVmTests: no kernel here has TDX.
/// </summary>
public sealed class TdConsoleTests
{
    private const ulong Chunk = CallRegion.ConsoleBufferSize;

    /// <summary>A C guest of the SDK header: print(n) writes n pattern bytes with one kvms_write.</summary>
    private const string CSource = """
        #include "kvmsharp_guest.h"
        typedef kvms_u64 u64;
        static char text[12288];
        u64 print(u64 n)
        {
            if (n > sizeof text) return 1;
            for (u64 i = 0; i < n; i++) text[i] = (char)(' ' + (i * 7 + i / 95) % 95);
            kvms_write(text, n);
            return 0;
        }
        /* 40 kvms_printf calls: one console write each. */
        u64 printf_lines(void)
        {
            for (int i = 0; i < 40; i++) kvms_printf("line %02d: %s %llu\n", i, "the quick brown fox", (unsigned long long)i * 4097);
            return 0;
        }
        u64 features(void) { return kvms_features(); }
        void _start(void) { kvms_print("td console\n"); }
        """;

    /// <summary>What the C guest's print(n) prints.</summary>
    private static string Pattern(int n) => new([.. Enumerable.Range(0, n).Select(i => (char)(' ' + ((i * 7) + (i / 95)) % 95))]);

    private static int Chunks(int n) => (int)(((ulong)n + Chunk - 1) / Chunk);

    /// <summary>Runs <paramref name="body"/> on a TD micro-VM of <paramref name="image"/>, then checks nothing is left open.</summary>
    private static void OnTd(GuestImage image, Action<MicroVm> body)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var vm = MicroVm.Create(image, new MicroVmOptions { Kvm = kvm, VmType = VmType.Tdx, Timeout = TimeSpan.FromSeconds(60) }))
        {
            body(vm);
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    private static GuestImage? BuildCGuest(out string? unavailable)
    {
        var built = GccBuild.InTempDirectory(dir =>
        {
            File.WriteAllText(Path.Combine(dir, "td_console.c"), CSource);
            GccBuild.Compile(dir, [.. GuestSdk.CompilerArguments, "-Wall", "-Wextra", "-Werror", "-o", "out", "td_console.c"]);
        });
        unavailable = built.Unavailable;
        return built.Output is null ? null : GuestImage.Load(built.Output);
    }

    [SkippableFact]
    public void Kvms_write_in_a_td_prints_byte_exact_with_one_exit_per_2_kib_chunk()
    {
        GuestImage? image = BuildCGuest(out string? unavailable);
        Skip.If(image is null, $"gcc is not available: {unavailable}");
        OnTd(image, vm =>
        {
            var start = vm.Run();
            Assert.True(start.IsSuccess, start.ToString());
            Assert.Equal("td console\n", start.Console);
            Assert.Equal(2, start.Exits);                    // one console write, the return
            Assert.Equal(CallRegion.FeatureConsoleWrite | CallRegion.FeatureConsoleBuffer, vm.Call("features").Value);

            using var stats = vm.OpenVcpuStatistics();
            // Around the chunk size, a kilobyte (1 exit instead of 1 024) and a long output that arrives whole.
            foreach (int n in new[] { 1, 1024, (int)Chunk, (int)Chunk + 1, 10_000, 12_288 })
            {
                ulong ioBefore = stats.ReadValue("io_exits");
                var r = vm.Call("print", (ulong)n);
                Assert.True(r.IsSuccess && r.Value == 0, r.ToString());
                Assert.Equal(Pattern(n), r.Console);
                Assert.Equal(Chunks(n) + 1, r.Exits);        // one KVM_EXIT_IO per chunk, the return
                Assert.Equal((ulong)Chunks(n) + 1, stats.ReadValue("io_exits") - ioBefore);
            }

            var lines = vm.Call("printf_lines");
            Assert.True(lines.IsSuccess, lines.ToString());
            Assert.Equal(string.Concat(Enumerable.Range(0, 40).Select(i => $"line {i:D2}: the quick brown fox {i * 4097}\n")), lines.Console);
            Assert.Equal(41, lines.Exits);                   // one write per kvms_printf, the return
        });
    }

    /// <summary>
    /// Exports of an Iced guest: print_text(n) prints n bytes of <see cref="IcedText"/> (in the private image) with
    /// <see cref="GuestProgram.ConsoleWrite"/> and returns what it printed; raw_write(ptr, len) stores ptr and len
    /// as they are and OUTs to the port once, returning console_len afterwards; text() returns the text's address.
    /// </summary>
    private static GuestImage IcedGuest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), printText = p.Export("print_text"), rawWrite = p.Export("raw_write"), text = p.Export("text");
        Label bytes = a.CreateLabel("bytes");
        p.Place(ref start);
        p.ExitWith(0);

        p.Place(ref printText);
        a.lea(rsi, __[bytes]);
        a.mov(rcx, rdi);
        p.ConsoleWrite();
        a.ret();

        p.Place(ref rawWrite);
        a.mov(__qword_ptr[CallRegion.Address(CallRegion.ConsolePtr)], rdi);
        a.mov(__qword_ptr[CallRegion.Address(CallRegion.ConsoleLen)], rsi);
        a.mov(dx, Ports.ConsoleWrite);
        a.@out(dx, al);
        a.mov(rax, __qword_ptr[CallRegion.Address(CallRegion.ConsoleLen)]);
        a.ret();

        p.Place(ref text);
        a.lea(rax, __[bytes]);
        a.ret();

        a.Label(ref bytes);
        a.db(System.Text.Encoding.ASCII.GetBytes(IcedText));
        return p.Build(start);
    }

    private static readonly string IcedText = string.Concat(Enumerable.Range(0, 500).Select(i => $"{i:D4} td console line\n"))[..9000];

    [Fact]
    public void The_iced_console_write_helper_goes_through_the_console_buffer_in_a_td() => OnTd(IcedGuest(), vm =>
    {
        foreach (int n in new[] { 1, 100, (int)Chunk, 9000 })
        {
            var r = vm.Call("print_text", (ulong)n);
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal((ulong)n, r.Value);
            Assert.Equal(IcedText[..n], r.Console);
            Assert.Equal(Chunks(n) + 1, r.Exits);
        }
        // The bytes went through the shared buffer, which the host can read: the last chunk is still there.
        int last = 9000 - (int)(Chunk * (ulong)(Chunks(9000) - 1));
        byte[] buffer = new byte[last];
        vm.Memory.Read(CallRegion.ConsoleBuffer, buffer);
        Assert.Equal(IcedText[(9000 - last)..], System.Text.Encoding.ASCII.GetString(buffer));
    });

    [Fact]
    public void A_console_ptr_into_private_memory_prints_nothing_and_a_shared_one_prints() => OnTd(IcedGuest(), vm =>
    {
        ulong text = vm.Call("text").Value!.Value;
        Assert.False(vm.Memory.IsShared(text, 1));
        // The TD's own bytes (private): refused whole, console_len = 0, and the call goes on.
        var @private = vm.Call("raw_write", text, 20);
        Assert.True(@private.IsSuccess, @private.ToString());
        Assert.Equal((0UL, ""), (@private.Value!.Value, @private.Console));
        // All or nothing: a range from the shared call data into the private exception handlers' page.
        var straddling = vm.Call("raw_write", Layout.CallDataEnd - 16, 32);
        Assert.Equal((0UL, ""), (straddling.Value!.Value, straddling.Console));
        // Beyond guest memory, and on the unmapped stack guard.
        Assert.Equal(0UL, vm.Call("raw_write", vm.Memory.Size - 8, 16).Value);
        Assert.Equal(0UL, vm.Call("raw_write", Layout.StackGuard, 8).Value);
        // Any shared page will do, not only the console buffer: the input in the call data, printed in place.
        var shared = vm.Call("raw_write", "printed from the call data\n"u8);
        Assert.True(shared.IsSuccess, shared.ToString());
        Assert.Equal((27UL, "printed from the call data\n"), (shared.Value!.Value, shared.Console));
        Assert.Equal(2, shared.Exits);
        Assert.False(vm.IsFaulted);
    });
}
