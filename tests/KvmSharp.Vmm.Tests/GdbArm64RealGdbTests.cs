// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text.RegularExpressions;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;
using static KvmSharp.Vmm.Tests.GdbTestHost;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Real gdb against the arm64 stub: gdb-multiarch (the installed gdb has no aarch64 support) in batch mode, with the
/// symbols and line info of a C guest built by aarch64-linux-gnu-gcc at -O0 -g, on an arm64 micro-VM on the emulated
/// arm64 kernel. gdb reads the stub's target description (aarch64 core and fpu features), sets breakpoints (Z0 from
/// <c>break</c>, Z1 from <c>hbreak</c>: both the host's hardware breakpoints, guest memory untouched), steps, finishes
/// a frame, reads and writes variables and registers (v0 as gdb's aarch64v union, fpcr), and watches a variable through
/// the host's watchpoint registers (Z2–Z4, stopped before the access; gdb steps over it and reports the values). Each
/// test changes the call's result through gdb and checks it. Skips, with the reason, without gdb-multiarch or the
/// cross compiler.
/// </summary>
public sealed partial class GdbArm64RealGdbTests
{
    /// <summary>
    /// compute(4, 6): local = 10, watched = 10 (a write), seen = watched (a read), helper(10) = 31, and
    /// 31 + watched (a read) = 41. lanes() = v0's low doubleword + fpcr.
    /// </summary>
    private const string Source = """
        #include "kvmsharp_guest.h"
        typedef kvms_u64 u64;

        u64 watched = 5;
        u64 scale = 3;

        u64 helper(u64 x)
        {
            u64 y = x * scale;
            return y + 1;
        }

        u64 compute(u64 a, u64 b)
        {
            u64 local = a + b;
            watched = local;
            u64 seen = watched;
            local = helper(seen);
            return local + watched;
        }

        u64 lanes(void)
        {
            u64 low, control;
            __asm__ volatile("fmov %0, d0" : "=r"(low));
            __asm__ volatile("mrs %0, fpcr" : "=r"(control));
            return low + control;
        }

        void _start(void)
        {
            kvms_exit(0);
        }
        """;

    private const string SourceName = "gdb_guest.c";

    /// <summary>The SDK's arm64 arguments at -O0 -g (variables in memory, a line table), FP/SIMD allowed.</summary>
    private static readonly Lazy<GccBuild.Result> Built = new(() => GccBuild.InTempDirectory(dir =>
    {
        File.WriteAllText(Path.Combine(dir, SourceName), Source);
        GccBuild.Compile(dir,
            [.. GuestSdk.Arm64CompilerArguments.Where(a => a is not ("-O2" or "-mgeneral-regs-only")), "-O0", "-g",
             "-Wall", "-Wextra", "-Werror", "-o", "out", SourceName],
            GuestSdk.Arm64Compiler);
    }));

    /// <summary>
    /// Runs <paramref name="call"/> on an arm64 micro-VM of the guest under gdb-multiarch with <paramref name="commands"/>
    /// (the ELF as gdb's symbol file, the source beside it); returns gdb's output and the call's result.
    /// </summary>
    private static (string Output, CallResult Result) UnderGdb(Func<MicroVm, CallResult> call, params string[] commands)
    {
        SkipUnlessGdbMultiarch();
        GccBuild.Result built = Built.Value;
        Skip.If(built.Output is null, $"{GuestSdk.Arm64Compiler} (package gcc-aarch64-linux-gnu) is not available: {built.Unavailable}");
        string dir = Directory.CreateTempSubdirectory("kvmsharp-gdb-arm64").FullName;
        try
        {
            string elf = Path.Combine(dir, "guest.elf");
            File.WriteAllBytes(elf, built.Output!);
            File.WriteAllText(Path.Combine(dir, SourceName), Source);
            string output = "";
            CallResult? result = null;
            Arm64Kernel.Run(kvm =>
            {
                using var vm = MicroVm.Create(GuestImage.Load(built.Output!), Arm64Kernel.Options(kvm) with { GdbEndpoint = AnyLoopbackPort });
                Task<CallResult> task = Task.Run(() => call(vm));
                output = RunRealGdb(new RealGdb(GdbMultiarchPath!, "aarch64", elf), vm.DebuggerEndpoint!, [$"directory {dir}", .. commands]);
                result = Finish(task);
            });
            return (output, result!);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex(@"Breakpoint 1 at 0x([0-9a-f]+): file gdb_guest\.c, line 9\.")]
    private static partial Regex HelperBreakpoint();

    /// <summary>
    /// gdb connects at the call's first stop, the trampoline (no symbols there); <c>break helper</c> (after its prologue, line 9) is sent as Z0 and taken as a hardware breakpoint: the
    /// instruction there reads back unchanged; <c>continue</c> stops there; <c>bt</c> shows helper(x=10) called from
    /// compute(a=4, b=6) at line 18; <c>info registers</c> shows x0 = 10 and pc at the breakpoint; <c>print</c> and
    /// <c>set var</c> change x to 20; <c>finish</c> returns 61 (20 × 3 + 1) to compute, which returns 61 + 10.
    /// </summary>
    [SkippableFact]
    public void Real_gdb_breaks_at_a_function_and_finish_returns_the_value_set_with_set_var()
    {
        (string output, CallResult r) = UnderGdb(vm => vm.Call("compute", 4, 6),
            "set debug remote 1",
            "break helper",
            "continue",
            "bt",
            "info registers",
            "x/wx $pc",
            "print x",
            "set var x = 20",
            "print x",
            "finish",
            "continue");
        Assert.Contains($"0x{Arch.Arm64.Layout.Trampoline:x16} in ?? ()", output, StringComparison.Ordinal);
        Match at = HelperBreakpoint().Match(output);
        Assert.True(at.Success, output);
        ulong breakpoint = ulong.Parse(at.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        Assert.Contains($"Sending packet: $Z0,{breakpoint:x},4#", output, StringComparison.Ordinal);
        Assert.Contains("Packet Z0 (software-breakpoint) is supported", output, StringComparison.Ordinal);
        Assert.Contains("Breakpoint 1, helper (x=10) at gdb_guest.c:9", output, StringComparison.Ordinal);
        Assert.Contains("9\t    u64 y = x * scale;", output, StringComparison.Ordinal);
        Assert.Contains("#0  helper (x=10) at gdb_guest.c:9", output, StringComparison.Ordinal);
        Assert.Matches(@"#1  0x[0-9a-f]+ in compute \(a=4, b=6\) at gdb_guest\.c:18", output);
        Assert.Matches(@"x0 +0xa +10\n", output);
        Assert.Matches(@"x30 +0x[0-9a-f]+ ", output);
        Assert.Matches($@"pc +0x{breakpoint:x} +0x{breakpoint:x} <helper\+\d+>", output);
        Assert.Matches(@"cpsr +0x3c5 +\[ SP EL=1 F I A D BTYPE=0 \]", output); // EL1h, DAIF masked: the trampoline's PSTATE
        // Not a BRK (0xd42xxxxx) written over the instruction: the breakpoint is in the host's debug registers.
        Assert.Matches($@"0x{breakpoint:x} <helper\+\d+>:\s+0x(?!d42)[0-9a-f]{{8}}", output);
        Assert.Contains("$1 = 10", output, StringComparison.Ordinal);
        Assert.Contains("$2 = 20", output, StringComparison.Ordinal);
        Assert.Matches(@"\n0x[0-9a-f]+ in compute \(a=4, b=6\) at gdb_guest\.c:18\n18\t    local = helper\(seen\);", output);
        Assert.Contains("Value returned is $3 = 61", output, StringComparison.Ordinal);
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 71UL, output);
    }

    /// <summary>
    /// <c>hbreak compute</c> is sent as Z1; <c>step</c> goes line by line (15 → 16), <c>stepi</c> one instruction
    /// within a line (the pc 4 bytes on), <c>step</c> through lines 17 and 18 into helper (gdb's step into a call);
    /// <c>up</c> to compute's frame and <c>set var</c> there change watched, which compute reads after the call: it
    /// returns helper(10) + 50.
    /// </summary>
    [SkippableFact]
    public void Real_gdb_hbreak_steps_lines_and_instructions_and_steps_into_a_call()
    {
        (string output, CallResult r) = UnderGdb(vm => vm.Call("compute", 4, 6),
            "set debug remote 1",
            "hbreak compute",
            "continue",
            "step",
            "printf \"before=%lx\\n\", $pc",
            "stepi",
            "printf \"after=%lx\\n\", $pc",
            "step",
            "step",
            "step",
            "up",
            "set var watched = 50",
            "print watched",
            "delete",
            "continue");
        Assert.Contains("Hardware assisted breakpoint 1 at", output, StringComparison.Ordinal);
        Assert.Matches(@"Sending packet: \$Z1,[0-9a-f]+,4#", output);
        Assert.Contains("Breakpoint 1, compute (a=4, b=6) at gdb_guest.c:15", output, StringComparison.Ordinal);
        Assert.Contains("16\t    watched = local;", output, StringComparison.Ordinal);
        ulong before = Hex(Regex.Match(output, "before=([0-9a-f]+)"));
        ulong after = Hex(Regex.Match(output, "after=([0-9a-f]+)"));
        Assert.Equal(before + 4, after);
        Assert.Contains("17\t    u64 seen = watched;", output, StringComparison.Ordinal);
        Assert.Contains("18\t    local = helper(seen);", output, StringComparison.Ordinal);
        Assert.Contains("helper (x=10) at gdb_guest.c:9", output, StringComparison.Ordinal);
        Assert.Matches(@"#1  0x[0-9a-f]+ in compute \(a=4, b=6\) at gdb_guest\.c:18", output);
        Assert.Contains("$1 = 50", output, StringComparison.Ordinal);
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 31UL + 50, output);
    }

    /// <summary>
    /// <c>watch</c> stops at compute's store to watched (Old value = 5, New value = 10, then at line 17);
    /// <c>rwatch</c> at the load of line 17 (Value = 10), after which gdb sets watched to 100; <c>awatch</c> at the load
    /// of line 19 (Value = 100). Z2, Z3 and Z4 go to the host's watchpoint registers (gdb says "Hardware … watchpoint")
    /// and each stop reply names its kind; compute returns helper(10) + 100.
    /// </summary>
    [SkippableFact]
    public void Real_gdb_watch_rwatch_and_awatch_stop_at_the_guest_accesses()
    {
        (string output, CallResult r) = UnderGdb(vm => vm.Call("compute", 4, 6),
            "set debug remote 1",
            "break compute",
            "continue",
            "delete",
            "watch watched",
            "continue",
            "delete",
            "rwatch watched",
            "continue",
            "set var watched = 100",
            "delete",
            "awatch watched",
            "continue",
            "delete",
            "continue");
        Assert.Contains("Hardware watchpoint 2: watched\n\nOld value = 5\nNew value = 10", output, StringComparison.Ordinal);
        Assert.Contains("17\t    u64 seen = watched;", output, StringComparison.Ordinal);
        Assert.Contains("Hardware read watchpoint 3: watched\n\nValue = 10", output, StringComparison.Ordinal);
        Assert.Contains("Hardware access (read/write) watchpoint 4: watched\n\nValue = 100", output, StringComparison.Ordinal);
        Assert.Contains("19\t    return local + watched;", output, StringComparison.Ordinal);
        Assert.Matches(@"Packet received: T05[0-9a-f]{2}:[0-9a-f]{16};watch:[0-9a-f]+;", output);
        Assert.Matches(@"Packet received: T05[0-9a-f]{2}:[0-9a-f]{16};rwatch:[0-9a-f]+;", output);
        Assert.Matches(@"Packet received: T05[0-9a-f]{2}:[0-9a-f]{16};awatch:[0-9a-f]+;", output);
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 31UL + 100, output);
    }

    /// <summary>
    /// At lanes(): <c>p $v0</c> prints gdb's aarch64v union (from the stub's fpu feature), <c>set $v0.d.u[0]</c>
    /// writes its low doubleword, <c>p $fpcr</c> reads 0 and <c>set $fpcr</c> sets DN (bit 25); the guest's FMOV and
    /// MRS see both.
    /// </summary>
    [SkippableFact]
    public void Real_gdb_writes_v0_and_fpcr_and_the_guest_reads_them()
    {
        (string output, CallResult r) = UnderGdb(vm => vm.Call("lanes"),
            "break lanes",
            "continue",
            "p $v0",
            "set $v0.d.u[0] = 0x1234",
            "p/x $v0.d.u",
            "p $v0.s.u[0]",
            "p $fpcr",
            "set $fpcr = 0x2000000",
            "p/x $fpcr",
            "p $fpsr",
            "continue");
        Assert.Contains("Breakpoint 1, lanes () at gdb_guest.c:", output, StringComparison.Ordinal);
        Assert.Contains("$1 = {d = {f = {0, 0}, u = {0, 0}, s = {0, 0}}, s = {f = {0, 0, 0, 0}", output, StringComparison.Ordinal);
        Assert.Contains("$2 = {0x1234, 0x0}", output, StringComparison.Ordinal);
        Assert.Contains("$3 = 4660", output, StringComparison.Ordinal);
        Assert.Contains("$4 = 0", output, StringComparison.Ordinal);
        Assert.Contains("$5 = 0x2000000", output, StringComparison.Ordinal);
        Assert.Contains("$6 = 0", output, StringComparison.Ordinal);
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 0x1234UL + 0x2000000, output);
    }

    /// <summary>
    /// The emulated arm64 host has six breakpoint registers (ID_AA64DFR0_EL1.BRPs = 5): with seven breakpoints set gdb
    /// cannot insert the seventh (the stub's ENOSPC) and says so; without it the six stop the call in order — each line
    /// of compute, and helper — and gdb's <c>set var</c> at the last one (line 19) changes the result.
    /// </summary>
    [SkippableFact]
    public void Real_gdb_gets_as_many_breakpoints_as_the_host_has_registers()
    {
        (string output, CallResult r) = UnderGdb(vm => vm.Call("compute", 4, 6),
            "break compute",
            "break gdb_guest.c:16",
            "break gdb_guest.c:17",
            "break gdb_guest.c:18",
            "break helper",
            "break gdb_guest.c:19",
            "break lanes",
            "continue",
            "delete 7",
            "continue",
            "continue",
            "continue",
            "continue",
            "continue",
            "continue",
            "set var local = 1000",
            "continue");
        Assert.Contains("Cannot insert breakpoint 7.", output, StringComparison.Ordinal);
        int at = 0;
        foreach (string stop in (string[])["Breakpoint 1, compute (a=4, b=6) at gdb_guest.c:15", "Breakpoint 2, compute (a=4, b=6) at gdb_guest.c:16",
                     "Breakpoint 3, compute (a=4, b=6) at gdb_guest.c:17", "Breakpoint 4, compute (a=4, b=6) at gdb_guest.c:18",
                     "Breakpoint 5, helper (x=10) at gdb_guest.c:9", "Breakpoint 6, compute (a=4, b=6) at gdb_guest.c:19"])
        {
            int next = output.IndexOf(stop, at, StringComparison.Ordinal);
            Assert.True(next >= 0, $"{stop} after offset {at}: {output}");
            at = next + stop.Length;
        }
        Assert.Contains("exited normally", output, StringComparison.Ordinal);
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.True(r.Value == 1000UL + 10, output);
    }

    private static ulong Hex(Match m)
    {
        Assert.True(m.Success);
        return ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }
}
