// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// One step of an <see cref="MsrStepProgram"/>: RDMSR (<see cref="Write"/> false; EDX:EAX preset to a sentinel),
/// WRMSR of <see cref="Value"/>, code whose RAX is stored instead (<see cref="Raw"/>), or a phase boundary
/// (<see cref="Exit"/>).
/// </summary>
public readonly record struct MsrStep(bool Write, uint Msr, ulong Value = 0, Action<Assembler>? Raw = null)
{
    public static MsrStep Rd(uint msr) => new(false, msr);

    public static MsrStep Wr(uint msr, ulong value) => new(true, msr, value);

    /// <summary>A step that runs <paramref name="code"/> (its RAX is stored as the value) instead of an MSR access.</summary>
    public static MsrStep Code(Action<Assembler> code) => new(false, 0, Raw: code);

    /// <summary>A phase boundary: OUT to <see cref="MsrStepProgram.DonePort"/> (the host looks, then runs the guest on).</summary>
    public static MsrStep Exit() => new(false, uint.MaxValue);

    public string Describe() => Raw is not null ? "code" : $"{(Write ? "WRMSR" : "RDMSR")} 0x{Msr:X}" + (Write ? $" = 0x{Value:X}" : "");
}

/// <summary>
/// A 64-bit <see cref="IdtGuest"/> program of <see cref="MsrStep"/>s, for cases that check RDMSR/WRMSR rules from the
/// guest's side: each step stores RAX (EDX:EAX of an RDMSR) and the guest's running #GP count at
/// <see cref="Results"/> + 16 × step — the guest's #GP handler skips the 2-byte RDMSR/WRMSR — and the program ends
/// in a loop of OUTs to <see cref="DonePort"/>.
/// </summary>
public static class MsrStepProgram
{
    /// <summary>A free page of the call-data area: the step results.</summary>
    public const ulong Results = 0x8_A000;

    public const byte DonePort = 0x10;

    private const ulong Sentinel = 0xdead_beef_dead_beef;

    public static void Emit(Assembler a, IReadOnlyList<MsrStep> steps)
    {
        for (int i = 0; i < steps.Count; i++)
        {
            var s = steps[i];
            ulong slot = Results + (ulong)i * 16;
            if (s.Msr == uint.MaxValue && s.Raw is null)
            {
                a.mov(al, (byte)i);
                a.@out(DonePort, al);
            }
            else if (s.Raw is not null)
            {
                s.Raw(a);
            }
            else
            {
                ulong v = s.Write ? s.Value : Sentinel;
                a.mov(eax, (uint)v);
                a.mov(edx, (uint)(v >> 32));
                a.mov(ecx, s.Msr);
                if (s.Write) a.wrmsr();
                else a.rdmsr();
                a.shl(rdx, 32);
                a.mov(eax, eax);
                a.or(rax, rdx);
            }
            a.mov(__qword_ptr[slot], rax);
            a.mov(rbx, __qword_ptr[IdtGuest.ReportGpa]);
            a.mov(__qword_ptr[slot + 8], rbx);
        }
        var spin = a.CreateLabel();
        a.Label(ref spin);
        a.mov(al, 0xff);
        a.@out(DonePort, al);
        a.jmp(spin);
    }

    /// <summary>Step <paramref name="i"/>: whether it took a #GP, and the RAX it stored.</summary>
    public static (bool Gp, ulong Value) Result(IdtGuest g, int i)
    {
        var mem = g.Guest.Memory;
        ulong before = i == 0 ? 0 : mem.Read<ulong>(Results + (ulong)(i - 1) * 16 + 8);
        ulong after = mem.Read<ulong>(Results + (ulong)i * 16 + 8);
        return (after != before, mem.Read<ulong>(Results + (ulong)i * 16));
    }

    public static void RunToDone(IdtGuest g, string what)
    {
        var exit = g.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == DonePort,
            $"{what}: expected OUT to 0x{DonePort:X}, got {exit.ToString()} at RIP 0x{g.Vcpu.GetRegs().rip:X}, deliveries {string.Join(", ", g.Deliveries.Select(d => d.Vector))}");
    }

    /// <summary>Checks (step, #GP, value) triples; a null value is not compared.</summary>
    public static void Expect(IdtGuest g, IReadOnlyList<MsrStep> steps, IReadOnlyList<(int Step, bool Gp, ulong? Value)> expected)
    {
        var errors = new List<string>();
        foreach (var (i, gp, value) in expected)
        {
            var got = Result(g, i);
            string what = steps[i].Describe();
            if (got.Gp != gp) errors.Add($"step {i} {what}: #GP {got.Gp}, expected {gp}");
            else if (value is { } v && !gp && got.Value != v) errors.Add($"step {i} {what}: 0x{got.Value:X}, expected 0x{v:X}");
        }
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    /// <summary>KVM_GET_MSRS of one MSR: the value, or null when the kernel refused it (0 processed).</summary>
    public static ulong? HostRead(Vcpu v, uint msr)
    {
        Span<MsrEntry> e = [new MsrEntry(msr, 0)];
        return v.GetMsrs(e) == 1 ? e[0].Value : null;
    }

    public static bool HostWrite(Vcpu v, uint msr, ulong value) => v.SetMsrs([new MsrEntry(msr, value)]) == 1;
}
