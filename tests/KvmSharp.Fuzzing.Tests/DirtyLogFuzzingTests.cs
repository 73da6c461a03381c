// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit.Abstractions;

namespace KvmSharp.Fuzzing.Tests;

/// <summary>
/// Dirty page logging in the differential fuzzer (OpGenerator.DirtyLog.cs): the calls are generated on a kernel without
/// guest_memfd, get past the argument checks, never on a kernel with it (a seed's sequence there is unchanged), and a
/// wrong bitmap bit is found and reduced.
/// </summary>
public class DirtyLogFuzzingTests(ITestOutputHelper output)
{
    /// <summary>Sessions as DifferentialFuzzer makes them (seed 1): every call's kind, arguments and outcome.</summary>
    private static List<(FuzzOp Op, string Outcome)> Generate(Func<IKernel> kernel, int sessions) =>
        FuzzSessions.Generate(kernel, sessions, generator => Assert.True(generator.KernelLacksGuestMemfd));

    [KvmFact]
    public void The_dirty_log_calls_get_past_the_argument_checks_on_the_real_kernel()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false,
            "the dirty-log calls are drawn on a kernel without guest_memfd (see The_dirty_log_calls_get_past_the_argument_checks)");
        AssertDirtyLogCallsGetThrough(FuzzKernels.Real);
    }

    [Fact]
    public void The_dirty_log_calls_get_past_the_argument_checks() =>
        // The emulator without guest_memfd plays such a kernel anywhere (also where /dev/kvm has guest_memfd or is absent).
        AssertDirtyLogCallsGetThrough(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)));

    private void AssertDirtyLogCallsGetThrough(Func<IKernel> kernel)
    {
        // A dirty-log call that always failed (a bad slot, a bad pointer) would agree on both kernels and test nothing.
        var calls = Generate(kernel, sessions: 40);
        var get = calls.Where(c => c.Op.Kind == OpKind.GetDirtyLog).Select(c => c.Outcome).ToList();
        var clear = calls.Where(c => c.Op.Kind == OpKind.ClearDirtyLog).Select(c => c.Outcome).ToList();
        var manual = calls.Where(c => c.Op.Kind == OpKind.EnableCap && c.Op.A == KvmCaps.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2).Select(c => c.Outcome).ToList();
        var runs = calls.Where(c => c.Op.Kind == OpKind.GuestRun && (c.Op.E & FuzzOp.GuestRunDirtyLog) != 0).Select(c => c.Outcome).ToList();
        foreach (var (name, list) in new[] { ("GET_DIRTY_LOG", get), ("CLEAR_DIRTY_LOG", clear), ("MANUAL_PROTECT2", manual), ("dirty guest runs", runs) })
            output.WriteLine($"{name,-16} {list.Count,5}: " + string.Join(", ", list.GroupBy(o => o.Length > 20 ? o[..20] : o).OrderByDescending(g => g.Count()).Take(8).Select(g => $"{g.Key} x{g.Count()}")));

        Assert.InRange(get.Count + clear.Count + manual.Count + runs.Count, calls.Count / 20, calls.Count / 4);
        // GET: bitmaps read (some with bits set: INITIALLY_SET), and every refusal kvm_get_dirty_log_protect has.
        Assert.True(get.Count(o => o.StartsWith("ok bitmap=", StringComparison.Ordinal)) >= 20, "KVM_GET_DIRTY_LOG never read a bitmap");
        Assert.Contains(get, o => o.StartsWith("ok bitmap=", StringComparison.Ordinal) && !o.StartsWith("ok bitmap=00", StringComparison.Ordinal));
        Assert.All(["ENOENT", "EINVAL", "EFAULT", "EBADF"], errno => Assert.Contains(errno, get));
        // CLEAR: masks applied, and the range, alignment, slot and copy_from_user checks.
        Assert.True(clear.Count(o => o == "ok") >= 10, "KVM_CLEAR_DIRTY_LOG never cleared");
        Assert.All(["ENOENT", "EINVAL", "EFAULT"], errno => Assert.Contains(errno, clear));
        Assert.Contains("ok", manual);
        Assert.Contains("EINVAL", manual);
        // Guests wrote into their logging slot: pages show up, before and after the second run.
        Assert.True(runs.Count >= 10, $"{runs.Count} dirty-logging guest runs");
        // They reach HLT; in a read-only slot writes exit as MMIO instead (and a far transfer reads back a null selector
        // from the pointer it could not store: #GP without an IDT, KVM_EXIT_SHUTDOWN on both kernels).
        Assert.All(runs.Where(r => !r.Contains("read-only slot", StringComparison.Ordinal)), r => Assert.Contains("hlt", r, StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("read-only slot", StringComparison.Ordinal) && r.Contains("mmio write", StringComparison.Ordinal) && r.Contains("hlt", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("| clear ", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Contains("| logging off ok, on ok", StringComparison.Ordinal));
        Assert.True(runs.Count(r => r.Contains("dirty [", StringComparison.Ordinal) && !r.Contains("dirty [] | rerun", StringComparison.Ordinal)) >= runs.Count / 2,
            "most guests write something");
    }

    [Fact]
    public void A_kernel_with_guest_memfd_gets_no_dirty_log_calls()
    {
        // The seeds' sequences on a kernel with guest_memfd stay what they were: nothing of dirty logging is drawn there.
        for (int seed = 0; seed < 20; seed++)
        {
            var generator = new OpGenerator(DifferentialFuzzer.SessionSeed(seed, 0));
            for (int i = 0; i < 400; i++)
            {
                var op = generator.Next();
                Assert.False(op.Kind is OpKind.GetDirtyLog or OpKind.ClearDirtyLog, op.ToString());
                Assert.False(op.Kind == OpKind.GuestRun && op.E > 1, op.ToString());
                generator.Observe(op, op.Kind is OpKind.OpenKvm or OpKind.CreateVm or OpKind.CreateGmem or OpKind.CreateVcpu ? "ok fd" : "ok");
            }
        }
    }

    [KvmFact]
    public void A_flipped_bitmap_bit_is_found_and_reduced_on_the_real_kernel()
    {
        Skip.If(HostMatching.HostHasGuestMemfd != false,
            "the dirty-log calls are drawn on a kernel without guest_memfd (see A_flipped_bitmap_bit_is_found_and_reduced)");
        AssertFoundAndReduced(() => LinuxKernel.Instance);
    }

    [Fact]
    public void A_flipped_bitmap_bit_is_found_and_reduced() =>
        AssertFoundAndReduced(() => new EmulatedKernel(EmulatorConfig.LikeThisHost(guestMemfd: false)));

    private void AssertFoundAndReduced(Func<IKernel> kernel)
    {
        var fuzzer = new DifferentialFuzzer(kernel, () => new LyingKernel(kernel(), PlantedBug.DirtyBitmapBit)) { MaxDivergences = 1 };
        var divergence = Assert.Single(fuzzer.Run(ops: 20000, seed: 1).Divergences);
        output.WriteLine(divergence.Op + "\n  " + divergence.Reference + "\n  " + divergence.Candidate + "\n  " + string.Join("\n  ", divergence.Reproducer));
        // Either a guest's log (open, the run) or a session slot's (open, VM, slot, maybe manual protect, GET).
        Assert.True(divergence.Op.StartsWith("KVM_GET_DIRTY_LOG(", StringComparison.Ordinal) || divergence.Op.Contains("dirty log", StringComparison.Ordinal), divergence.Op);
        Assert.InRange(divergence.Reproducer.Count, 2, 5);
        Assert.Equal(divergence.Op, divergence.Reproducer[^1]);
    }

    [KvmTheory]
    [InlineData(0)]
    [InlineData(1)]
    public void Dirty_logging_guests_and_far_transfers_agree_on_both_kernels(int mode)
    {
        // Straight from TinyGuestRun on both kernels, more seeds than a fuzz run reaches in the same time.
        const int Count = 30;
        int e = mode | FuzzOp.GuestRunInHostMemory | FuzzOp.GuestRunDirtyLog | (mode == 0 ? FuzzOp.GuestRunFarTransfers : 0);
        string[] Run(IKernel k)
        {
            using var session = new KernelSession(k);
            Assert.Equal("ok fd", session.Apply(new FuzzOp(OpKind.OpenKvm, Result: 0)));
            return Enumerable.Range(1, Count).Select(seed => session.Apply(new FuzzOp(OpKind.GuestRun, Target: 0, A: (ulong)seed, E: e))).ToArray();
        }
        string[] linux = Run(FuzzKernels.Real());
        string[] emulated = Run(FuzzKernels.EmulatorLikeThisMachine());
        for (int i = 0; i < Count; i++)
        {
            output.WriteLine($"seed {i + 1}: {linux[i]}");
            Assert.True(linux[i] == emulated[i], $"seed {i + 1}\nlinux:    {linux[i]}\nemulated: {emulated[i]}");
        }
        Assert.All(linux, r => Assert.Contains("| rerun: ", r, StringComparison.Ordinal));
    }

    [Fact]
    public void Far_transfer_programs_make_far_jumps_calls_and_returns()
    {
        // Decoded: each kind of far transfer appears, and the instructions that are not part of one are the seed's own.
        var seen = new HashSet<Code>();
        for (ulong seed = 1; seed <= 40; seed++)
        {
            byte[] plain = TinyGuestProgram.LongMode(seed, 0x100000);
            byte[] far = TinyGuestProgram.LongMode(seed, 0x100000, farTransfers: true);
            var codes = Decode(far);
            seen.UnionWith(codes);
            var farKinds = new HashSet<Code> { Code.Jmp_m1664, Code.Jmp_m1632, Code.Call_m1664, Code.Call_m1632, Code.Retfq, Code.Retfd };
            if (codes.Any(farKinds.Contains)) Assert.NotEqual(plain, far);
        }
        Assert.Superset(new HashSet<Code> { Code.Jmp_m1664, Code.Jmp_m1632, Code.Call_m1664, Code.Call_m1632, Code.Retfq, Code.Retfd }, seen);
    }

    private static List<Code> Decode(byte[] code)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code));
        var list = new List<Code>();
        while (decoder.IP < (ulong)code.Length) list.Add(decoder.Decode().Code);
        return list;
    }
}
