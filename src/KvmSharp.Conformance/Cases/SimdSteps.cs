// SPDX-License-Identifier: MIT
using System.Runtime.Intrinsics;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The "table of SIMD steps" the SSE/VEX cases share: one guest runs every step (its inputs written to guest memory,
/// its instruction, its result register stored) and each stored result is compared with the host CPU's. The cases
/// build the guest (CPUID, CR4, a mask register) and call <see cref="EmitSteps(Assembler, ulong, ulong, Step[])"/>
/// inside its program, then <see cref="RunAndCompare(CaseContext, IdtGuest, ulong, ulong, Step[])"/>.
/// </summary>
internal static class SimdSteps
{
    /// <summary>One XMM step: XMM2 = <paramref name="First"/>, XMM1 = <paramref name="Second"/> (RBX its address), the instruction, XMM2 kept.</summary>
    internal sealed record Step(string Name, Vector128<byte> First, Vector128<byte> Second, Action<Assembler> Emit, Vector128<byte> Expected);

    /// <summary>One YMM step: YMM2 = <paramref name="First"/>, YMM1 = <paramref name="Second"/> (RBX its address, <paramref name="Third"/> after it), the instruction, YMM2 kept.</summary>
    internal sealed record YmmStep(string Name, Vector256<byte> First, Vector256<byte> Second, Action<Assembler> Emit, Vector256<byte> Expected, Vector256<byte> Third = default);

    internal static Step S<T, U>(string name, Vector128<T> first, Vector128<T> second, Action<Assembler> emit, Vector128<U> expected)
        where T : struct where U : struct => new(name, first.AsByte(), second.AsByte(), emit, expected.AsByte());

    internal static YmmStep S<T, U>(string name, Vector256<T> first, Vector256<T> second, Action<Assembler> emit, Vector256<U> expected)
        where T : struct where U : struct => new(name, first.AsByte(), second.AsByte(), emit, expected.AsByte());

    /// <summary>A YMM step whose instruction writes an XMM register (VEX.128 zeroes bits 255:128).</summary>
    internal static YmmStep S128<T, U>(string name, Vector256<T> first, Vector256<T> second, Action<Assembler> emit, Vector128<U> expected)
        where T : struct where U : struct => new(name, first.AsByte(), second.AsByte(), emit, Vector256.Create(expected.AsByte(), Vector128<byte>.Zero));

    internal static byte[] Bytes(Vector128<byte> v) => [.. Enumerable.Range(0, 16).Select(k => v.GetElement(k))];

    internal static byte[] Bytes(Vector256<byte> v) => [.. Enumerable.Range(0, 32).Select(k => v.GetElement(k))];

    /// <summary>
    /// kvm_pvm cannot run SSE/VEX instructions in a guest (<see cref="ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator"/>):
    /// there its KVM_EXIT_INTERNAL_ERROR (no exception delivered) is asserted and true returned.
    /// </summary>
    internal static bool HostCannotRun(CaseContext ctx, IdtGuest g, KvmExitReason exit)
    {
        if (!ExtendedStateInstructions.KvmPvmRunsSseInKvmEmulator(ctx.Target.IsReal)) return false;
        Assert.Equal(KvmExitReason.KVM_EXIT_INTERNAL_ERROR, exit);
        Assert.Empty(g.Deliveries);
        return true;
    }

    /// <summary>Per step: XMM2 = First, XMM1 = Second (inputs at <paramref name="input"/> + 32k), the instruction, XMM2 stored at <paramref name="output"/> + 16k.</summary>
    internal static void EmitSteps(Assembler a, ulong input, ulong output, Step[] steps)
    {
        for (int k = 0; k < steps.Length; k++)
        {
            ulong at = input + (ulong)k * 32;
            a.movdqu(xmm2, __xmmword_ptr[at]);
            a.movdqu(xmm1, __xmmword_ptr[at + 16]);
            a.mov(rbx, (long)(at + 16));
            steps[k].Emit(a);
            a.movdqu(__xmmword_ptr[output + (ulong)k * 16], xmm2);
        }
    }

    /// <summary>Per step: YMM2 = First, YMM1 = Second, Third after it (inputs at <paramref name="input"/> + 96k), the instruction, YMM2 stored at <paramref name="output"/> + 32k.</summary>
    internal static void EmitSteps(Assembler a, ulong input, ulong output, YmmStep[] steps)
    {
        for (int k = 0; k < steps.Length; k++)
        {
            ulong at = input + (ulong)k * 96;
            a.vmovdqu(ymm2, __ymmword_ptr[at]);
            a.vmovdqu(ymm1, __ymmword_ptr[at + 32]);
            a.mov(rbx, (long)(at + 32));
            steps[k].Emit(a);
            a.vmovdqu(__ymmword_ptr[output + (ulong)k * 32], ymm2);
        }
    }

    /// <summary>Writes the XMM steps' inputs, runs the guest to HLT and compares each stored result with the CPU's.</summary>
    internal static void RunAndCompare(CaseContext ctx, IdtGuest g, ulong input, ulong output, Step[] steps)
    {
        for (int k = 0; k < steps.Length; k++)
        {
            g.Guest.Memory.Write(input + (ulong)k * 32, Bytes(steps[k].First));
            g.Guest.Memory.Write(input + (ulong)k * 32 + 16, Bytes(steps[k].Second));
        }
        if (!RunToHlt(ctx, g)) return;
        Compare(g, output, 16, [.. steps.Select(s => (s.Name, Bytes(s.Expected)))]);
    }

    /// <summary>Writes the YMM steps' inputs, runs the guest to HLT and compares each stored result with the CPU's.</summary>
    internal static void RunAndCompare(CaseContext ctx, IdtGuest g, ulong input, ulong output, YmmStep[] steps)
    {
        for (int k = 0; k < steps.Length; k++)
        {
            g.Guest.Memory.Write(input + (ulong)k * 96, Bytes(steps[k].First));
            g.Guest.Memory.Write(input + (ulong)k * 96 + 32, Bytes(steps[k].Second));
            g.Guest.Memory.Write(input + (ulong)k * 96 + 64, Bytes(steps[k].Third));
        }
        if (!RunToHlt(ctx, g)) return;
        Compare(g, output, 32, [.. steps.Select(s => (s.Name, Bytes(s.Expected)))]);
    }

    /// <summary>Runs the guest; false when this host cannot run the steps (asserted), else asserts a clean HLT.</summary>
    private static bool RunToHlt(CaseContext ctx, IdtGuest g)
    {
        var exit = g.Vcpu.Run();
        if (HostCannotRun(ctx, g, exit.Reason)) return false;
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, exit.ToString());
        Assert.Empty(g.Deliveries);
        return true;
    }

    private static void Compare(IdtGuest g, ulong output, int size, (string Name, byte[] Want)[] expected)
    {
        var failures = new List<string>();
        for (int k = 0; k < expected.Length; k++)
        {
            byte[] got = new byte[size];
            g.Guest.Memory.Read(output + (ulong)(k * size), got);
            byte[] want = expected[k].Want;
            if (!got.AsSpan().SequenceEqual(want)) failures.Add($"{expected[k].Name}: {Convert.ToHexString(got)}, the CPU's {Convert.ToHexString(want)}");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }
}
